"""Atsuko on real text through a real pretrained encoder: `python -m atsuko.bench_real REAL`.

REAL is a folder with MOSI's `mosi/label.csv` and MIntRec's `mintrec/{train,dev,test}.tsv`
(labels and transcripts). The real-text files are built from it (`atsuko.data.real_text`:
MiniLM ids, generated audio and vision) and the default configuration trains on the frozen
MiniLM token states (`model.bert_freeze: true`) over three seeds through the one training loop;
the test metrics are printed as mean ± std per dataset, and beside them, on frozen states, a
linear model on the mean-pooled states (`atsuko.pooled_probe`). `--build-only` writes the
files and prints where they are (and the MiniLM folder), for `python -m atsuko.train` or a
search.
Tested in `tests/atsuko/test_bench_real.py`.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from atsuko import config as cfg
from atsuko.cli import ArgumentParser, run_cli
from atsuko.data import load_for_run
from atsuko.data.real_text import minilm_folder, mintrec_folder, mosi_file
from atsuko.errors import ConfigError
from atsuko.pooled_probe import pooled_probe

SEEDS = (1111, 1112, 1113)
SHOWN = {
    "mosi": ("MAE", "Corr", "Non0_acc_2", "Has0_acc_2", "Mult_acc_7"),
    "mintrec": ("acc", "f1"),
}


def check_real(real: Path) -> None:
    for name in ("mosi/label.csv", "mintrec/train.tsv", "mintrec/dev.tsv", "mintrec/test.tsv"):
        if not (real / name).is_file():
            raise ConfigError(
                f"{real / name}: not found; REAL must hold mosi/label.csv and "
                "mintrec/{train,dev,test}.tsv"
            )


def build(real: Path, out: Path, model: Path) -> dict[str, Path]:
    """The real-text data of each dataset under `out` (MOSI's pickle, MIntRec's folder)."""
    check_real(real)
    return {
        "mosi": mosi_file(real / "mosi" / "label.csv", out / "mosi", model),
        "mintrec": mintrec_folder(real / "mintrec", out / "mintrec"),
    }


def frozen_config(dataset: str, path: Path, model: Path, sets: list[str]) -> cfg.Config:
    overrides = {
        "data.path": str(path),
        "model.text_encoder": "bert",
        "model.bert_freeze": True,
        "model.bert_path": str(model),
        **cfg.parse_set(sets),
    }
    return cfg.resolve(None, overrides, dataset=dataset)


def mean_std(results: list[dict[str, float]], keys) -> dict[str, tuple[float, float]]:
    return {
        k: (statistics.mean(r[k] for r in results), statistics.pstdev(r[k] for r in results))
        for k in keys
    }


def report(name: str, seeds: list[int], stats: dict, probe: dict | None, as_json: bool):
    """The lines printed for one dataset: Atsuko's test mean ± std and, on frozen states, the
    linear model on the mean-pooled states."""
    if as_json:
        return [json.dumps({"dataset": name, "seeds": seeds, "test": stats, "pooled_probe": probe})]
    shown = "  ".join(f"{k} {m:.3f} ± {s:.3f}" for k, (m, s) in stats.items())
    how = "fine-tuned" if probe is None else "frozen"
    lines = [f"{name} ({how} MiniLM, {len(seeds)} seeds) test: {shown}"]
    if probe is not None:
        shown = "  ".join(f"{k} {probe['test'][k]:.3f}" for k in SHOWN[name])
        lines.append(
            f"{name} linear model on the mean-pooled states, C {probe['penalty']:g}: {shown}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    from atsuko.train import fit, select_spec

    parser = ArgumentParser(prog="python -m atsuko.bench_real", description=__doc__.split("\n")[0])
    parser.add_argument("real", help="folder with mosi/label.csv and mintrec/{train,dev,test}.tsv")
    parser.add_argument("--out", required=True, help="where the real-text files are written")
    parser.add_argument(
        "--datasets", nargs="+", choices=("mosi", "mintrec"), default=["mosi", "mintrec"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[])
    parser.add_argument("--json", action="store_true", help="one JSON line per dataset")
    parser.add_argument(
        "--build-only", action="store_true", help="write the files, print where, train nothing"
    )
    args = parser.parse_args(argv)

    out = Path(args.out)
    check_real(Path(args.real))
    model = minilm_folder()
    for name in args.datasets:  # bad --set values stop here, before anything is written
        frozen_config(name, out / name, model, args.set)
    paths = build(Path(args.real), out, model)
    if args.build_only:
        print(f"model.bert_path: {model}")
        for name, path in paths.items():
            print(f"{name}: {path}")
        return 0
    for name in args.datasets:
        runs = []
        for seed in args.seeds:
            config = frozen_config(name, paths[name], model, [*args.set, f"train.seed={seed}"])
            dataset = load_for_run(config, log=lambda s: print(s, file=sys.stderr))
            result = fit(config, dataset, log=None)
            runs.append(result.test)
            print(f"{name} seed {seed}: " + json.dumps(result.test), file=sys.stderr)
        stats = mean_std(runs, SHOWN[name])
        frozen = config.model.bert_freeze
        probe = pooled_probe(dataset, *select_spec(config, dataset)) if frozen else None
        print("\n".join(report(name, args.seeds, stats, probe, args.json)))
    return 0


if __name__ == "__main__":
    run_cli(main)
