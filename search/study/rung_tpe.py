"""`--sampler tpe_rungs`: TPE that compares trials at one budget, as BOHB does.

The search tells Optuna a scheduler-stopped trial as PRUNED with its best score at every epoch
(`search.study.searcher`). Optuna's TPE then ranks every COMPLETE trial above every PRUNED one
(by value), and the pruned ones by how far they got, then by their last value: under ASHA, where
most trials are pruned at the first rung, a trial that ran to the end with a poor score still
counts among the "good" ones, and the model learns little from the first rung's ranking.

Here, before each suggestion, TPE sees the trials at the ranking epoch: the latest epoch that at
least `min_trials` trials (default: the number of searched parameters + 1, BOHB's minimum)
reached, or ended before by their own patience (a trial's best score no longer changes after
it ends). Each of them counts as COMPLETE with its best score at that epoch; the trials stopped
before it stay PRUNED and rank below. The study itself is unchanged (what `study.db` and the
outputs record): only the sampler's view is.
Tested in `tests/search/study/test_rung_tpe.py`.
"""

from __future__ import annotations

import copy
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


def ranking_epoch(trials: list[FrozenTrial], min_trials: int) -> int | None:
    """The latest epoch that at least `min_trials` finished trials reached (a COMPLETE trial
    reached every epoch: its best score is final); None when none has so many."""
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    complete = sum(t.state == TrialState.COMPLETE for t in finished)
    reached = sorted((max(t.intermediate_values) for t in finished
                      if t.state == TrialState.PRUNED and t.intermediate_values),
                     reverse=True)  # fmt: skip
    for k, epoch in enumerate(reached, 1):  # k pruned trials got at least this far
        if complete + k >= min_trials:
            return epoch
    return None


def at_epoch(trial: FrozenTrial, epoch: int) -> FrozenTrial:
    """`trial` as TPE should see it at `epoch`: COMPLETE with its best score then, where it got
    there (or ended before on its own); unchanged (PRUNED) where it was stopped before."""
    values = trial.intermediate_values
    if trial.state == TrialState.PRUNED and (not values or max(values) < epoch):
        return trial
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return trial
    reported = [e for e in values if e <= epoch]
    score = values[max(reported)] if reported else trial.value
    if score is None:
        return trial
    seen = copy.copy(trial)
    seen.state, seen.values = TrialState.COMPLETE, [float(score)]
    return seen


class _AtRankingEpoch:
    """A study whose finished trials are read at the ranking epoch; all else is the study's."""

    def __init__(self, study: optuna.Study, min_trials: int) -> None:
        self._study, self._min_trials = study, min_trials

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        trials = self._study._get_trials(*args, **kwargs)
        epoch = ranking_epoch(trials, self._min_trials)
        return trials if epoch is None else [at_epoch(t, epoch) for t in trials]


class RungTPESampler(optuna.samplers.TPESampler):
    """TPESampler whose model is fitted on the trials at the ranking epoch."""

    def __init__(self, *args: Any, min_trials: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._min_trials = min_trials

    def _sample(self, study: Any, trial: FrozenTrial, search_space: dict) -> dict[str, Any]:
        least = self._min_trials or len(search_space) + 1
        return super()._sample(_AtRankingEpoch(study, least), trial, search_space)
