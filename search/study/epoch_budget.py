"""`--epoch-budget N`: stop the search once its trials together have run N epochs.

A budget in epochs costs every search the same compute whatever its scheduler (ASHA's stopped
trials count the epochs they ran), so searches with different schedulers can be compared at
equal cost. Trials still running then end as STOPPED, as under `--time-budget`; the count
starts again on `--resume`. Ray is imported when the stopper is made, never at import time:
the session must set Ray's environment first (`search.runtime.session`).
Tested in `tests/search/study/test_driver_tuner.py`.
"""

from __future__ import annotations

from typing import Any


def epoch_budget(epochs: int) -> Any:
    """A Tune stopper that counts every (trial, epoch) reported and stops all at `epochs`."""
    from ray.tune.stopper import Stopper

    class EpochBudget(Stopper):
        def __init__(self) -> None:
            self.epochs = epochs
            self.seen: set[tuple[str, int]] = set()

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            if "epoch" in result:
                self.seen.add((trial_id, int(result["epoch"])))
            return False

        def stop_all(self) -> bool:
            return len(self.seen) >= self.epochs

        @property
        def spent(self) -> int:
            return len(self.seen)

    return EpochBudget()
