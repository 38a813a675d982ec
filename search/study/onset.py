"""Learning-onset stop (`--scheduler onset`): a trial that has learnt nothing by an epoch ends.

At `--onset-epoch` E, a trial whose best validation score so far is no better than the
label-median score stops; every other trial runs to its end (its own patience or the epoch
limit). The label-median score is what a model that ignores its input gets: the validation
score of a constant prediction of the training labels' median (for classification, of their
majority class), scored by the dataset's own metrics (`atsuko.metrics.score`). The driver
computes it from the loaded dataset before the search starts; it is pickled with the
scheduler, so `--resume` keeps it. The scheduler keeps no other state: a restored trial past E
had passed (its best score only improves), and one before E is judged when it gets there.
Imported only after `search.runtime.session` has set Ray's environment (it imports Ray).
Tested in `tests/search/study/test_schedulers.py`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from atsuko.metrics import score


def label_median_score(dataset: Any, metric: str) -> float:
    """The validation `metric` of a constant prediction: the training labels' median (their
    majority class for a classification dataset)."""
    train = dataset.splits["train"].labels.cpu().numpy()
    valid = dataset.splits["valid"].labels.cpu().numpy()
    if dataset.spec.task == "classification":
        constant = np.full(len(valid), int(np.bincount(train.astype(np.int64)).argmax()))
    else:
        constant = np.full(len(valid), float(np.median(train)))
    return float(score(dataset.spec.name, constant, valid)[metric])


class OnsetStop(FIFOScheduler):
    """Stops, at `epoch`, each trial whose best score so far is no better than `baseline`."""

    def __init__(self, *, epoch: int, baseline: float, time_attr: str = "epoch") -> None:
        if not math.isfinite(baseline):
            raise ValueError(f"the onset stop needs a finite baseline score, got {baseline}")
        super().__init__()
        self._epoch, self._baseline, self._time_attr = int(epoch), float(baseline), time_attr
        self._metric: str | None = None
        self._mode: str | None = None

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    def learnt_nothing(self, best: float) -> bool:
        """`best` is no better than the baseline (a NaN score has learnt nothing either)."""
        if math.isnan(best):
            return True
        return best >= self._baseline if self._mode == "min" else best <= self._baseline

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get(self._time_attr) != self._epoch or self._metric not in result:
            return TrialScheduler.CONTINUE
        if self.learnt_nothing(float(result[self._metric])):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return f"Onset stop at {self._time_attr} {self._epoch}, baseline {self._baseline:.4g}"
