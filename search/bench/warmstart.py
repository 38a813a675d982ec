"""Figure 6 of `search.bench`: warm start from MOSI to MOSEI on the planted synthetic pair.

The synthetic generator plants the same structure (bands, deciding modalities) in MOSI and
MOSEI. One MOSI search (TPE with ASHA, seed 0) runs first; then, per seed 1, 2, ..., a
MOSEI-shaped search cold and the same search warm-started from the MOSI one (`--warm-start`),
with the same trials, epochs, sampler seed and scheduler. The MOSEI seeds differ from the MOSI
search's: with the same seed (and space) TPE's first random draws are the same configurations,
so a cold search would re-run the MOSI search's first trials, a warm start by accident.

Every epoch either MOSEI search spent is placed in the order it was reported; the figure is the
epochs each took until its best validation score came within 1% of the better final score of
the two, cold / warm, median over seeds. An arm that never got there counts every epoch it
spent (a lower bound on its need), and is flagged.

Every figure here is measured live: no table of recorded searches covers this task yet.
Tested in `tests/search/bench/test_warmstart.py` (from recorded trial logs).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from search import layout
from search.bench.measures import (
    best_of,
    epochs_to_within,
    median,
    read_results,
    trajectory,
)
from search.bench.runner import Plan, Runner, say, settings_doc

WITHIN = 0.01  # "within 1% of the better final score"
SOURCE_SEED = 0  # the MOSI search's sampler seed; the MOSEI searches take 1, 2, ...
ARMS = ("cold", "warm")


def _mode(out: Path) -> str:
    try:
        return json.loads((out / layout.SUMMARY).read_text())["select"]["mode"]
    except (OSError, ValueError, KeyError, TypeError):
        return "min"


def compare_arms(paths: dict[str, list[tuple[int, float]]], mode: str) -> dict[str, Any]:
    """Epochs each arm took to come within 1% of the better final score of the two, and
    cold / warm; an arm that never got there counts the epochs it spent, flagged."""
    reference = best_of(paths.values(), mode)
    out: dict[str, Any] = {"reference_score": reference}
    spent = {}
    for arm in ARMS:
        path = paths[arm]
        hit = epochs_to_within(path, reference, mode, WITHIN)
        total = path[-1][0] if path else 0
        spent[arm] = hit if hit is not None else total
        out[f"epochs_{arm}"] = spent[arm]
        out[f"reached_{arm}"] = hit is not None
        out[f"best_{arm}"] = path[-1][1] if path else math.nan
        out[f"spent_{arm}"] = total
    out["ratio"] = spent["cold"] / spent["warm"] if spent["warm"] else math.nan
    return out


def _search(plan: Plan, out: Path, dataset: str, scale: float, seed: int, **more: Any) -> dict:
    return {
        "kind": "search",
        "settings": settings_doc(
            out,
            dataset=dataset,
            scale=scale,
            max_epochs=plan.ws_epochs,
            grace_period=plan.ws_grace,
            concurrency=2,
            cpus_per_trial=1.0,
            sampler="tpe",
            scheduler="asha",
            seed=seed,
            **more,
        ),
    }


def warmstart_section(plan: Plan, runner: Runner) -> dict[str, Any]:
    """Figure 6: epochs to within 1% of the better final score, cold / warm-started."""
    work = runner.work
    runner.synth("mosi", plan.ws_source_scale)
    runner.synth("mosei", plan.ws_scale)
    source = work / "warmstart-source-mosi"
    say(f"warm start: the MOSI search ({plan.ws_source_trials} trials)")
    spec = _search(plan, source, "mosi", plan.ws_source_scale, 0, num_samples=plan.ws_source_trials)
    timeout = max(1800, 30 * plan.ws_source_trials * plan.ws_epochs)
    runner.run("warmstart-source", spec, timeout=timeout)
    per: dict[str, list[Any]] = {}
    for rep in range(plan.ws_repeats):
        seed = SOURCE_SEED + 1 + rep
        paths, mode = {}, "min"
        for arm in ARMS if rep % 2 == 0 else tuple(reversed(ARMS)):
            tag = f"warmstart-{arm}-seed{seed}"
            say(f"warm start, repeat {rep + 1}/{plan.ws_repeats} (seed {seed}): MOSEI {arm}")
            warm = {"warm_start": [str(source)], "warm_start_k": plan.ws_k} if arm == "warm" else {}
            spec = _search(
                plan, work / tag, "mosei", plan.ws_scale, seed, num_samples=plan.ws_trials, **warm
            )
            runner.run(tag, spec, timeout=max(1800, 30 * plan.ws_trials * plan.ws_epochs))
            mode = _mode(work / tag)
            paths[arm] = trajectory(read_results(work / tag / layout.TUNE_DIR), mode)
        for key, value in compare_arms(paths, mode).items():
            per.setdefault(key, []).append(value)
    out: dict[str, Any] = {"warmstart_epochs_ratio": median(per["ratio"])}
    out["warmstart_epochs_ratios"] = per.pop("ratio")
    out.update({f"warmstart_{k}": v for k, v in per.items()})
    out["warmstart_trials"] = plan.ws_trials
    out["warmstart_epochs_per_trial"] = plan.ws_epochs
    out["warmstart_k"] = plan.ws_k
    out["warmstart_source_trials"] = plan.ws_source_trials
    out["warmstart_seeds"] = [SOURCE_SEED + 1 + rep for rep in range(plan.ws_repeats)]
    out["warmstart_scales"] = {"mosi": plan.ws_source_scale, "mosei": plan.ws_scale}
    out["warmstart_replayed"] = False  # every search above ran live
    return out


def details(r: dict[str, Any]) -> list[str]:
    """The lines under the figure table: the plan, epochs per arm and seed, the scores."""

    def listed(values: list[Any], digits: int = 2) -> str:
        return ", ".join("n/a" if v is None else f"{v:.{digits}f}" for v in values)

    scales = r["warmstart_scales"]
    return [
        f"6. warm start: MOSI search of {r['warmstart_source_trials']} trials (scale "
        f"{scales['mosi']:g}, seed {SOURCE_SEED}), then per seed "
        f"({', '.join(map(str, r['warmstart_seeds']))}) MOSEI (scale {scales['mosei']:g}) cold and "
        f"warm-started with its best {r['warmstart_k']}: {r['warmstart_trials']} trials of up "
        f"to {r['warmstart_epochs_per_trial']} epochs each, TPE+ASHA (all live, none replayed)",
        f"   epochs to within 1% of the better final score: cold "
        f"{r['warmstart_epochs_cold']}, warm {r['warmstart_epochs_warm']} (ratios "
        f"{listed(r['warmstart_epochs_ratios'])}); reached: cold {r['warmstart_reached_cold']}, "
        f"warm {r['warmstart_reached_warm']}",
        f"   best score cold {listed(r['warmstart_best_cold'], 4)}, warm "
        f"{listed(r['warmstart_best_warm'], 4)}",
    ]
