"""Measures of the replay comparison in epochs a user pays, with censoring.

- compute ratio at a budget of B epochs: the epochs random search (every trial to its patience
  stop, as recorded) needed to reach the score the method had at B, over B. The reference random
  search runs up to `CAP` x B; one that never gets there is censored: the ratio is at least CAP
  (kept as inf, reported as ">= 8.0");
- epochs to a fixed quality: the table's top 1% and top 5% recorded best scores, censored at
  the method's budget;
- quartiles over seeds with censored values: a quartile that touches a censored value is only a
  lower bound.
Tested in `tests/search/bench/test_surrogate_replay.py`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from search.bench.measures import epochs_to_within
from search.bench.replay_stats import best_at

CAP = 8  # the reference random search runs at most CAP x the method's budget
QUALITIES = (0.01, 0.05)  # the table's top 1% and top 5% best scores


def compute_ratio(reference: list, score: float, budget: int, mode: str) -> float:
    """Epochs `reference` (random search) took to reach `score`, over `budget`; inf when it did
    not within CAP x budget (or `score` is nan: the method reported nothing)."""
    if not math.isfinite(score):
        return math.inf
    took = epochs_to_within(reference, score, mode, 0.0)
    return math.inf if took is None or took > CAP * budget else took / budget


def quality_targets(table: dict[str, Any]) -> dict[str, float]:
    """ "top1" / "top5": the score only the best 1% / 5% of recorded configurations reached."""
    minimise = table["meta"]["mode"] == "min"
    bests = [min(t["scores"]) if minimise else max(t["scores"]) for t in table["trials"]]
    return {
        f"top{round(q * 100)}": float(np.quantile(bests, q if minimise else 1 - q))
        for q in QUALITIES
    }


def epochs_to_quality(path: list, target: float, budget: int, mode: str) -> float:
    """Epochs until the best so far reached `target`; inf when not within `budget`."""
    took = epochs_to_within(path, target, mode, 0.0)
    return math.inf if took is None or took > budget else float(took)


def censored_quartiles(values: list[float], bound: float) -> dict[str, Any]:
    """{"q": [25th, 50th, 75th], "censored": [each a lower bound?]}; an inf value is censored
    at `bound`: a quartile whose interpolation touches one is reported as at least its value."""
    xs = sorted(bound if math.isinf(v) else v for v in values if not math.isnan(v))
    flags = sorted(math.isinf(v) for v in values if not math.isnan(v))  # censored sort last
    if not xs:
        return {"q": [math.nan] * 3, "censored": [False] * 3}
    q, censored = [], []
    for p in (0.25, 0.5, 0.75):
        pos = p * (len(xs) - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        q.append(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))
        censored.append(flags[hi])
    return {"q": q, "censored": censored}


def fmt(value: float, censored: bool, digits: int = 2) -> str:
    return f">= {value:.{digits}f}" if censored else f"{value:.{digits}f}"


def method_measures(
    runs: list[list], references: list[list], table: dict[str, Any], budget: int
) -> dict[str, Any]:
    """Over seeds: compute ratio against that seed's reference random search, epochs to the
    top-1%/5% qualities, each as censored quartiles."""
    mode = table["meta"]["mode"]
    ratios = [
        compute_ratio(ref, best_at(run, budget), budget, mode)
        for run, ref in zip(runs, references, strict=True)
    ]
    out = {"compute_ratio": censored_quartiles(ratios, CAP), "compute_ratios": ratios}
    for name, target in quality_targets(table).items():
        took = [epochs_to_quality(run, target, budget, mode) for run in runs]
        out[f"epochs_to_{name}"] = censored_quartiles(took, budget)
    return out
