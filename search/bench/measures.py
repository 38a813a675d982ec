"""What `search.bench` computes from a search's outputs: pure functions, tested on tiny inputs.

- `trial_window`: when the trials of a search ran (from `trials.csv`: `started`, `finished`),
  the gaps between consecutive trials, and trials per minute over that window.
- `trajectory` / `epochs_to_within`: the search's best validation score after each epoch it
  spent (all trials' epochs in the order they were reported), and how many epochs it took to
  come within a fraction of a reference score.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def median(values: Iterable[float]) -> float:
    """Median of the finite values (NaN if there are none)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return statistics.median(finite) if finite else math.nan


def read_rows(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


@dataclass
class TrialWindow:
    trials: int  # trials that ran (have both timestamps)
    start: float  # wall-clock time the first trial's training began
    end: float  # wall-clock time of the last trial's last report
    gaps: list[float]  # per trial after the first `concurrency`: its start minus the end that
    # freed its slot (actor start and data arrival: per-trial costs outside its training)
    durations: list[float]  # each trial's own training time
    epochs: list[int]

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def per_minute(self) -> float:
        """Trials per minute over the window widened by one typical gap: the window opens when
        the first trial starts training, after its own start cost, which every later trial
        pays inside the window."""
        gap = median(self.gaps)
        span = self.seconds + (gap if math.isfinite(gap) else 0.0)
        return 60.0 * self.trials / span if span > 0 else math.nan


def trial_window(rows: list[dict[str, Any]], concurrency: int = 1) -> TrialWindow:
    """Timing of the trials in `trials.csv` rows (`started`: when a trial's training began, its
    dataset in hand; `finished`: its last report), run `concurrency` at a time."""
    spans = []
    for row in rows:
        try:
            start, end = float(row["started"]), float(row["finished"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(start) and math.isfinite(end):
            spans.append((start, end, int(float(row.get("epochs") or 0))))
    if not spans:
        return TrialWindow(0, math.nan, math.nan, [], [], [])
    spans.sort()
    ends = sorted(s[1] for s in spans)
    c = max(1, concurrency)
    gaps = [spans[i][0] - ends[i - c] for i in range(c, len(spans))]
    return TrialWindow(
        trials=len(spans),
        start=spans[0][0],
        end=ends[-1],
        gaps=gaps,
        durations=[s[1] - s[0] for s in spans],
        epochs=[s[2] for s in spans],
    )


@dataclass
class EpochResult:
    trial: str
    epoch: int
    score: float  # this epoch's validation selection score
    wall_time: float


def read_results(tune_dir: str | Path) -> list[EpochResult]:
    """Every trial's per-epoch results from Tune's `result.json` logs (one per trial folder);
    an epoch reported twice (a retry, or Tune's closing duplicate) counts once."""
    seen: dict[tuple[str, int], EpochResult] = {}
    for log in sorted(Path(tune_dir).glob("*/result.json")):
        trial = log.parent.name
        for line in log.read_text().splitlines():
            try:
                row = json.loads(line)
                key = (trial, int(row["epoch"]))
                result = EpochResult(trial, key[1], float(row["score"]), float(row["wall_time"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a line cut short, or a row without an epoch's result
            seen.setdefault(key, result)
    return list(seen.values())


def trajectory(results: list[EpochResult], mode: str) -> list[tuple[int, float]]:
    """(epochs spent so far, best score so far) after each epoch, in the order reported."""
    better = min if mode == "min" else max
    out: list[tuple[int, float]] = []
    best = math.nan
    for i, r in enumerate(sorted(results, key=lambda r: (r.wall_time, r.trial, r.epoch)), 1):
        if math.isfinite(r.score):
            best = r.score if math.isnan(best) else better(best, r.score)
        out.append((i, best))
    return out


def target_score(reference: float, mode: str, within: float) -> float:
    """The score that counts as within `within` (a fraction, 0.01 = 1%) of `reference`."""
    slack = within * abs(reference)
    return reference + slack if mode == "min" else reference - slack


def epochs_to_within(
    path: list[tuple[int, float]], reference: float, mode: str, within: float
) -> int | None:
    """Epochs spent until the best score came within `within` of `reference` (None: never)."""
    goal = target_score(reference, mode, within)
    for spent, best in path:
        if math.isfinite(best) and (best <= goal if mode == "min" else best >= goal):
            return spent
    return None


def best_of(paths: Iterable[list[tuple[int, float]]], mode: str) -> float:
    """The best score any of the trajectories reached."""
    finals = [p[-1][1] for p in paths if p and math.isfinite(p[-1][1])]
    if not finals:
        return math.nan
    return min(finals) if mode == "min" else max(finals)


def truncate(path: list[tuple[int, float]], budget: int) -> list[tuple[int, float]]:
    """The trajectory up to `budget` epochs (what the search had seen when it spent them)."""
    return [p for p in path if p[0] <= budget]


def asha_rungs(max_t: int, grace: int, reduction: int) -> list[int]:
    """The epochs at which ASHA compares trials: grace, grace * r, ... below max_t."""
    rungs, at = [], grace
    while at < max_t:
        rungs.append(at)
        at *= reduction
    return rungs


def asha_mean_epochs(max_t: int, grace: int, reduction: int) -> float:
    """Epochs a trial runs on average when each rung keeps 1 / reduction of the trials (the
    steady state; the first trials at an empty rung all go on)."""
    mean, start, kept = 0.0, 0, 1.0
    for rung in [*asha_rungs(max_t, grace, reduction), max_t]:
        mean += kept * (rung - start)
        start, kept = rung, kept / reduction
    return mean


def trial_scores(results: list[EpochResult]) -> dict[str, dict[int, float]]:
    """Per trial: epoch -> validation score."""
    out: dict[str, dict[int, float]] = {}
    for r in results:
        out.setdefault(r.trial, {})[r.epoch] = r.score
    return out


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    for rank, i in enumerate(order):
        ranks[i] = float(rank)
    return ranks


def rung_rank_correlation(results: list[EpochResult], rung: int, mode: str) -> float:
    """Spearman correlation, over trials that ran past `rung`, between the score at `rung` and
    the trial's best score: how well ASHA's first cut predicts the final ranking (NaN: < 3)."""
    better = min if mode == "min" else max
    pairs = [
        (scores[rung], better(scores.values()))
        for scores in trial_scores(results).values()
        if rung in scores and max(scores) > rung and all(map(math.isfinite, scores.values()))
    ]
    if len(pairs) < 3:
        return math.nan
    a, b = _ranks([p[0] for p in pairs]), _ranks([p[1] for p in pairs])
    if len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan
    return statistics.correlation(a, b)


def winner_position(results: list[EpochResult], mode: str) -> int | None:
    """1-based position, in the order the trials started, of the trial with the best score."""
    better = min if mode == "min" else max
    best: dict[str, float] = {}
    for r in results:
        if math.isfinite(r.score):
            best[r.trial] = better(best.get(r.trial, r.score), r.score)
    if not best:
        return None
    return start_order(results).index(better(best, key=best.__getitem__)) + 1


def start_order(results: list[EpochResult]) -> list[str]:
    """The trials, in the order they started (their first reported epoch)."""
    first: dict[str, float] = {}
    for r in results:
        first[r.trial] = min(first.get(r.trial, math.inf), r.wall_time)
    return sorted(first, key=first.__getitem__)


def epochs_by_start(results: list[EpochResult]) -> list[int]:
    """Epochs each trial ran, in the order the trials started."""
    last: dict[str, int] = {}
    for r in results:
        last[r.trial] = max(last.get(r.trial, 0), r.epoch)
    return [last[t] for t in start_order(results)]


def ratio_ceiling(ran: list[int], random_trials: int, epochs: int, shared: int) -> float:
    """About the largest epochs ratio a seed allows when both searches draw the same first
    `shared` configurations (TPE's random start): random search at most spends its whole
    budget, and TPE+ASHA's winner trains all `epochs` after what ASHA spent on the trials
    before it, which is at least its first min(random_trials, shared + 1) - 1 trials (a
    configuration random search drew later, or one only TPE+ASHA finds, comes after those).
    `ran`: the epochs of TPE+ASHA's trials in the order they started (`epochs_by_start`)."""
    before = sum(ran[: min(random_trials, shared + 1) - 1])
    return random_trials * epochs / (epochs + before)
