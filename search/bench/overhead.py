"""Figures 1 and 2 of `search.bench`: driver overhead and parallel scaling.

Each repeat runs the same N trainings three ways, in an order that alternates between repeats:
back to back in one plain process (`atsuko.train.fit`), and through the search (`driver.run`,
its own local Ray) at concurrency 1 and 2 with one CPU and one torch thread per trial. Every
trial trains the same configuration (a one-value space; `patience=0`, so all run every epoch).
"""

from __future__ import annotations

from typing import Any

from search.bench.measures import median, read_rows, trial_window
from search.bench.runner import FIXED, BenchError, Plan, Runner, say, settings_doc, write_space

REPEAT_KEYS = (
    "overhead_ratio",
    "overhead_plain_seconds",
    "overhead_search_seconds",
    "overhead_plain_trial_seconds",
    "overhead_search_trial_seconds",
    "overhead_gap_seconds",
    "overhead_startup_seconds",
    "overhead_shutdown_seconds",
    "concurrency_speedup",
    "concurrency_trials_per_minute_1",
    "concurrency_trials_per_minute_2",
    "concurrency_whole_run_speedup",
)


def overhead_section(plan: Plan, runner: Runner) -> dict[str, Any]:
    """Figures 1 and 2: plain, concurrency 1 and concurrency 2 runs of the same trainings."""
    work = runner.work
    space = write_space(work / "space-fixed.yaml", FIXED)
    runner.synth("mosi", plan.scale)
    common = {
        "dataset": "mosi",
        "scale": plan.scale,
        "space": str(space),
        "sets": ["patience=0"],  # every trial runs all its epochs, both ways
        "num_samples": plan.trials,
        "max_epochs": plan.epochs,
        "cpus_per_trial": 1.0,
        "sampler": "random",
        "scheduler": "none",
    }
    per: dict[str, list[float]] = {k: [] for k in REPEAT_KEYS}
    for r in range(plan.repeats):
        order = ("plain", "c1", "c2") if r % 2 == 0 else ("c2", "c1", "plain")
        done: dict[str, Any] = {}
        for kind in order:
            tag = f"{kind}-r{r + 1}"
            say(f"overhead and scaling, repeat {r + 1}/{plan.repeats}: {kind}")
            if kind == "plain":
                doc = settings_doc(work / tag, **common)
                spec = {"kind": "plain", "settings": doc, "params": FIXED, "trials": plan.trials}
                done[kind], _ = runner.run(tag, spec)
            else:
                doc = settings_doc(work / tag, **common, concurrency=int(kind[1]))
                done[kind], _ = runner.run(tag, {"kind": "search", "settings": doc})
                rows = read_rows(work / tag / "trials.csv")
                done[kind]["window"] = trial_window(rows, int(kind[1]))
        for key, value in repeat_figures(done, plan.trials, plan.epochs).items():
            per[key].append(value)
    out: dict[str, Any] = {k: median(v) for k, v in per.items()}
    out["overhead_ratios"] = per["overhead_ratio"]
    out["concurrency_speedups"] = per["concurrency_speedup"]
    out["overhead_trials"] = plan.trials
    out["overhead_epochs_per_trial"] = plan.epochs
    return out


def repeat_figures(done: dict[str, Any], trials: int, epochs: int) -> dict[str, float]:
    """One repeat's figures from its plain run and its two searches (with their windows)."""
    plain, c1, c2 = done["plain"], done["c1"], done["c2"]
    w1, w2 = c1["window"], c2["window"]
    for name, w in (("concurrency 1", w1), ("concurrency 2", w2)):
        if w.trials != trials or any(e != epochs for e in w.epochs):
            raise BenchError(
                f"the {name} search ran {w.trials} trials with epochs {w.epochs}; "
                f"expected {trials} of {epochs} epochs (see its trials.csv)"
            )
    return {
        "overhead_ratio": c1["seconds"] / plain["seconds"],
        "overhead_plain_seconds": plain["seconds"],
        "overhead_search_seconds": c1["seconds"],
        "overhead_plain_trial_seconds": (plain["seconds"] - plain["load_seconds"]) / trials,
        "overhead_search_trial_seconds": median(w1.durations),
        "overhead_gap_seconds": median(w1.gaps),
        "overhead_startup_seconds": w1.start - c1["start"],
        "overhead_shutdown_seconds": c1["end"] - w1.end,
        "concurrency_speedup": w2.per_minute / w1.per_minute,
        "concurrency_trials_per_minute_1": w1.per_minute,
        "concurrency_trials_per_minute_2": w2.per_minute,
        "concurrency_whole_run_speedup": c1["seconds"] / c2["seconds"],
    }
