"""Record the curve table with one command: `python -m search.bench.record`.

    python -m search.bench.record                        # planted MOSI, the committed table
    python -m search.bench.record --scale 0.5 --trials 256 --gpus-per-trial 0.25

It runs the project's own search (`search.study.driver.run`, as `search/run.py`): the random
sampler with seed 0, no scheduler (every trial to its full budget of 32 epochs under the usual
patience rule), two trials at once, no final re-runs, on the planted synthetic MOSI task; then
turns the finished search folder into the table (`search.bench.curve_table`). Rerunning the same
command resumes an interrupted recording (Ctrl-C, a killed driver) and, once the search is
done, only converts; a flag that would change the recording (`--trials`, `--epochs`, `--scale`,
`--seed`) on a folder that holds one is an error, and so is a `--concurrency`,
`--cpus-per-trial` or `--gpus-per-trial` other than the recording's own (it resumes with them);
`--address` is used to resume. Tune's progress table shows how far it has come.
Tested in `tests/search/bench/test_replay.py`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from atsuko.cli import (
    ArgumentParser,
    fraction,
    number,
    positive_float,
    positive_int,
    run_cli,
    seed,
)
from atsuko.errors import ConfigError
from search import layout
from search.bench.curve_table import TABLE

DEFAULTS = {"trials": 128, "epochs": 32, "scale": 0.2, "seed": 0, "concurrency": 2}
unit_scale = number(float, lambda v: 0 < v <= 1, "a fraction in (0, 1]")


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m search.bench.record",
        description="Record real learning curves of Atsuko (random search, full budget) on "
        "the planted synthetic MOSI task and write the replay benchmark's curve table.",
    )
    what = "configurations (128)"
    p.add_argument("--trials", type=positive_int, default=DEFAULTS["trials"], help=what)
    p.add_argument("--epochs", type=positive_int, default=DEFAULTS["epochs"], help="budget (32)")
    p.add_argument("--scale", type=unit_scale, default=DEFAULTS["scale"], help="MOSI scale (0.2)")
    p.add_argument("--seed", type=seed, default=DEFAULTS["seed"], help="sampler seed (0)")
    # where and how fast it runs: None when not given (a recording resumes with its own)
    p.add_argument("--concurrency", type=positive_int, help="trials at once (2)")
    p.add_argument("--cpus-per-trial", type=positive_float, help="(1)")
    p.add_argument("--gpus-per-trial", type=fraction, help="(0)")
    p.add_argument(
        "--work", default=None, help="the search's --out (default runs/record/mosi-SCALE)"
    )
    p.add_argument("--table", default=str(TABLE), help="where the table goes")
    p.add_argument("--address", default=None, help="join a running Ray cluster (host:port)")
    return p


RECORDED = {"trials": "num_samples", "epochs": "max_epochs", "scale": "scale", "seed": "seed"}
RUN_FLAGS = ("concurrency", "cpus_per_trial", "gpus_per_trial")  # saved with the recording


def _check_same(args: argparse.Namespace, work: Path) -> None:
    """A folder holds one recording: a flag that would change it is an error, not ignored;
    so is a flag of how it runs that differs from the one it runs with."""
    from search.settings import load

    saved = load(work)
    for flag, name in RECORDED.items():
        if getattr(args, flag) != getattr(saved, name):
            raise ConfigError(
                f"{work} holds a recording with --{flag} {getattr(saved, name)}, not "
                f"{getattr(args, flag)}: rerun with its flags to resume or convert it, or "
                "record into another --work"
            )
    for name in RUN_FLAGS:
        value = getattr(args, name)
        if value is not None and value != getattr(saved, name):
            raise ConfigError(
                f"--{name.replace('_', '-')} {value}: {work} holds a recording that runs with "
                f"{getattr(saved, name):g} (its saved settings); drop the flag, or record into "
                "another --work"
            )


def settings_for(args: argparse.Namespace, work: Path) -> Any:
    from search.settings import Settings, check

    s = Settings(
        dataset="mosi",
        synthetic=True,
        scale=args.scale,
        num_samples=args.trials,
        max_epochs=args.epochs,
        concurrency=args.concurrency or DEFAULTS["concurrency"],
        cpus_per_trial=args.cpus_per_trial or 1.0,
        gpus_per_trial=args.gpus_per_trial or 0.0,
        sampler="random",
        scheduler="none",
        seed=args.seed,
        final_seeds=0,
        final_top_k=1,
        out=str(work),
        address=args.address,
    )
    check(s)
    return s


def meta_for(work: Path, command: str) -> dict[str, Any]:
    """The table's metadata from the finished search folder: what ran, on which data."""
    import json

    from atsuko.data.load import synthetic_path
    from search.bench.curve_table import space_doc
    from search.provenance import sha256_file, versions
    from search.settings import load, load_base
    from search.study.space import load_space

    settings, base = load(work), load_base(work)
    space = load_space(work / layout.SPACE_COPY, base)
    summary = json.loads((work / layout.SUMMARY).read_text())
    return {
        "command": command,
        "dataset": base.data.dataset,
        "synthetic": base.data.synthetic,
        "scale": base.data.scale,
        "data_sha256": sha256_file(synthetic_path(base.data)) if base.data.synthetic else None,
        "metric": summary["select"]["metric"],
        "mode": summary["select"]["mode"],
        # what --scheduler onset's replay judges against (search.bench.simulate)
        "label_median_score": _label_median_score(base, summary["select"]["metric"]),
        "max_epochs": base.train.epochs,
        "patience": base.train.patience,
        "sampler": settings.sampler,
        "seed": settings.seed,
        "concurrency": settings.concurrency,
        "cpus_per_trial": settings.cpus_per_trial,
        "space": space_doc(space),
        "recorded": time.strftime("%Y-%m-%d"),
        "versions": versions(),
    }


def _label_median_score(base: Any, metric: str) -> float:
    from atsuko.data.load import load_for_run
    from search.study.onset import label_median_score

    return label_median_score(load_for_run(base, log=None), metric)


def convert(work: Path, table: Path, command: str) -> dict[str, Any]:
    """The finished search in `work` as the curve table at `table`; returns its metadata."""
    from search.bench.curve_table import read_curves, write_table

    trials = read_curves(work)
    meta = meta_for(work, command)
    meta["trials"] = len(trials)
    write_table(table, meta, trials)
    return meta


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    work = Path(args.work or f"runs/record/mosi-{args.scale:g}")
    given = shlex.join(sys.argv[1:] if argv is None else argv)
    command = f"python -m search.bench.record {given}".strip()
    from search.settings import load
    from search.study import driver

    if (work / layout.SETTINGS).is_file():
        _check_same(args, work)
        if (work / layout.SUMMARY).is_file():
            print(f"{work}: the recording is finished; converting it", flush=True)
            if args.address:
                print(f"note: --address {args.address} not used: nothing left to run", flush=True)
        else:
            print(f"{work}: resuming the recording", flush=True)
            saved = load(work)
            saved.address = args.address or saved.address  # where it runs, as --resume allows
            code = driver.run(saved, resume=True)
            if code != 0:
                return code
    else:
        code = driver.run(settings_for(args, work))
        if code != 0:
            return code
    meta = convert(work, Path(args.table), command)
    print(
        f"curve table: {args.table} ({meta['trials']} configurations, scale {meta['scale']:g}, "
        f"data sha256 {meta['data_sha256']})",
        flush=True,
    )
    print(describe(Path(args.table)), flush=True)
    return 0


def describe(path: Path) -> str:
    """What the table says about early stopping: its best and median trial, curve lengths, and
    how well the score at each early epoch ranks the trials as their final best does."""
    from search.bench.curve_table import load_table
    from search.bench.replay_stats import grace_candidates, regret_scale

    table = load_table(path)
    best, median = regret_scale(table)
    lengths = sorted(len(t["scores"]) for t in table["trials"])
    grace, corr = grace_candidates(table)
    shown = ", ".join(f"epoch {e}: {c:.2f}" for e, c in corr.items())
    return (
        f"best trial {best:.4f}, median trial {median:.4f} ({table['meta']['metric']}); epochs "
        f"per trial median {lengths[len(lengths) // 2]}, max {lengths[-1]}; rank correlation "
        f"with the final best: {shown}; first rung by that rule: epoch {grace}"
    )


if __name__ == "__main__":
    run_cli(main)
