"""`--epoch-budget` and `--time-budget` of a search: one Tune stopper, spent once across
`--resume`.

A budget in epochs costs every search the same compute whatever its scheduler (ASHA's stopped
trials count the epochs they ran). A budget counts once: the epochs and seconds of the original
run and of every resume add up. Tune pickles a run's stopper into each experiment snapshot and,
on `Tuner.restore`, runs the snapshot's copy, not the one the driver built; so the count lives
in this module (`_ledger`, in the driver's process, where Tune calls its stopper), every copy of
`SearchBudget` reads and adds to it, and the driver reads it after the run (`ended`). A copy
carries the count into each snapshot and adds it back when Tune unpickles it on `--resume`: what
a killed driver spent after its last snapshot (a few seconds) is not counted; its trials
continue from that snapshot too. Each (trial, epoch) counts once: an epoch re-run from a
checkpoint is not spent twice.

Imported only after `search.runtime.session` has set Ray's environment (it imports Ray).
Tested in `tests/search/study/test_search_budget.py` and `tests/search/study/test_driver_resume.py`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ray.tune.stopper import Stopper


@dataclass
class _Ledger:
    epochs: int | None = None  # the budgets (None: none)
    seconds: float | None = None
    seen: set[tuple[str, int]] = field(default_factory=set)  # (trial id, epoch) reported
    before: float = 0.0  # seconds spent by the runs before this one
    started: float | None = None  # when this run's count began (time.time())
    run: str = ""  # this run's token: a copy of its own stopper adds no seconds to `before`

    def spent_seconds(self) -> float:
        return self.before + (time.time() - self.started if self.started is not None else 0.0)


_ledger = _Ledger()


def start(epochs: int | None, seconds: float | None) -> SearchBudget | None:
    """Begin this run's count (nothing spent yet; a resume adds what the restored snapshot
    spent); the stopper to hand to Tune, or None without a budget."""
    global _ledger
    _ledger = _Ledger(
        epochs=epochs or None, seconds=seconds or None, started=time.time(), run=uuid.uuid4().hex
    )
    return SearchBudget() if _ledger.epochs or _ledger.seconds else None


def spent() -> tuple[int, float]:
    """(epochs, seconds) spent so far, earlier runs included."""
    return len(_ledger.seen), _ledger.spent_seconds()


def ended() -> str | None:
    """'epoch budget' or 'time budget' once one is spent, else None."""
    epochs, seconds = spent()
    if _ledger.epochs and epochs >= _ledger.epochs:
        return "epoch budget"
    if _ledger.seconds and seconds >= _ledger.seconds:
        return "time budget"
    return None


class SearchBudget(Stopper):
    """Counts every (trial, epoch) reported; stops all trials once a budget is spent."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if "epoch" in result:
            _ledger.seen.add((trial_id, int(result["epoch"])))
        return False  # never one trial alone

    def stop_all(self) -> bool:
        return ended() is not None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "seen": sorted(_ledger.seen),
            "seconds": _ledger.spent_seconds(),
            "run": _ledger.run,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        _ledger.seen.update((str(t), int(e)) for t, e in state.get("seen", ()))
        if state.get("run") != _ledger.run:  # an earlier run's count (a snapshot)
            _ledger.before = max(_ledger.before, float(state.get("seconds", 0.0)))
