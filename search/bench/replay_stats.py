"""The measures of the replay comparison, on best-so-far trajectories.

A trajectory is [(epochs spent, best score so far)] after each epoch in the order reported
(`search.bench.measures.trajectory`), cut at the budget. For one seed and budget:

- speedup of a method: the epochs random search needed to reach its own final best, over the
  epochs the method needed to reach that score (a method that never does counts the whole
  budget: a lower bound);
- normalised regret at a fraction of the budget: (best so far - the table's best) / (the
  table's median trial best - the table's best), sign-adjusted for maximised metrics: 0 is the
  best recorded configuration, 1 a typical one;
- rank: the methods ranked by final regret within the seed (ties share the mean rank).

`grace_candidates` picks ASHA's first rung from the table itself: the earliest epochs whose
score ranks the trials as their final best does.
Tested in `tests/search/bench/test_replay_stats.py`.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from search.bench.measures import epochs_to_within
from search.settings import default_grace

FRACTIONS = (0.1, 0.25, 0.5, 1.0)


def best_at(path: list[tuple[int, float]], epochs: float) -> float:
    """The best score once `epochs` were spent (nan before the first report)."""
    found = math.nan
    for spent, best in path:
        if spent > epochs:
            break
        found = best
    return found


def speedup(random_path: list, path: list, mode: str, budget: int) -> float:
    """Epochs random search took to reach its own final best / epochs `path` took."""
    if not random_path:
        return math.nan
    own = random_path[-1][1]
    needed = epochs_to_within(random_path, own, mode, 0.0) or budget
    took = epochs_to_within(path, own, mode, 0.0) or budget
    return needed / took


def regret_scale(table: dict[str, Any]) -> tuple[float, float]:
    """(best, median) of the recorded trials' best scores."""
    minimise = table["meta"]["mode"] == "min"
    bests = [min(t["scores"]) if minimise else max(t["scores"]) for t in table["trials"]]
    return (min(bests) if minimise else max(bests)), statistics.median(bests)


def regret(score: float, best: float, median: float) -> float:
    if not math.isfinite(score) or median == best:
        return math.nan if not math.isfinite(score) else 0.0
    return (score - best) / (median - best)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(25th, 50th, 75th) percentiles of the finite values (nan when none)."""
    xs = sorted(v for v in values if math.isfinite(v))
    if not xs:
        return math.nan, math.nan, math.nan
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[1], q[2]


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ascending; ties share their mean rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def mean_ranks(final_regrets: dict[str, list[float]]) -> dict[str, float]:
    """Mean over seeds of each method's rank by final regret (1 = best)."""
    methods = list(final_regrets)
    seeds = len(next(iter(final_regrets.values()), []))
    totals = dict.fromkeys(methods, 0.0)
    for s in range(seeds):
        values = [final_regrets[m][s] for m in methods]
        values = [v if math.isfinite(v) else math.inf for v in values]
        for m, r in zip(methods, ranks(values), strict=True):
            totals[m] += r
    return {m: totals[m] / max(1, seeds) for m in methods}


def spearman(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 3:
        return math.nan
    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return cov / var if var else math.nan


def rung_correlations(table: dict[str, Any], epochs: tuple[int, ...]) -> dict[int, float]:
    """Rank correlation of the score at each epoch with the trial's final best; a trial that
    stopped before the epoch (patience) keeps its last score."""
    minimise = table["meta"]["mode"] == "min"
    trials = table["trials"]
    final = [min(t["scores"]) if minimise else max(t["scores"]) for t in trials]
    return {
        e: spearman([t["scores"][min(e, len(t["scores"])) - 1] for t in trials], final)
        for e in epochs
    }


def grace_candidates(table: dict[str, Any], threshold: float = 0.7) -> tuple[int, dict[int, float]]:
    """The earliest power-of-two epoch (below the full budget) whose rank correlation with the
    final best reaches `threshold` (else the best-correlated one), and all the correlations."""
    max_t = int(table["meta"]["max_epochs"])
    epochs = tuple(e for e in (1, 2, 4, 8, 16, 32, 64) if e < max_t)
    corr = rung_correlations(table, epochs)
    good = [e for e in epochs if math.isfinite(corr[e]) and corr[e] >= threshold]
    if good:
        return good[0], corr
    finite = [e for e in epochs if math.isfinite(corr[e])]
    return (max(finite, key=lambda e: corr[e]) if finite else default_grace(max_t)), corr
