"""The prepared GPU check: `python -m atsuko.gpu_check` (what `scripts/gpu-check.sh` runs).

On a machine without CUDA it prints one line and exits 0. On a CUDA device, on synthetic MOSI
(aligned, `--scale` of its rows), it checks what the CPU suite can only mock:

- precision: one epoch (about ten steps at the default scale) in bf16 and in float32 from the
  same seed; predictions are float32; the bf16-trained model's scores on the GPU equal the same
  weights' scores on the CPU (to 1e-3: evaluation runs in float32 everywhere); bf16 training
  stays near float32 training (MAE to 1e-3, every metric to 1e-2; the other figures printed).
  It also prints how far scores computed under bf16 autocast (the old evaluation) would move;
- resume under `train.deterministic`: the same seed twice and a run stopped after epoch 1 and
  resumed from its saved state (through torch.save and torch.load, as a trial's checkpoint)
  give identical validation scores at every epoch; a resume without the CUDA RNG state is
  shown for contrast (dropout then draws other masks);
- outputs: `best.pt` holds CPU tensors; which splits went to the GPU and the budget;
- `python -m search.bench --only gpu` when Ray is importable (otherwise it says so).

Exit status 0 when every check holds, 1 otherwise. About a minute without the bench.
`--device cpu` runs the same checks on the CPU (for the test suite; the bench is skipped).
Tested in `tests/atsuko/test_device.py` (on the CPU).
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from atsuko import checkpoint as trainer_checkpoint
from atsuko import config as cfg
from atsuko import device as dev
from atsuko.cli import ArgumentParser
from atsuko.config import Config
from atsuko.data import Dataset, batches, load_from_config
from atsuko.metrics import score
from atsuko.train import FitResult, Trainer, fit

TOLERANCE = 1e-3  # scores that must agree
BF16_TRAINING_TOLERANCE = 1e-2  # bf16 vs float32 training, every metric (MAE: TOLERANCE)


def say(text: str) -> None:
    print(f"gpu-check: {text}", flush=True)


def max_diff(a: dict[str, float], b: dict[str, float]) -> tuple[float, str]:
    """The largest absolute difference over the metrics of `a` and its metric's name."""
    return max((abs(a[k] - b[k]), k) for k in a)


def fit_keep(config: Config, data: Dataset, **kwargs: Any) -> tuple[FitResult, Trainer, float]:
    """`fit` without its log; also the trainer (best epoch restored) and the seconds it took."""
    held: dict[str, Trainer] = {}
    start = time.perf_counter()
    result = fit(config, data, log=None, on_epoch=lambda _r, t: held.update(t=t), **kwargs)
    return result, held["t"], time.perf_counter() - start


@torch.no_grad()
def autocast_scores(trainer: Trainer, dtype: torch.dtype) -> tuple[dict[str, float], torch.dtype]:
    """Validation scores with the whole forward pass under autocast (the old evaluation), and
    the dtype of the model's predictions there (its head runs in float32 regardless)."""
    trainer.model.train(False)
    split, preds = trainer.splits["valid"], []
    for batch in batches(split, 256, shuffle=False):
        batch = batch.to(trainer.device)
        with torch.autocast(trainer.device.type, dtype=dtype):
            out = trainer.model(batch.features, batch.lengths, batch.extras)
        preds.append(out.pred.cpu())
    name = trainer.dataset.spec.name
    pred = torch.cat(preds)
    return score(name, pred.float().numpy(), split.labels.cpu().numpy()), pred.dtype


def check_precision(base: Config, data: Dataset) -> bool:
    """bf16 and float32 training steps; float32 scores, equal on the GPU and the CPU."""
    one = base.replace(epochs=1, patience=0)
    device = torch.device(base.train.device)
    dtype = dev.autocast_dtype("auto", device) if device.type == "cuda" else torch.bfloat16
    fp32, _, fp32_s = fit_keep(one.replace(precision="fp32"), data, score_test=False)
    say(f"precision: float32 epoch {fp32_s:.2f}s, valid {fmt(fp32.valid)}")
    if dtype is None:
        say("precision: this GPU has no bf16 units: `auto` trains in float32; bf16 not checked")
        return True
    bf16, trainer, bf16_s = fit_keep(one.replace(precision="bf16"), data, score_test=False)
    say(f"precision: bf16 epoch {bf16_s:.2f}s, valid {fmt(bf16.valid)}")
    ev = trainer.evaluate("valid")
    cpu = Trainer(one.replace(precision="fp32"), data, device="cpu")
    cpu.model.load_state_dict(dev.to_cpu(trainer.model.state_dict()))
    on_cpu = cpu.evaluate("valid").metrics
    old, autocast_dtype = autocast_scores(trainer, dtype)
    gap_cpu, gap_train = max_diff(ev.metrics, on_cpu), max_diff(bf16.valid, fp32.valid)
    mae = abs(bf16.valid["MAE"] - fp32.valid["MAE"])
    say(
        f"precision: predictions {ev.pred.dtype} (under autocast: {autocast_dtype}); same "
        f"weights on {device.type} vs cpu: max |diff| {gap_cpu[0]:.2e} ({gap_cpu[1]}; "
        f"<= {TOLERANCE})"
    )
    say(
        f"precision: bf16 vs float32 training: MAE |diff| {mae:.2e} (<= {TOLERANCE}), max "
        f"{gap_train[0]:.2e} ({gap_train[1]}; <= {BF16_TRAINING_TOLERANCE})"
    )
    old_gap = max_diff(old, ev.metrics)
    say(
        f"precision: scores under bf16 autocast (the old evaluation) would move by up to "
        f"{old_gap[0]:.2e} ({old_gap[1]}); evaluation now runs in float32"
    )
    return (
        str(ev.pred.dtype) == "float32"
        and autocast_dtype == torch.float32
        and gap_cpu[0] <= TOLERANCE
        and mae <= TOLERANCE
        and gap_train[0] <= BF16_TRAINING_TOLERANCE
    )


def fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k} {metrics[k]:.4f}" for k in ("MAE", "Corr", "Mult_acc_7") if k in metrics)


def round_trip(state: dict[str, Any]) -> dict[str, Any]:
    """`state` through torch.save and torch.load onto the CPU, as a trial's checkpoint."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return trainer_checkpoint.load(buffer)


def check_resume(base: Config, data: Dataset) -> bool:
    """Same seed and resume equality under the deterministic option (precision `auto`)."""
    c = base.replace(epochs=3, patience=0, deterministic=True, precision="auto")
    straight, _, seconds = fit_keep(c, data, score_test=False)
    again, _, _ = fit_keep(c, data, score_test=False)
    saved: dict[str, Any] = {}

    def stop_after_one(record: Any, trainer: Trainer) -> bool:
        saved["state"] = round_trip(trainer.state_dict())
        return record.epoch == 1

    fit(c, data, on_epoch=stop_after_one, log=None, score_test=False)
    resumed = fit(c, data, state=saved["state"], log=None, score_test=False)
    scores = lambda r: [e.valid for e in r.history]  # noqa: E731
    same_seed = scores(again) == scores(straight)
    resume = scores(resumed) == scores(straight)
    say(
        f"resume: deterministic, 3 epochs in {seconds:.1f}s; same seed twice: "
        f"{'identical' if same_seed else 'DIFFERENT'}; stopped after epoch 1 and resumed: "
        f"{'identical' if resume else 'DIFFERENT'} (valid MAE {straight.valid['MAE']:.6f})"
    )
    if "cuda" in saved["state"]["rng"]:
        saved["state"]["rng"].pop("cuda")
        blind = fit(c, data, state=saved["state"], log=None, score_test=False)
        differs = scores(blind) != scores(straight)
        say(
            "resume: without the CUDA RNG state the resumed run "
            + ("differs (dropout draws other masks)" if differs else "is the same")
        )
    torch.use_deterministic_algorithms(False)
    return same_seed and resume


def check_outputs(base: Config, data: Dataset, work: Path) -> bool:
    """`best.pt` on the CPU; which splits the run moved to its device, within what budget."""
    result, trainer, _ = fit_keep(base.replace(epochs=1), data, out=work / "run")
    state = torch.load(work / "run" / "best.pt", weights_only=True)
    devices = {str(t.device) for t in state["model"].values()}
    sizes = {name: dev.split_bytes(s) / 1e6 for name, s in data.splits.items()}
    shown = ", ".join(f"{n} {mb:.0f} MB" for n, mb in sizes.items())
    where = ", ".join(trainer.on_device) or "none"
    say(
        f"outputs: best.pt tensors on {', '.join(sorted(devices))}; splits ({shown}) moved to "
        f"the device: {where}; test scored from the host (MAE {result.test['MAE']:.4f})"
    )
    if trainer.device.type == "cuda":
        budget = dev.cuda_budget(trainer.device, 1.0)
        say(f"outputs: GPU budget of a whole-GPU run now {budget / 1e9:.1f} GB")
    return devices == {"cpu"} and "test" not in trainer.on_device


def run_bench(timeout_s: float, env: dict[str, str]) -> bool:
    """`python -m search.bench --only gpu`, when Ray is importable here."""
    if importlib.util.find_spec("ray") is None:
        say("bench: Ray is not installed here; `python -m search.bench --only gpu` skipped")
        return True
    say("bench: python -m search.bench --only gpu")
    cmd = [sys.executable, "-m", "search.bench", "--only", "gpu"]
    try:
        done = subprocess.run(cmd, env=env, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        say(f"bench: stopped after {timeout_s:.0f}s (--bench-timeout)")
        return False
    say(f"bench: exit status {done.returncode}")
    return done.returncode == 0


def run_checks(args: Any, device: str) -> dict[str, bool]:
    bench_env = dict(os.environ)  # the bench measures speed: no deterministic cuBLAS for it
    if device == "cuda":  # before the first cuBLAS call of this process
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", dev.CUBLAS_DETERMINISTIC)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    say(f"{name}, torch {torch.__version__}; synthetic MOSI at scale {args.scale}")
    results: dict[str, bool] = {}
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"synthetic": True, "scale": args.scale, "cache_dir": tmp, "device": device}
        base = cfg.resolve(overrides=overrides, dataset="mosi")
        data = load_from_config(base.data)
        results["precision"] = check_precision(base, data)
        results["resume"] = check_resume(base, data)
        results["outputs"] = check_outputs(base, data, Path(tmp))
    if device != "cuda" or args.no_bench:
        say("bench: not run" + (" (--no-bench)" if args.no_bench else " on the CPU"))
    else:
        results["bench"] = run_bench(args.bench_timeout, bench_env)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m atsuko.gpu_check",
        description="The prepared GPU check (README: On a GPU machine).",
    )
    parser.add_argument("--scale", type=float, default=0.25, help="synthetic MOSI rows share")
    parser.add_argument("--no-bench", action="store_true", help="skip search.bench --only gpu")
    parser.add_argument("--bench-timeout", type=float, default=210.0, help="seconds")
    parser.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda if present")
    args = parser.parse_args(argv)
    device = args.device or "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        say(
            f"no CUDA device here (torch {torch.__version__}, CUDA build "
            f"{torch.version.cuda or 'none'}): nothing to check"
        )
        return 0
    results = run_checks(args, device)
    failed = [k for k, ok in results.items() if not ok]
    say("FAILED: " + ", ".join(failed) if failed else "every check holds")
    return 1 if failed else 0


if __name__ == "__main__":
    from atsuko.cli import run_cli

    run_cli(main)
