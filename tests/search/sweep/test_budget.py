"""`search.sweep.budget`: one run's deadline, read by a stopper that survives a restore."""

from __future__ import annotations

import time

from search.sweep import budget


def test_no_budget_never_stops():
    budget.set_budget(None)
    assert not budget.hit() and budget.remaining() is None
    assert not budget.RunBudget().stop_all()


def test_a_passed_deadline_stops_every_trial_of_the_round():
    stopper = budget.RunBudget()
    budget.set_budget(60)
    try:
        assert not stopper.stop_all() and 0 < budget.remaining() <= 60
        budget.set_budget(0)
        time.sleep(0.01)
        assert budget.hit() and stopper.stop_all()
        assert stopper("any_trial", {"epoch": 1}) is False  # never one trial alone
    finally:
        budget.set_budget(None)
