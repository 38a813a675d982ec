"""`search.study.budget`: the epoch and time budgets count once across `--resume`.

Tune pickles the stopper into each experiment snapshot and runs the snapshot's copy after
`Tuner.restore`; pickling here stands in for that."""

from __future__ import annotations

import pickle
import time

from search.study import budget


def _spend(stopper, *pairs: tuple[str, int]) -> None:
    for trial, epoch in pairs:
        stopper(trial, {"epoch": epoch})


def test_epochs_spent_before_a_resume_count_and_the_driver_reads_the_copy_in_use():
    first = budget.start(5, None)
    _spend(first, ("a", 1), ("a", 2), ("b", 1))
    snapshot = pickle.dumps(first)
    resumed = budget.start(5, None)  # the resumed driver's own stopper: nothing spent yet
    assert budget.spent()[0] == 0 and budget.ended() is None
    in_use = pickle.loads(snapshot)  # what Tune runs after Tuner.restore
    assert budget.spent()[0] == 3
    _spend(in_use, ("b", 1), ("b", 2))  # ("b", 1) again: re-run from a checkpoint, not spent
    assert budget.ended() is None
    _spend(in_use, ("c", 1))
    assert budget.spent()[0] == 5 and budget.ended() == "epoch budget"
    assert in_use.stop_all() and resumed.stop_all()  # one count, whichever copy asks


def test_seconds_spent_before_a_resume_count_once(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    first = budget.start(None, 100)
    clock[0] += 70
    snapshot = pickle.dumps(first)  # 70 s spent
    pickle.loads(snapshot)  # a copy of this run's own stopper adds nothing
    assert budget.spent()[1] == 70
    clock[0] += 500  # the driver is dead; the machine idles
    budget.start(None, 100)
    pickle.loads(snapshot)
    assert budget.spent()[1] == 70 and budget.ended() is None
    clock[0] += 29
    assert budget.ended() is None
    clock[0] += 1
    assert budget.ended() == "time budget"
    again = pickle.dumps(pickle.loads(snapshot))  # a later snapshot: 100 s in all
    budget.start(None, 100)
    pickle.loads(again)
    assert budget.spent()[1] == 100 and budget.ended() == "time budget"


def test_no_budget_no_stopper():
    assert budget.start(None, None) is None and budget.ended() is None
