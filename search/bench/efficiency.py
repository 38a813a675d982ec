"""Figure 5 of `search.bench`: search efficiency on the planted synthetic task.

Per seed: random search with the full epoch budget per trial (scheduler none: how the field's
incumbent toolkit tunes) and TPE with ASHA, both through the driver on the default space, two
trials at once. Every epoch either search spent is placed in the order it was reported; the
figure is how many it took until the best validation score came within 1% of the best score
either method reached, over the same total epoch budget.

With one seed both searches draw the same first configurations (TPE starts from random
samples), so the figure turns on where random search's winner comes: if it is the k-th of
trials of E epochs, TPE+ASHA pays about E + (k - 1) * a for it (a: ASHA's mean epochs per
trial), a ratio of k * E / (E + (k - 1) * a). With N random trials the most a seed allows is
about N * E / (E + what ASHA spent on its first N - 1 trials) (`search_ratio_ceiling`; past
TPE's 10 random draws, its first 10): a configuration only TPE+ASHA finds comes after those.
The details report k and how well ASHA's first rung ranks the trials
(`search_rung_rank_correlation`).

Then the same question over many seeds and scheduler variants, answered from recorded curve
tables without training (the `replay` section, `replay_tables_section`, through
`search.bench.replay_bench`); `live_speedup_median` is the live figure measured the replay's way
(epochs to random search's own best, random / TPE+ASHA).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from search.bench.measures import (
    asha_mean_epochs,
    asha_rungs,
    best_of,
    epochs_by_start,
    epochs_to_within,
    median,
    ratio_ceiling,
    read_results,
    rung_rank_correlation,
    trajectory,
    truncate,
    winner_position,
)
from search.bench.runner import Plan, Runner, say, settings_doc
from search.settings import REDUCTION_FACTOR, default_grace
from search.study.searcher import TPE_STARTUP

WITHIN = 0.01  # "within 1% of the best score"
METHODS = {  # name: (sampler, scheduler)
    "random": ("random", "none"),
    "tpe_asha": ("tpe", "asha"),
}


def _mode(out: Path) -> str:
    try:
        return json.loads((out / "summary.json").read_text())["select"]["mode"]
    except (OSError, ValueError, KeyError, TypeError):
        return "min"


def efficiency_section(plan: Plan, runner: Runner) -> dict[str, Any]:
    """Figure 5: epochs to within 1% of the best score, random (full budget) / TPE+ASHA."""
    work = runner.work
    runner.synth("mosi", plan.eff_scale)
    budget = plan.eff_trials * plan.eff_epochs
    grace = default_grace(plan.eff_epochs)  # TPE+ASHA runs with the search's defaults
    mean = asha_mean_epochs(plan.eff_epochs, grace, REDUCTION_FACTOR)
    # enough TPE+ASHA trials to spend the budget at ASHA's steady-state mean; its trajectory is
    # cut at the budget (a run that ends short of it and never got there counts the budget)
    samples = {"random": plan.eff_trials, "tpe_asha": math.ceil(budget / mean)}
    per: dict[str, list[Any]] = {}
    for rep in range(plan.eff_repeats):
        seed = rep
        paths, mode, results = {}, "min", {}
        order = list(METHODS) if rep % 2 == 0 else list(reversed(METHODS))
        for method in order:
            sampler, scheduler = METHODS[method]
            tag = f"search-{method}-seed{seed}"
            say(f"search efficiency, repeat {rep + 1}/{plan.eff_repeats}: {method}")
            doc = settings_doc(
                work / tag,
                dataset="mosi",
                scale=plan.eff_scale,
                num_samples=samples[method],
                max_epochs=plan.eff_epochs,
                concurrency=2,
                cpus_per_trial=1.0,
                sampler=sampler,
                scheduler=scheduler,
                seed=seed,
            )
            # generous: room for a loaded machine and ASHA's overshoot past the budget
            runner.run(tag, {"kind": "search", "settings": doc}, timeout=max(1800, 12 * budget))
            mode = _mode(work / tag)
            results[method] = read_results(work / tag / "tune")
            paths[method] = truncate(trajectory(results[method], mode), budget)
        for key, value in compare(paths, mode, budget).items():
            per.setdefault(key, []).append(value)
        full = results["random"]  # every trial ran past the first rung: the rung's forecast
        per.setdefault("rung_rank_correlation", []).append(rung_rank_correlation(full, grace, mode))
        per.setdefault("random_winner_position", []).append(winner_position(full, mode))
        ran = epochs_by_start(results["tpe_asha"])  # as run: early trials pass empty rungs
        per.setdefault("asha_epochs_per_trial", []).append(sum(ran) / max(1, len(ran)))
        per.setdefault("ratio_ceiling", []).append(
            ratio_ceiling(ran, plan.eff_trials, plan.eff_epochs, TPE_STARTUP)
        )
    out: dict[str, Any] = {"search_epochs_ratio": median(per["ratio"])}
    out["search_match_ratio_median"] = median(per["match_ratio"])
    out.update({f"search_{k}": v for k, v in per.items() if k != "ratio"})
    out["search_epochs_ratios"] = per["ratio"]
    out["search_budget_epochs"] = budget
    out["search_trials"] = samples
    out["search_epochs_per_trial"] = plan.eff_epochs
    out["search_asha_rungs"] = asha_rungs(plan.eff_epochs, grace, REDUCTION_FACTOR)
    out["search_asha_mean_epochs"] = mean
    out["live_speedup_median"] = out["search_match_ratio_median"]
    return out


def held_out(plan: Plan) -> Path | None:
    """The held-out curve table: the plan's, or the committed one where it exists."""
    from search.bench.curve_table import HELD_OUT

    if plan.held_out_table:
        return Path(plan.held_out_table)
    if HELD_OUT.is_file():
        return HELD_OUT
    say(f"replay: no held-out curve table at {HELD_OUT} yet: the tuning table only")
    return None


def replay_tables_section(plan: Plan, runner: Runner) -> dict[str, Any]:
    """The replay comparison on the tuning curve table and the held-out one (its error, if it
    cannot run): recorded learning curves, no training."""
    from search.bench.replay_bench import replay_section
    from search.bench.runner import BenchError

    try:
        return replay_section(
            Path(plan.replay_table),
            runner.work / "replay",
            plan.replay_seeds,
            compute_seeds=plan.replay_compute_seeds,
            compute_budgets=plan.replay_compute_budgets,
            held_out=held_out(plan),
        )
    except BenchError as exc:
        say(f"replay: {exc}")
        return {"replay_error": str(exc)}


def compare(paths: dict[str, list[tuple[int, float]]], mode: str, budget: int) -> dict[str, Any]:
    """Epochs each method took to come within 1% of the best either reached, and their ratio;
    a method that never got there counts as the whole budget (a lower bound), and is flagged.
    `match_ratio`: the same for the best score random search reached (its own best)."""
    reference = best_of(paths.values(), mode)
    out: dict[str, Any] = {"reference_score": reference}
    spent = {}
    for method, path in paths.items():
        hit = epochs_to_within(path, reference, mode, WITHIN)
        spent[method] = hit if hit is not None else budget
        out[f"epochs_{method}"] = spent[method]
        out[f"reached_{method}"] = hit is not None
        out[f"best_{method}"] = path[-1][1] if path else math.nan
        out[f"spent_{method}"] = path[-1][0] if path else 0
    out["ratio"] = spent["random"] / spent["tpe_asha"]
    # beside the figure: how soon TPE+ASHA matched random search's own best (a search that
    # keeps improving finds the overall best late, which the figure alone does not show)
    own = paths["random"][-1][1] if paths["random"] else math.nan
    matched = {m: epochs_to_within(path, own, mode, WITHIN) for m, path in paths.items()}
    out["match_epochs_tpe_asha"] = matched["tpe_asha"]
    out["match_ratio"] = (matched["random"] or budget) / (matched["tpe_asha"] or budget)
    return out
