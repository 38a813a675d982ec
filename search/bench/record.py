"""Record the curve table with one command: `python -m search.bench.record`.

    python -m search.bench.record                        # planted MOSI, the committed table
    python -m search.bench.record --scale 0.5 --trials 256 --gpus-per-trial 0.25
    python -m search.bench.record --data aligned_50.pkl --set model.text_encoder=bert ...

It runs the project's own search (`search.study.driver.run`, as `search/run.py`): the random
sampler with seed 0, no scheduler (every trial to its full budget of 32 epochs under the usual
patience rule), two trials at once, no final re-runs, on the planted synthetic MOSI task (or on
real features, `--data`, with `--set` pins as `search/run.py` takes them); then turns the
finished search folder into the table (`search.bench.curve_table`). Rerunning the same
command resumes an interrupted recording (Ctrl-C, a killed driver) and, once the search is
done, only converts; a flag that would change the recording (`--trials`, `--epochs`, `--scale`,
`--seed`, `--dataset`, `--data`, `--set`, `--train-seed`) on a folder that holds one is an
error, and so is a `--concurrency`, `--cpus-per-trial` or `--gpus-per-trial` other than the
recording's own (it resumes with them); `--address` is used to resume. Tune's progress table
shows how far it has come.

`--train-seed N` pins every trial's training seed (`train.seed`, which the space does not
sample): the random sampler's draws depend only on the space and `--seed`, so a second
recording with `--trials K --train-seed M` into another `--work` re-trains the first K
configurations of the first with another seed.
Tested in `tests/search/bench/test_replay.py`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from atsuko import config as cfg
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
from search.bench.curve_table import TABLE, data_label

DEFAULTS = {"trials": 128, "epochs": 32, "scale": 0.2, "seed": 0, "concurrency": 2}
unit_scale = number(float, lambda v: 0 < v <= 1, "a fraction in (0, 1]")


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m search.bench.record",
        description="Record real learning curves of Atsuko (random search, full budget) on "
        "the planted synthetic MOSI task (or real features: --data) and write the replay "
        "benchmark's curve table.",
    )
    p.add_argument("--dataset", choices=cfg.DATASETS, default="mosi", help="(mosi)")
    p.add_argument("--data", metavar="PATH", help="real features (default: the synthetic stand-in)")
    p.add_argument(
        "--set",
        dest="sets",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="pin a config key for every trial (repeatable), as search/run.py",
    )
    p.add_argument("--train-seed", type=seed, help="every trial's training seed (train.seed)")
    what = "configurations (128)"
    p.add_argument("--trials", type=positive_int, default=DEFAULTS["trials"], help=what)
    p.add_argument("--epochs", type=positive_int, default=DEFAULTS["epochs"], help="budget (32)")
    p.add_argument("--scale", type=unit_scale, help="synthetic data's scale (0.2; not with --data)")
    p.add_argument("--seed", type=seed, default=DEFAULTS["seed"], help="sampler seed (0)")
    # where and how fast it runs: None when not given (a recording resumes with its own)
    p.add_argument("--concurrency", type=positive_int, help="trials at once (2)")
    p.add_argument("--cpus-per-trial", type=positive_float, help="(1)")
    p.add_argument("--gpus-per-trial", type=fraction, help="(0)")
    where = "the search's --out (runs/record/DATASET-SCALE; DATASET-real-STEM with --data)"
    p.add_argument("--work", default=None, help=where)
    p.add_argument(
        "--table",
        help="where the table goes (the committed planted-MOSI table; with --data, --set, "
        "--train-seed or another --dataset, search/bench/curves/WORK-NAME.json.gz)",
    )
    p.add_argument("--address", default=None, help="join a running Ray cluster (host:port)")
    return p


RUN_FLAGS = ("concurrency", "cpus_per_trial", "gpus_per_trial")  # saved with the recording
SEED_KEY = "train.seed"  # what --train-seed pins


def recorded(s: Any) -> dict[str, Any]:
    """What a recording's settings hold, by the flag that sets it."""
    pinned = [item for item in s.sets if item.split("=", 1)[0].strip() != SEED_KEY]
    seeds = [cfg.parse_set([item])[SEED_KEY] for item in s.sets if item not in pinned]
    return {
        "trials": s.num_samples,
        "epochs": s.max_epochs,
        "dataset": s.dataset,
        "data": s.data,
        "scale": s.scale,
        "seed": s.seed,
        "set": " ".join(pinned) or None,
        "train-seed": seeds[0] if seeds else None,
    }


def _check_same(args: argparse.Namespace, work: Path) -> None:
    """A folder holds one recording: a flag that would change it is an error, not ignored;
    so is a flag of how it runs that differs from the one it runs with."""
    from search.settings import load

    saved = load(work)
    wanted, held = recorded(settings_for(args, work)), recorded(saved)
    for flag, value in held.items():
        if wanted[flag] != value:
            raise ConfigError(
                f"{work} holds a recording with --{flag} {_shown(value)}, not "
                f"{_shown(wanted[flag])}: rerun with its flags to resume or convert it, or "
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


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _check_flags(args: argparse.Namespace) -> None:
    """Flags that cannot go together: refused before anything runs."""
    if args.data and args.scale is not None:
        raise ConfigError(
            f"--scale {args.scale:g}: the size of the synthetic stand-in; it does not apply to "
            "--data (real features); drop one of them"
        )
    pinned = cfg.parse_set(args.sets)
    if SEED_KEY in pinned or "seed" in pinned:
        raise ConfigError(
            "--set train.seed: the recording pins the training seed with --train-seed N; use it"
        )


def default_work(args: argparse.Namespace) -> Path:
    if args.data:
        return Path("runs/record") / f"{args.dataset}-real-{Path(args.data).stem}"
    return Path("runs/record") / f"{args.dataset}-{(args.scale or DEFAULTS['scale']):g}"


def default_table(args: argparse.Namespace, work: Path) -> Path:
    """The committed table for the plain planted-MOSI recording; any other recording gets its
    own file, named after its --work, so that it never replaces the committed one."""
    plain = args.dataset == "mosi" and not (args.data or args.sets or args.train_seed is not None)
    return TABLE if plain else TABLE.parent / f"{work.name}.json.gz"


def settings_for(args: argparse.Namespace, work: Path) -> Any:
    from search.settings import Settings, check

    seed_pin = [] if args.train_seed is None else [f"{SEED_KEY}={args.train_seed}"]
    s = Settings(
        dataset=args.dataset,
        synthetic=not args.data,
        data=str(Path(args.data).resolve()) if args.data else None,
        sets=[*args.sets, *seed_pin],
        scale=None if args.data else (args.scale or DEFAULTS["scale"]),
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
    from search.provenance import sha256_path, versions
    from search.settings import load, load_base
    from search.study.space import load_space

    settings, base = load(work), load_base(work)
    space = load_space(work / layout.SPACE_COPY, base, pinned=cfg.parse_set(settings.sets))
    summary = json.loads((work / layout.SUMMARY).read_text())
    synthetic = base.data.synthetic
    data = synthetic_path(base.data) if synthetic else Path(base.data.path)
    return {
        "command": command,
        "dataset": base.data.dataset,
        "synthetic": synthetic,
        "scale": base.data.scale if synthetic else None,
        "data_file": None if synthetic else data.name,
        "data_sha256": sha256_path(data),
        "sets": [portable(item) for item in settings.sets],  # --set pins, --train-seed's too
        "train_seed": base.train.seed,
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


def portable(arg: str) -> str:
    """An absolute path, alone or as a KEY=VALUE pin's value, as its last name: a table (a
    file of the repository) names the files it was recorded from, not this machine's folders
    (the data's sha256 says which file it was)."""
    key, sep, value = arg.rpartition("=")
    if value.startswith("/"):
        return f"{key}{sep}{Path(value).name}"
    return arg


def _label_median_score(base: Any, metric: str) -> float:
    from atsuko.data.load import load_for_run
    from search.study.onset import label_median_score

    return label_median_score(load_for_run(base, log=None), metric)


def convert(work: Path, table: Path, command: str) -> dict[str, Any]:
    """The finished search in `work` as the curve table at `table`; returns its metadata."""
    from search.bench.curve_table import read_curves, write_table

    trials = read_curves(work)
    meta = meta_for(work, command)
    for trial in trials:  # the training seed of each curve (a second seed is another recording)
        trial["seed"] = trial["params"].get("seed", meta["train_seed"])
    meta["trials"] = len(trials)
    write_table(table, meta, trials)
    return meta


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _check_flags(args)
    work = Path(args.work) if args.work else default_work(args)
    table = Path(args.table) if args.table else default_table(args, work)
    given = shlex.join(portable(a) for a in (sys.argv[1:] if argv is None else argv))
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
    meta = convert(work, table, command)
    print(
        f"curve table: {table} ({meta['trials']} configurations, {data_label(meta)}, "
        f"data sha256 {meta['data_sha256']})",
        flush=True,
    )
    print(describe(table), flush=True)
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
