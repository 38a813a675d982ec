"""Replay in simulated time: the search's own searcher and scheduler, driven by recorded curves.

A replay through Ray Tune (`search.bench.replay`) sleeps each recorded epoch (scaled down) and
pays Tune's own overhead per trial and result, about a minute a search here: too slow for the
30 seeds x 7 methods x 2 budgets that a comparison needs. This module drives the very objects
the Tuner would run, built by `search.study.driver.search_algorithms` (the seeded
`PrunedAwareOptunaSearch`, Ray's `ASHAScheduler`), through the same calls Tune makes
(`suggest`, `on_trial_add`, `on_trial_result`, `on_trial_complete`), on a simulated clock: each
running trial's next epoch ends at its start plus its recorded epoch seconds, at most
`concurrency` trials run at once, a freed slot takes the next suggestion, and the epoch budget
stops everything as `--epoch-budget` does. Events happen in the order live training would give
them; nothing sleeps. ASHA's Hyperband-style bracket of a trial is drawn from its id and the
search's seed (`search.study.asha`); Ray's own draw, which that replaces, still takes a number
from numpy's global generator: seeded with the search's seed for the search, restored after it.
A trial's curve comes from `answer`: the nearest recorded configuration's curve (the default),
or a curve of its own from the surrogate (`search.bench.surrogate`). Where the answer gives a
configuration's noiseless `quality` (the surrogate's), each path point carries a third number:
the quality of the incumbent, the trial whose score is the best so far (what the search would
export), so that a search is also judged by what it chose rather than by its luckiest epoch.
The onset stop (`--scheduler onset`) is judged against the label-median score of the data the
table was recorded on, generated again from the table's metadata and checked against its
recorded sha256 (`table_onset_score`), as the driver computes it from the loaded dataset.
Tested in `tests/search/bench/test_simulate.py` (against the Tune replay too).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from search.bench.curve_table import nearest
from search.runtime.records import FINAL, METRIC, STOPPED_EARLY

Answer = Callable[[dict[str, Any]], dict[str, Any]]  # configuration -> {"scores", "seconds"}


@dataclass
class SimTrial:
    """What Tune's schedulers read of a trial."""

    trial_id: str
    config: dict[str, Any]
    curve: dict[str, Any]  # the recorded trial that answers this configuration
    started: float
    epoch: int = 0
    best: float | None = None
    ends: list[float] = field(default_factory=list)  # simulated end time of each epoch


def _better(best: float | None, score: float, mode: str) -> float:
    if best is None or math.isnan(best):
        return score
    return min(best, score) if mode == "min" else max(best, score)


def _result(trial: SimTrial, score: float, mode: str, metric: str) -> dict[str, Any]:
    trial.best = _better(trial.best, score, mode)
    last = trial.epoch == len(trial.curve["scores"])
    return {
        "epoch": trial.epoch,
        "score": score,
        METRIC: trial.best,
        "valid": {metric: score},
        FINAL: last,
        "training_iteration": trial.epoch,
    }


def _start(k: int, now: float, searcher: Any, scheduler: Any, answer: Answer) -> SimTrial | None:
    trial_id = f"{k:05d}"
    config = searcher.suggest(trial_id)
    if config is None:
        return None
    curve = answer(config)
    trial = SimTrial(trial_id, config, curve, now)
    trial.ends = list(now + np.cumsum(curve["seconds"]))
    if scheduler is not None:
        scheduler.on_trial_add(None, trial)
    return trial


def simulate(
    table: dict[str, Any],
    searcher: Any,
    scheduler: Any,
    *,
    num_samples: int,
    budget: int,
    concurrency: int = 2,
    seed: int = 0,
    answer: Answer | None = None,
) -> list[tuple[int, float]]:
    """(epochs spent, best score so far) after each simulated epoch, as
    `search.bench.measures.trajectory` reads a live search, until `budget` epochs or
    `num_samples` trials are spent; (epochs, best, the incumbent's quality) where `answer`
    gives qualities. `answer` gives a configuration its curve (default: the table's nearest
    recorded one)."""
    if scheduler is not None:
        scheduler.set_search_properties(METRIC, table["meta"]["mode"])
    saved = np.random.get_state()  # Ray's ASHA takes numbers from numpy's global generator:
    np.random.seed(seed)  # seeded for the search, restored for whatever runs after it
    try:
        answer = answer or partial(nearest, table)
        return _run(table, searcher, scheduler, num_samples, budget, concurrency, answer)
    finally:
        np.random.set_state(saved)


def _run(
    table: dict[str, Any],
    searcher: Any,
    scheduler: Any,
    num_samples: int,
    budget: int,
    concurrency: int,
    answer: Answer,
) -> list[tuple[int, float]]:
    """The event loop of `simulate`."""
    from ray.tune.schedulers import TrialScheduler

    meta = table["meta"]
    mode, metric = meta["mode"], meta["metric"]
    events: list[tuple[float, int, SimTrial]] = []  # (time, start order, trial)
    started, spent, now = 0, 0, 0.0
    path: list[tuple] = []
    best, incumbent = math.nan, None  # the best score so far and the curve that reached it
    while True:
        while len(events) < concurrency and started < num_samples:
            trial = _start(started, now, searcher, scheduler, answer)
            if trial is None:
                break
            heapq.heappush(events, (trial.ends[0], started, trial))
            started += 1
        if not events or spent >= budget:
            return path
        now, order, trial = heapq.heappop(events)
        trial.epoch += 1
        score = float(trial.curve["scores"][trial.epoch - 1])
        result = _result(trial, score, mode, metric)
        spent += 1
        if _better(best, score, mode) != best:
            best, incumbent = score, trial.curve
        quality = incumbent.get("quality") if incumbent else None
        path.append((spent, best) if quality is None else (spent, best, quality))
        decision = TrialScheduler.CONTINUE
        if scheduler is not None:
            decision = scheduler.on_trial_result(None, trial, result)
        if decision == TrialScheduler.STOP:  # as Tune's controller: no on_trial_result then
            if trial.epoch < int(meta["max_epochs"]):
                result[STOPPED_EARLY] = True  # as `search.study.callbacks.SearchOutputs` marks it
        else:
            searcher.on_trial_result(trial.trial_id, result)
        if decision == TrialScheduler.STOP or result[FINAL]:
            if scheduler is not None:
                scheduler.on_trial_complete(None, trial, result)
            searcher.on_trial_complete(trial.trial_id, result=result)
        else:
            heapq.heappush(events, (trial.ends[trial.epoch], order, trial))


def table_space(table: dict[str, Any]) -> Any:
    """The search space the table was recorded on: the default space of its dataset, less the
    keys its `--set` pins fixed. Built on the synthetic stand-in whatever the table's data (the
    space does not depend on the data source, and a real file need not be here)."""
    from search.settings import Settings, base_config
    from search.study.space import load_space

    meta = table["meta"]
    settings = Settings(
        dataset=meta["dataset"],
        synthetic=True,
        scale=meta.get("scale"),
        sets=list(meta.get("sets") or []),
        max_epochs=int(meta["max_epochs"]),
    )
    base, pinned = base_config(settings)
    return load_space(None, base, pinned)


_ONSET_SCORES: dict[str, float] = {}  # data sha256 -> label-median score (one load a process)


def table_onset_score(table: dict[str, Any]) -> float:
    """The label-median score (`search.study.onset`) of the data the table was recorded on:
    its metadata's `label_median_score` where the recording wrote it, else computed from the
    synthetic data generated again from its metadata (which must give the recorded file)."""
    from atsuko.data.load import load_for_run, synthetic_path
    from search.bench.runner import BenchError
    from search.provenance import sha256_file
    from search.settings import Settings, base_config
    from search.study.onset import label_median_score

    meta = table["meta"]
    if meta.get("label_median_score") is not None:
        return float(meta["label_median_score"])
    recorded = meta.get("data_sha256")
    if not meta.get("synthetic") or not recorded:
        raise BenchError("the onset stop's replay needs a table recorded on synthetic data")
    if recorded not in _ONSET_SCORES:
        settings = Settings(dataset=meta["dataset"], synthetic=True, scale=meta["scale"])
        base, _ = base_config(settings)
        if sha256_file(synthetic_path(base.data)) != recorded:
            raise BenchError(
                f"the synthetic {meta['dataset']} data at scale {meta['scale']:g} made here "
                f"differs from the table's (sha256 {recorded[:12]}...): no onset score for it"
            )
        _ONSET_SCORES[recorded] = label_median_score(load_for_run(base, log=None), meta["metric"])
    return _ONSET_SCORES[recorded]


def simulate_search(
    table: dict[str, Any],
    space: Any,
    settings: dict[str, Any],
    budget: int,
    surrogate: Any = None,
) -> list[tuple[int, float]]:
    """One search of `settings` (the fields of `search.settings.Settings` a method changes,
    its seed, trials and concurrency), replayed on the table in simulated time: answered by
    the nearest recorded curve, or by `surrogate` (`search.bench.surrogate.Surrogate`), its
    noise drawn from the search's seed."""
    from search.settings import Settings
    from search.study.driver import search_algorithms

    s = Settings(**settings)
    max_epochs = int(table["meta"]["max_epochs"])
    onset = table_onset_score(table) if s.scheduler == "onset" else None
    searcher, scheduler = search_algorithms(
        s, space, table["meta"]["mode"], max_epochs, onset_score=onset
    )
    patience = not without_patience(s.sets)
    if surrogate is not None:
        answer = partial(surrogate.curve, seed=s.seed, patience=patience)
    else:
        answer = partial(nearest, table)
        answer = answer if patience else _full_length(answer, max_epochs)
    return simulate(
        table,
        searcher,
        scheduler,
        num_samples=s.num_samples,
        budget=budget,
        concurrency=s.concurrency or 1,
        seed=s.seed,
        answer=answer,
    )


def without_patience(sets: list[str]) -> bool:
    """Whether a search's `--set` pins turn early stopping off (`train.patience=0`: every
    trial runs all its epochs, as much of the field trains)."""
    from atsuko import config as cfg

    return cfg.parse_set(sets).get("train.patience") == 0


def _full_length(answer: Answer, max_epochs: int) -> Answer:
    """Recorded curves run on past their patience stop to `max_epochs`: those epochs are
    charged at the curve's last epoch time and repeat its last score (they were not recorded;
    training that stopped improving is taken not to beat its best)."""

    def full(config: dict[str, Any]) -> dict[str, Any]:
        curve = answer(config)
        scores, seconds = list(curve["scores"]), list(curve["seconds"])
        more = max_epochs - len(scores)
        return {"scores": scores + scores[-1:] * more, "seconds": seconds + seconds[-1:] * more}

    return full
