"""The replay comparison: scheduler variants over many seeds, answered from the curve table.

Every search is the search's own searcher and scheduler (`search.study.driver.search_algorithms`:
OptunaSearch with the seeded sampler, Ray Tune's ASHA), two trials at once, run on a simulated
clock by `search.bench.simulate` (Tune's calls, the recorded epoch times, no sleeping), so a
search costs about a second and 30 seeds of every method fit in minutes. The Tune replay
(`search.bench.replay`, through `driver.run`) checks it. Per method, seed and budget (in full
trials' epochs), the best-so-far trajectory is cut at the budget and measured by
`search.bench.replay_stats`.
Tested in `tests/search/bench/test_replay_bench.py`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from search.bench.curve_table import data_label, load_table
from search.bench.measures import asha_mean_epochs
from search.bench.replay_stats import grace_candidates
from search.bench.runner import BenchError, say
from search.bench.simulate import simulate_search, table_space, without_patience
from search.settings import BRACKETS, REDUCTION_FACTOR, default_grace, default_onset

MARGIN = 1.5  # trials beyond the expected count, so that every search can spend its budget
NO_PATIENCE = "train.patience=0"
BASELINES = ("random", "random_full")  # what the methods are measured against


def methods(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Method name -> its search settings (sampler, scheduler and every ASHA setting, given
    explicitly, so that a name means the same whatever the defaults are): `random` trains each
    trial to its patience stop, `random_full` all its epochs (`--set train.patience=0`, as much
    of the field trains: the second baseline); `tpe_asha` is ASHA
    with its first rung at max-epochs / 8, reduction factor 4 and one bracket; the variants
    change one or two of those; `tpe_rung` cuts once only, at that first rung, keeping a
    quarter; `tpe_onset` stops, at the default onset epoch, the trials no better than the
    label-median score; `tpe_rungs_asha` is `tpe_asha` with TPE fitted on the trials at one
    epoch (BOHB-style). The search's defaults are one of them or `default`."""
    max_t = int(table["meta"]["max_epochs"])
    first = max(1, max_t // 8)
    grace, _ = grace_candidates(table)
    if grace == first:
        grace = min(max_t - 1, 2 * grace)
    asha = {"sampler": "tpe", "scheduler": "asha", "grace_period": first,
            "reduction_factor": 4, "brackets": 1}  # fmt: skip
    rung = {"sampler": "tpe", "scheduler": "rung"}
    out = {
        "random": {"sampler": "random", "scheduler": "none"},
        "random_full": {"sampler": "random", "scheduler": "none", "sets": [NO_PATIENCE]},
        "tpe": {"sampler": "tpe", "scheduler": "none"},
        "tpe_asha": dict(asha),
        "tpe_asha_brackets2": {**asha, "brackets": 2},
        "tpe_asha_brackets3": {**asha, "brackets": 3},
        f"tpe_asha_grace{grace}": {**asha, "grace_period": grace},
        f"tpe_asha_grace{grace}_rf3": {**asha, "grace_period": grace, "reduction_factor": 3},
        "tpe_rung": {**rung, "grace_period": first, "reduction_factor": 4},
        "tpe_onset": {"sampler": "tpe", "scheduler": "onset", "onset_epoch": default_onset(max_t)},
        "tpe_rungs_asha": {**asha, "sampler": "tpe_rungs"},
    }
    if default_method(out, max_t) == "default":
        out["default"] = defaults(max_t)
    return out


def defaults(max_t: int) -> dict[str, Any]:
    """What `search/run.py` does without scheduler flags, in the terms of `methods`."""
    return {"sampler": "tpe", "scheduler": "asha", "grace_period": default_grace(max_t),
            "reduction_factor": REDUCTION_FACTOR, "brackets": BRACKETS}  # fmt: skip


def default_method(named: dict[str, dict[str, Any]], max_t: int) -> str:
    """The name among `named` whose settings are the search's defaults (else `default`)."""
    return next((n for n, change in named.items() if change == defaults(max_t)), "default")


def num_samples(table: dict[str, Any], change: dict[str, Any], budget: int) -> int:
    """Trials enough for a method to spend `budget` epochs (ASHA's mean epochs a trial; the
    first rung for a single rung, which keeps few; the onset epoch for the onset stop, a
    lower bound; or the recorded mean curve length), with a margin."""
    max_t = int(table["meta"]["max_epochs"])
    lengths = [len(t["scores"]) for t in table["trials"]]
    per = sum(lengths) / len(lengths)
    if without_patience(change.get("sets", [])):
        per = max_t
    elif change["scheduler"] == "asha":
        per = asha_mean_epochs(max_t, change["grace_period"], change["reduction_factor"])
        per /= change["brackets"]  # brackets > 1 start some trials at later rungs only
    elif change["scheduler"] == "rung":
        per = min(per, change["grace_period"])
    elif change["scheduler"] == "onset":
        per = min(per, change["onset_epoch"])
    return max(1, math.ceil(MARGIN * budget / max(per, 1.0)))


def jobs(table: dict[str, Any], seeds: int, budgets: tuple[int, ...]) -> list[dict[str, Any]]:
    """One search spec per (budget, seed, method)."""
    meta = table["meta"]
    out = []
    for n in budgets:
        budget = n * int(meta["max_epochs"])
        for seed in range(seeds):
            for name, change in methods(table).items():
                settings = {
                    "dataset": meta["dataset"],
                    "synthetic": True,
                    "scale": meta.get("scale"),  # null on real data: the space is the same
                    "max_epochs": int(meta["max_epochs"]),
                    "num_samples": num_samples(table, change, budget),
                    "concurrency": 2,
                    "seed": seed,
                    **change,
                }
                out.append({"method": name, "seed": seed, "trials": n, "budget": budget,
                            "settings": settings})  # fmt: skip
    return out


def trajectories(
    table: dict[str, Any], all_jobs: list[dict], surrogate: Any = None, workers: int = 1
) -> dict[int, dict[str, list[list]]]:
    """budget (trials) -> method -> per seed, the best-so-far trajectory cut at the budget,
    answered by the nearest recorded curve or by `surrogate`, in `workers` processes (each
    search is seeded, so the paths do not depend on it); progress on the console every tenth
    of the searches."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study: thousands
    ordered = sorted(all_jobs, key=lambda j: (j["trials"], j["seed"]))
    out: dict[int, dict[str, list[list]]] = {}
    started, step = time.monotonic(), max(1, len(ordered) // 10)
    paths = _searches(table, ordered, surrogate, workers)
    for k, (job, path) in enumerate(zip(ordered, paths, strict=True), 1):
        out.setdefault(job["trials"], {}).setdefault(job["method"], []).append(path)
        if k % step == 0 or k == len(ordered):
            say(f"replay: {k}/{len(ordered)} searches ({time.monotonic() - started:.0f} s)")
    return out


_WORKER: dict[str, Any] = {}  # a pool process's table, space and surrogate, set once


def _load_worker(table: dict[str, Any], surrogate: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _WORKER.update(table=table, space=table_space(table), surrogate=surrogate)


def _search(job: dict[str, Any]) -> list:
    w = _WORKER
    return simulate_search(w["table"], w["space"], job["settings"], job["budget"], w["surrogate"])


def _searches(table: dict[str, Any], ordered: list[dict], surrogate: Any, workers: int):
    """Each job's trajectory, in order: here, or in a pool of `workers` fresh processes."""
    if workers <= 1:
        _load_worker(table, surrogate)
        yield from map(_search, ordered)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: nothing forked mid-import
    with ProcessPoolExecutor(workers, spawn, _load_worker, (table, surrogate)) as pool:
        yield from pool.map(_search, ordered)


def load(table_path: Path) -> dict[str, Any]:
    if not table_path.is_file():
        raise BenchError(
            f"no curve table at {table_path}; record it with python -m search.bench.record"
        )
    try:
        return load_table(table_path)
    except (OSError, ValueError) as exc:
        raise BenchError(f"{table_path}: unreadable curve table ({exc})") from None


def summarise(
    paths: dict[str, list[list]], table: dict[str, Any], budget: int
) -> dict[str, dict[str, Any]]:
    """Per method: speedup over random search (quartiles), regret at each budget fraction
    (quartiles), mean rank by final regret. `paths`: method -> per-seed trajectories."""
    from search.bench.replay_stats import (
        FRACTIONS,
        best_at,
        mean_ranks,
        quartiles,
        regret,
        regret_scale,
        speedup,
    )

    mode = table["meta"]["mode"]
    best, median = regret_scale(table)
    seeds = len(paths["random"])
    out: dict[str, dict[str, Any]] = {}
    finals: dict[str, list[float]] = {}
    for method, runs in paths.items():
        ups = [speedup(paths["random"][s], runs[s], mode, budget) for s in range(seeds)]
        regrets = {
            f: [regret(best_at(runs[s], f * budget), best, median) for s in range(seeds)]
            for f in FRACTIONS
        }
        finals[method] = regrets[1.0]
        out[method] = {
            "speedup": quartiles(ups),
            "speedups": ups,
            "regret": {str(f): quartiles(v) for f, v in regrets.items()},
        }
    for method, rank in mean_ranks(finals).items():
        out[method]["mean_rank"] = rank
    return out


def best_scheduler(by_budget: dict[int, dict[str, dict[str, Any]]]) -> str:
    """The TPE method (every scheduler setting, none included) that does best at any time:
    the lowest median regret averaged over the budget fractions and budgets (early progress
    counts as much as the end, which the mean rank by final regret alone misses)."""
    names = [m for m in next(iter(by_budget.values())) if m not in BASELINES]

    def anytime(m: str) -> float:
        medians = [q[1] for b in by_budget.values() for q in b[m]["regret"].values()]
        return sum(medians) / len(medians)

    return min(names, key=anytime)


def regret_curves(paths: list[list], table: dict[str, Any], budget: int, points: int = 64):
    """Epoch grid and the (25th, 50th, 75th) percentile regret over seeds at each point."""
    from search.bench.replay_stats import best_at, quartiles, regret, regret_scale

    best, median = regret_scale(table)
    grid = [max(1, round(budget * (i + 1) / points)) for i in range(points)]
    bands = [quartiles([regret(best_at(p, e), best, median) for p in paths]) for e in grid]
    return grid, bands


def figure(
    by_budget: dict[int, dict[str, list[list]]], table: dict, path: Path, default: str = ""
) -> Path:
    """Best-so-far regret against epochs, median and IQR band per method, one panel a budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    max_t = int(table["meta"]["max_epochs"])
    fig, axes = plt.subplots(1, len(by_budget), figsize=(6 * len(by_budget), 4.2), squeeze=False)
    for ax, (n, paths) in zip(axes[0], sorted(by_budget.items()), strict=True):
        for method, runs in paths.items():
            grid, bands = regret_curves(runs, table, n * max_t)
            low, mid, high = zip(*bands, strict=True)
            label = f"{method} (default)" if method == default else method
            (line,) = ax.plot(grid, mid, label=label, lw=2.5 if method == default else 1.2)
            ax.fill_between(grid, low, high, alpha=0.15, color=line.get_color())
        ax.set_title(f"budget {n} full trials ({n * max_t} epochs)")
        ax.set_xlabel("epochs spent")
        ax.set_ylabel("normalised regret of the best so far")
        ax.set_yscale("symlog", linthresh=0.05)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def replay_section(
    table_path: Path,
    work: Path,
    seeds: int,
    budgets: tuple[int, ...] = (16, 64),
    compute_seeds: int = 0,
    compute_budgets: tuple[int, ...] = (16, 64, 256),
    held_out: Path | None = None,
) -> dict[str, Any]:
    """Every method over `seeds` seeds at each budget; the figures of the `--json` keys. With
    `compute_seeds`, also both replays (nearest, surrogate) in compute ratios over that many
    seeds at `compute_budgets` (`search.bench.replay_tables`), on the `held_out` table too."""
    table = load(table_path)
    meta = table["meta"]
    all_jobs = jobs(table, seeds, budgets)
    say(
        f"replay: {len(all_jobs)} searches ({len(methods(table))} methods x {seeds} seeds x "
        f"budgets {budgets}) on {len(table['trials'])} recorded configurations"
    )
    traj = trajectories(table, all_jobs)
    by = {n: summarise(paths, table, n * int(meta["max_epochs"])) for n, paths in traj.items()}
    grace, corr = grace_candidates(table)
    first = by[min(budgets)]
    name = default_method(methods(table), int(meta["max_epochs"]))
    default = first[name]
    out = {
        "replay_seeds": seeds,
        "table_configs": len(table["trials"]),
        "table_scale": meta.get("scale"),
        "table_data": data_label(meta),
        "default_method": name,
        "replay_speedup_median": default["speedup"][1],
        "replay_speedup_iqr": [default["speedup"][0], default["speedup"][2]],
        "replay_regret": {m: {f: q[1] for f, q in v["regret"].items()} for m, v in first.items()},
        "replay_by_budget": {str(n): v for n, v in by.items()},
        "replay_rung_correlation": {str(e): c for e, c in corr.items()},
        "replay_grace_from_table": grace,
        "replay_best_scheduler": best_scheduler(by),
        "replay_figure": str(figure(traj, table, work / "replay_regret.png", name)),
    }
    if compute_seeds:
        from search.bench.replay_tables import tables_section

        other = None
        if held_out is not None:
            held = load(held_out)
            other = (held_out, held, default_method(methods(held), int(held["meta"]["max_epochs"])))
        out.update(tables_section(table_path, table, compute_seeds, name, compute_budgets, other))
    return out
