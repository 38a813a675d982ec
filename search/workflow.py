"""What one `search/run.py` command runs: a search or a sensitivity sweep, then the report.

A search ends with router diagnostics (with `--diagnostics`) and `report.html`/`report.md` in
its output folder; a sweep (`--sensitivity`) ends with its curves and the same report. The
report is rebuilt from whatever exists, so an interrupted run still gets one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from atsuko.config import DATASETS
from atsuko.errors import AtsukoError, ConfigError
from search import layout

SWEEP_ONLY = ("seeds", "around", "points", "with_test", "metric")
# a sweep trains every point of its grid with seeds 1111.. and ends with its curves: these
# flags of a search would mean nothing there
SEARCH_ONLY = (
    "num_samples",
    "sampler",
    "scheduler",
    "grace_period",
    "reduction_factor",
    "brackets",
    "onset_epoch",
    "epoch_budget",
    "seed",
    "final_seeds",
    "final_top_k",
    "final_margin",
    "final_cv",
    "diagnostics",
    "diagnostics_epochs",
    "warm_start",
    "warm_start_k",
)


# each scheduler's own flags: under another scheduler they would set nothing
SCHEDULER_FLAGS = {
    "asha": ("grace_period", "reduction_factor", "brackets"),
    "rung": ("grace_period", "reduction_factor"),
    "onset": ("onset_epoch",),
    "none": (),
}
SCHEDULER_DOES = {
    "asha": "ASHA cuts at rungs grace x rf^k",
    "rung": "rung cuts once, at --grace-period",
    "onset": "onset stops trials no better than the label-median score at --onset-epoch",
    "none": "none runs every trial to its full budget",
}


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    """The flags among `names` that the command line gave."""
    return [f"--{k.replace('_', '-')}" for k in names if getattr(args, k) not in (None, False)]


def _check_scheduler_flags(args: argparse.Namespace) -> None:
    """A flag of another scheduler than the one chosen (asha by default) is refused."""
    chosen = args.scheduler or "asha"
    for name in sorted({f for flags in SCHEDULER_FLAGS.values() for f in flags}):
        if name in SCHEDULER_FLAGS[chosen] or not _given(args, (name,)):
            continue
        flag = _given(args, (name,))[0]
        owners = [s for s, flags in SCHEDULER_FLAGS.items() if name in flags]
        raise ConfigError(
            f"{flag} sets the {' or '.join(owners)} scheduler, but the scheduler is {chosen} "
            f"({SCHEDULER_DOES[chosen]}); use --scheduler {owners[0]} or drop {flag}"
        )


def datasets(text: str | None) -> list[str]:
    """`--dataset mosi,mosei` -> ['mosi', 'mosei'], each checked."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    for name in names:
        if name not in DATASETS:
            raise ConfigError(
                f"--dataset: unknown dataset '{name}'; expected one of {', '.join(DATASETS)}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"--dataset {text}: a dataset is named twice")
    return names


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed command line; returns the exit status."""
    names = datasets(args.dataset)
    if args.diagnostics_epochs is not None and not args.diagnostics:
        raise ConfigError("--diagnostics-epochs sets the diagnostics' budget: add --diagnostics")
    if args.warm_start_k is not None and not args.warm_start:
        raise ConfigError("--warm-start-k sets how many configurations --warm-start takes: add it")
    _check_scheduler_flags(args)
    for flag in _given(args, ("final_top_k", "final_margin", "final_cv")):
        if args.final_seeds == 0:
            raise ConfigError(
                f"{flag} acts on the final re-runs, but --final-seeds 0 skips them; drop one "
                "of them"
            )
    if args.sensitivity:
        given = _given(args, SEARCH_ONLY)
        if given:
            raise ConfigError(
                f"{given[0]} belongs to a search, not a sensitivity sweep (which trains every "
                "point of its grid with --seeds seeds); drop it or --sensitivity"
            )
        return sweep(args, names)
    given = _given(args, SWEEP_ONLY)
    if given:
        raise ConfigError(f"{given[0]} belongs to a sensitivity sweep: add --sensitivity PARAMS")
    if len(names) > 1:
        raise ConfigError(
            f"--dataset {args.dataset}: a search takes one dataset; several datasets are for "
            "--sensitivity sweeps (the paper's twin-axis figure)"
        )
    args.dataset = names[0] if names else None
    return search(args)


def search(args: argparse.Namespace) -> int:
    from search import settings
    from search.study import driver

    resolved = settings.from_args(args)
    code = driver.run(resolved, resume=bool(args.resume))
    if code in (0, 1):
        if args.diagnostics and code == 0:
            diagnostics(resolved, args.diagnostics_epochs)
        report(resolved.out_dir, args)
        driver.upload(resolved.storage)
    return code


def diagnostics(resolved: Any, epochs: int | None) -> None:
    """Router diagnostics of the best config, trained in a Ray task with a trial's resources on
    the search's cluster (or a local Ray): never on the driver's node, which on the cloud
    configs is a head with no CPU for training and no GPU."""
    from search.analysis.diagnostics import run_diagnostics_on_ray
    from search.runtime import session as ray_session

    session = ray_session.start_for(resolved)
    try:
        run_diagnostics_on_ray(
            resolved.out_dir,
            cpus=resolved.cpus_per_trial,
            gpus=resolved.gpus_per_trial,
            epochs=epochs,
        )
    finally:
        session.shutdown()


def sweep(args: argparse.Namespace, names: list[str]) -> int:
    from search import settings
    from search.runtime.storage import Storage
    from search.sweep.runner import run_sensitivity

    if args.resume:
        raise ConfigError(
            "--resume is for searches; a sweep resumes when the same command runs again "
            "with the same --out"
        )
    if not names:
        raise ConfigError("--dataset is required (one or more of: " + ", ".join(DATASETS) + ")")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or str(Path("runs") / layout.SENS_DIR / f"{'-'.join(names)}-{stamp}")
    if Storage(out).remote:
        raise ConfigError(f"--out {out}: a sensitivity sweep writes to a folder (local or shared)")
    if args.importance and not (Path(out) / layout.TRIALS).is_file():
        raise ConfigError(
            f"--importance ranks a search's parameters, but --out {out} holds no search "
            f"({layout.TRIALS}); drop it, or sweep into a search's --out"
        )
    params = [p.strip() for p in args.sensitivity.split(",") if p.strip()]
    base = argparse.Namespace(**{**vars(args), "dataset": names[0], "out": out})
    resolved = settings.from_args(base)
    run_sensitivity(
        names,
        params,
        seeds=args.seeds or 3,
        around=args.around or "default",
        points=args.points or 5,
        with_test=bool(args.with_test),
        metric=args.metric,
        out=out,
        settings=resolved,
    )
    report(Path(out), args)
    return 0


def report(out: Path, args: argparse.Namespace) -> None:
    """Build the report; a failure here never costs the run's outputs."""
    from search.report import build_report

    try:
        html, _ = build_report(out, importance=args.importance, metric=args.metric)
    except AtsukoError as exc:
        print(f"warning: no report ({exc}); rebuild it with: python search/report.py {out}")
        return
    print(f"Report: {html}  (rebuild: python search/report.py {out})", flush=True)
