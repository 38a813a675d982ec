"""The time budget of one sensitivity run, as a Tune stopper that survives `Tuner.restore`.

Tune's `time_budget_s` is saved with an experiment and starts afresh when the experiment is
restored. This stopper instead reads the deadline of the run in progress (set by
`search.sweep.runner` for each call), so a restored round gets the current run's budget, or none.
Imported only after `search.runtime.session.ray_env()` (it imports Ray).
"""

from __future__ import annotations

import time
from typing import Any

from ray.tune.stopper import Stopper

_deadline: dict[str, float | None] = {"at": None}


def set_budget(seconds: float | None) -> None:
    """Start this run's budget now (None: no budget)."""
    _deadline["at"] = None if seconds is None else time.time() + seconds


def hit() -> bool:
    at = _deadline["at"]
    return at is not None and time.time() >= at


def remaining() -> float | None:
    at = _deadline["at"]
    return None if at is None else at - time.time()


class RunBudget(Stopper):
    """Stops every trial of the experiment once the current run's deadline has passed."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return hit()
