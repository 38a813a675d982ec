"""Training throughput of the full model: `python -m atsuko.bench [--json]`.

CPU, one thread, batch 16, the default configuration, the full model with MCM past its warm-up,
random inputs of each dataset's real shapes. Also the share of the step spent in band
projection (forward and backward of every `BandDecomposition`, timed on the very inputs the
step gave them). The case `mosi_real_lengths` is MOSI aligned with the text lengths of real
utterances (BERT's `[CLS] words [SEP]`, mostly 8 to 50 tokens: the token counts of
`../shared/data/real/mosi/label.csv` when that file is beside the project, else the same counts
as recorded in `atsuko.data.synthetic.MOSI_TEXT_COUNTS`), so each batch mixes many lengths;
its band projection share is `band_projection_share_real_lengths`. The field's reference MulT
configuration (hidden 50, 10 heads, 4 levels) trains at about 37 samples/s (MOSI aligned) and
0.8 samples/s (MOSI unaligned) on these machines under the same conditions; the target is at
least twice that.
Tested in `tests/atsuko/test_atsuko_bench.py`.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from atsuko import config as cfg
from atsuko.cli import ArgumentParser, run_cli
from atsuko.data.synthetic import MOSI_TEXT_COUNTS, MOSI_TEXT_MIN, text_token_lengths
from atsuko.model import Atsuko
from atsuko.model.bands import BandDecomposition

MULT_REFERENCE = {"mosi_aligned": 37.0, "mosi_unaligned": 0.8}
MOSI_ALIGNED = {"text": (50, 768), "audio": (50, 5), "vision": (50, 20)}
CASES = {  # name: (dataset, {modality: (T, d)}, lengths: False constant, True spread, "text")
    "mosi_aligned": ("mosi", MOSI_ALIGNED, False),
    "mosi_unaligned": ("mosi", {"text": (50, 768), "audio": (375, 5), "vision": (500, 20)}, True),
    "mosei_aligned": ("mosei", {"text": (50, 768), "audio": (50, 74), "vision": (50, 35)}, False),
    "mosi_real_lengths": ("mosi", MOSI_ALIGNED, "text"),
}
LABEL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "mosi" / "label.csv"


def real_text_lengths(path: Path | None = None) -> tuple[np.ndarray, str]:
    """Token counts of real MOSI utterances (3..50) and where they came from (`path` defaults
    to `LABEL_CSV`, read at call time so that a test can point it elsewhere)."""
    path = LABEL_CSV if path is None else path
    if path.is_file():
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            return text_token_lengths([r["text"] for r in csv.DictReader(f)]), str(path)
    counts = np.asarray(MOSI_TEXT_COUNTS)
    lengths = np.repeat(np.arange(MOSI_TEXT_MIN, MOSI_TEXT_MIN + len(counts)), counts)
    return lengths, "atsuko.data.synthetic.MOSI_TEXT_COUNTS"


@dataclass
class Measurement:
    samples_per_s: float
    step_s: float
    band_share: float


def random_batch(
    shapes: dict[str, tuple[int, int]],
    batch: int,
    variable: bool | str,
    gen: torch.Generator,
    text: torch.Tensor | None = None,
):
    """Random features and lengths; `variable == "text"` draws the text lengths from `text`
    (real token counts), every other modality full."""
    feats = {m: torch.randn(batch, t, d, generator=gen) for m, (t, d) in shapes.items()}
    if variable == "text":
        pick = torch.randint(0, len(text), (batch,), generator=gen)
        lengths = {m: torch.full((batch,), t) for m, (t, _) in shapes.items()}
        lengths["text"] = text[pick].clamp(max=shapes["text"][0])
    elif variable:  # unaligned files: lengths spread over the upper half of the padded length
        lengths = {
            m: torch.randint(t // 2, t + 1, (batch,), generator=gen) for m, (t, _) in shapes.items()
        }
    else:
        lengths = {m: torch.full((batch,), t) for m, (t, _) in shapes.items()}
    for m, x in feats.items():
        x[torch.arange(x.shape[1])[None, :] >= lengths[m][:, None]] = 0  # padding at the end
    labels = torch.randint(-3, 4, (batch,), generator=gen).float()
    return feats, lengths, labels


def _band_seconds(
    calls: list[tuple[BandDecomposition, torch.Tensor, torch.Tensor | None]],
) -> float:
    """Forward and backward time of the captured band projections, replayed on their inputs."""
    start = time.perf_counter()
    for module, x, lengths in list(calls):
        x = x.detach().requires_grad_(True)
        out = module(x, lengths)
        out.backward(torch.ones_like(out))
    return time.perf_counter() - start


def measure(case: str, steps: int, batch: int = 16, warmup: int = 2) -> Measurement:
    dataset, shapes, variable = CASES[case]
    text = torch.from_numpy(real_text_lengths()[0]) if variable == "text" else None
    config = cfg.resolve(dataset=dataset)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = Atsuko(
        config=config.model,
        dims={m: d for m, (_, d) in shapes.items()},
        num_outputs=1,
        task="regression",
    )
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.train.lr)
    epoch = config.model.mcm_warmup_epochs + 1  # every MCM term on
    calls: list = []

    def capture(module, args, _out):
        calls.append((module, args[0].detach(), args[1] if len(args) > 1 else None))

    hooks = [
        m.register_forward_hook(capture)
        for m in model.modules()
        if isinstance(m, BandDecomposition)
    ]
    step_times, band_times = [], []
    for i in range(warmup + steps):
        feats, lengths, labels = random_batch(shapes, batch, variable, gen, text)
        calls.clear()
        start = time.perf_counter()
        out = model(feats, lengths)
        loss = model.loss(out, labels, epoch).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            step_times.append(elapsed)
            replay = list(calls)
            band_times.append(_band_seconds(replay))
    for h in hooks:
        h.remove()
    step = statistics.median(step_times)
    return Measurement(batch / step, step, statistics.median(band_times) / step)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m atsuko.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per aligned case")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {
        "mosi_aligned": args.steps,
        "mosei_aligned": args.steps,
        "mosi_unaligned": max(2, args.steps // 3),
        "mosi_real_lengths": args.steps,
    }
    results = {case: measure(case, steps[case]) for case in CASES}
    share = max(r.band_share for c, r in results.items() if c != "mosi_real_lengths")
    real = results["mosi_real_lengths"]
    if args.json:
        doc = {case: round(r.samples_per_s, 2) for case, r in results.items()}
        doc["band_projection_share"] = round(share, 4)
        doc["band_projection_share_real_lengths"] = round(real.band_share, 4)
        print(json.dumps(doc))
        return 0
    print(f"training samples/s, {args.threads} thread(s), batch 16, default config, MCM on")
    for case, r in results.items():
        ref = MULT_REFERENCE.get(case)
        vs = f"  {r.samples_per_s / ref:.1f}x MulT ({ref} samples/s; target 2x)" if ref else ""
        print(
            f"  {case:<15} {r.samples_per_s:8.2f} samples/s  step {r.step_s * 1000:7.1f} ms  "
            f"band projection {100 * r.band_share:4.1f}%{vs}"
        )
    verdict = "holds" if share < 0.2 else "MISSED"
    print(f"band projection share (largest): {100 * share:.1f}% (target < 20%: {verdict})")
    ratio = real.samples_per_s / results["mosi_aligned"].samples_per_s
    verdict = "holds" if real.band_share < 0.15 and ratio >= 0.7 else "MISSED"
    print(
        f"real text lengths ({real_text_lengths()[1]}): band projection "
        f"{100 * real.band_share:.1f}% of the step (target < 15%), {ratio:.2f}x the samples/s "
        f"of mosi_aligned (target >= 0.70): {verdict}"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
