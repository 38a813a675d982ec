"""Every method on both replays (nearest recorded curve, surrogate) in the epochs a user pays.

Per seed and replay, each method runs at budgets of 16, 64 and 256 full trials, and one
reference random search (its own seed, REFERENCE_SEED + seed, so that random search is not
measured against its own draws) runs up to CAP x the largest budget; `search.bench.
replay_compute` turns them into compute ratios, epochs to the top-1%/5% qualities and final
regret. On the surrogate replay those qualities and the regret scale come from the table as the
surrogate answers it (`search.bench.surrogate.surrogate_table`). The same surrogate searches are
also measured noiselessly (`surrogate_noiseless`): each point is the noiseless quality of the
configuration the search would export at that time (`search.bench.simulate`), scaled by the
recorded configurations' qualities (`noiseless_table`), in regret only. The noisy measures
count a lucky epoch as progress, so a method that trains each configuration longer collects
more of them; this one judges only what was chosen.

`--json` gets `tables`: one object per curve table, {name, role ("tuning" | "held_out"),
compute_ratio_median / _iqr / _censored per budget (the default method on the surrogate
replay), regret_median and random_regret_median per budget and budget fraction, target (the
median compute ratio at 64 full trials >= TARGET_RATIO, and a median regret never above random
search's), noiseless (the regret medians on the noiseless measure), surrogate_rank_corr,
seed_spread (of best scores between training seeds, from the table's repeats; null without)
and repeated_configs}. Defaults are chosen on the tuning table
(the committed planted MOSI one); the held-out table (`--held-out`) is only reported, as the
confirmation.
Tested in `tests/search/bench/test_surrogate_replay.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search.bench.replay_bench import jobs, trajectories
from search.bench.replay_compute import CAP, method_measures
from search.bench.replay_stats import FRACTIONS, best_at, quartiles, regret, regret_scale
from search.bench.runner import say
from search.bench.surrogate import (
    Surrogate,
    heldout_rank_corr,
    noiseless_table,
    seed_spread,
    surrogate_table,
)

BUDGETS = (16, 64, 256)
REPLAYS = ("nearest", "surrogate", "surrogate_noiseless")
REFERENCE_SEED = 10_000
TARGET_RATIO, TARGET_BUDGET = 2.0, "64"  # the held-out target: compute ratio at 64 trials


def references(
    table: dict[str, Any], seeds: int, budgets: tuple[int, ...], surrogate: Any, workers: int = 1
):
    """Per seed, random search's trajectory up to CAP x the largest budget."""
    specs = [j for j in jobs(table, seeds, (CAP * max(budgets),)) if j["method"] == "random"]
    for spec in specs:
        spec["settings"]["seed"] = REFERENCE_SEED + spec["seed"]
    return trajectories(table, specs, surrogate, workers)[CAP * max(budgets)]["random"]


def measure(traj: dict, refs: list | None, scoring: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """budget -> method -> compute ratio, epochs to qualities (against `refs`), regret at each
    budget fraction and final (over seeds). Without `refs`, regret only: the noiseless path
    can fall back (a lucky epoch makes a worse configuration the incumbent), so it has no
    epoch at which it "reached" a score."""
    max_t = int(scoring["meta"]["max_epochs"])
    best, median = regret_scale(scoring)
    out: dict[str, dict[str, Any]] = {}
    for n, paths in sorted(traj.items()):
        budget = n * max_t
        out[str(n)] = {}
        for method, runs in paths.items():
            row = method_measures(runs, refs, scoring, budget) if refs is not None else {}
            finals = [regret(best_at(run, budget), best, median) for run in runs]
            row["final_regret"], row["final_regrets"] = quartiles(finals), finals
            row["regret"] = {
                str(f): quartiles([regret(best_at(run, f * budget), best, median) for run in runs])
                for f in FRACTIONS
            }
            out[str(n)][method] = row
    return out


def _part(traj: dict, k: int) -> dict:
    """The trajectories as (epochs, the k-th number of each point): 1 the best score, 2 the
    incumbent's quality (`search.bench.simulate`)."""
    return {
        n: {m: [[(p[0], p[k]) for p in path] for path in runs] for m, runs in by.items()}
        for n, by in traj.items()
    }


def compare_replays(
    table: dict[str, Any],
    seeds: int,
    budgets: tuple[int, ...] = BUDGETS,
    only: frozenset[str] | None = None,
    nearest: bool = True,
    workers: int = 1,
    surrogate_replay: bool = True,
) -> dict[str, Any]:
    """Both replays' measures (one alone without `nearest` or `surrogate_replay`; the
    surrogate's also noiseless) and the surrogate's held-out rank correlation; every method,
    or those named in `only`; the searches in `workers` processes."""
    surrogate = Surrogate(table)
    corr = heldout_rank_corr(table)
    say(f"replay: surrogate fitted, held-out rank correlation of best scores {corr:.2f}")
    all_jobs = [j for j in jobs(table, seeds, budgets) if only is None or j["method"] in only]
    out: dict[str, Any] = {
        "surrogate_rank_corr": corr,
        "surrogate_noise": surrogate.noise,
        "seed_spread": seed_spread(table),  # None: one seed per configuration
        "repeated_configs": sum(bool(t.get("repeats")) for t in table["trials"]),
    }
    if out["seed_spread"] is not None:
        say(
            f"replay: seed-to-seed spread of best scores {out['seed_spread']:.4f} "
            f"({out['repeated_configs']} configurations with a second seed)"
        )
    replays = [("nearest", None, table)] if nearest else []
    if surrogate_replay:
        replays.append(("surrogate", surrogate, surrogate_table(table, surrogate)))
    for name, answer, scoring in replays:
        say(f"replay ({name}): {len(all_jobs)} searches and {seeds} reference random searches")
        traj = trajectories(table, all_jobs, answer, workers)
        refs = references(table, seeds, budgets, answer, workers)
        out[name] = measure(_part(traj, 1), [[p[:2] for p in path] for path in refs], scoring)
        if answer is not None:
            out[f"{name}_noiseless"] = measure(_part(traj, 2), None, noiseless_table(table, answer))
    return out


def _regret_medians(
    compared: dict[str, Any], method: str, replay: str = "surrogate"
) -> dict[str, dict[str, float]]:
    return {
        n: {f: q[1] for f, q in by_method[method]["regret"].items()}
        for n, by_method in compared[replay].items()
    }


def _noiseless(compared: dict[str, Any], default: str) -> dict[str, Any]:
    """The default method's median regrets on the noiseless measure, random search's beside."""
    return {
        "regret_median": _regret_medians(compared, default, "surrogate_noiseless"),
        "random_regret_median": _regret_medians(compared, "random", "surrogate_noiseless"),
    }


def table_entry(path: Path, role: str, compared: dict[str, Any], default: str) -> dict[str, Any]:
    """The `tables` object of one curve table: the default method on the surrogate replay,
    against random search (with patience) for the target."""
    by_budget = compared["surrogate"].items()
    rows = {n: by_method[default]["compute_ratio"] for n, by_method in by_budget}
    mine, random = _regret_medians(compared, default), _regret_medians(compared, "random")
    at_target = rows.get(TARGET_BUDGET)
    return {
        "name": Path(path).name.removesuffix(".json.gz"),
        "role": role,
        "method": default,
        "replay": "surrogate",
        "compute_ratio_median": {n: r["q"][1] for n, r in rows.items()},
        "compute_ratio_iqr": {n: [r["q"][0], r["q"][2]] for n, r in rows.items()},
        "compute_ratio_censored": {n: r["censored"] for n, r in rows.items()},
        "regret_median": mine,
        "random_regret_median": random,
        "target": {
            "compute_ratio": None if at_target is None else at_target["q"][1] >= TARGET_RATIO,
            "regret": all(mine[n][f] <= random[n][f] for n in mine for f in mine[n]),
        },
        "noiseless": _noiseless(compared, default),
        "surrogate_rank_corr": compared["surrogate_rank_corr"],
        "seed_spread": compared["seed_spread"],
        "repeated_configs": compared["repeated_configs"],
    }


def one_table(
    path: Path,
    table: dict[str, Any],
    seeds: int,
    default: str,
    budgets: tuple[int, ...] = BUDGETS,
    role: str = "tuning",
    **choice: Any,
) -> dict[str, Any]:
    """Both replays of one table: the `--json` keys `replay_compute` and `tables` (its one
    object, as `role`; none without the surrogate replay, which it is measured on), with the
    surrogate's rank correlation and noise. `choice`: the methods, replays and workers of
    `compare_replays` (default: all, one process)."""
    compared = compare_replays(table, seeds, budgets, **choice)
    entries = [table_entry(path, role, compared, default)] if "surrogate" in compared else []
    return {
        "surrogate_rank_corr": compared["surrogate_rank_corr"],
        "replay_compute_seeds": seeds,
        "replay_compute": {k: compared[k] for k in REPLAYS if k in compared},
        "surrogate_noise": compared["surrogate_noise"],
        "tables": entries,
    }


def tables_section(
    table_path: Path,
    table: dict[str, Any],
    seeds: int,
    default: str,
    budgets=BUDGETS,
    held_out: tuple[Path, dict[str, Any], str] | None = None,
) -> dict[str, Any]:
    """The `--json` keys: `replay_compute` (both replays, every method) and `tables`; with
    `held_out` (its path, table and default method's name), the same for that table under
    `held_out_compute`, and its `tables` object."""
    out = one_table(table_path, table, seeds, default, budgets, "tuning")
    if held_out is not None:
        path, other, name = held_out
        say(f"replay: the held-out table {Path(path).name} (reported, never tuned on)")
        confirmed = compare_replays(other, seeds, budgets)
        out["held_out_compute"] = {k: confirmed[k] for k in REPLAYS}
        out["tables"].append(table_entry(path, "held_out", confirmed, name))
    return out
