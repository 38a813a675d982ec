"""`search.study.searcher`: every sampler proposes from the space; scheduler stops are PRUNED."""

from __future__ import annotations

import optuna
import pytest
from searchtest_util import last_result

from search.runtime.records import METRIC, STOPPED_EARLY
from search.study.searcher import SAMPLERS, PrunedAwareOptunaSearch, make_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_proposes_from_the_space(name, space):
    searcher = PrunedAwareOptunaSearch(
        space=space, metric=METRIC, mode="min", sampler=make_sampler(name, 1)
    )
    config = searcher.suggest("trial_1")
    assert set(config) <= set(space.names) and "lr" in config


def test_scheduler_stops_are_pruned_not_complete(space):
    searcher = PrunedAwareOptunaSearch(
        space=space, metric=METRIC, mode="min", sampler=make_sampler("tpe", 0)
    )
    for tid in ("full", "cut", "bad"):
        searcher.suggest(tid)
    searcher.on_trial_result("full", last_result(1, 0.7))
    searcher.on_trial_result("full", last_result(2, 0.5))
    searcher.on_trial_complete("full", last_result(2, 0.5, done=True))
    searcher.on_trial_result("cut", last_result(1, 0.9))
    # ASHA stopped it on epoch 2: that result never reached on_trial_result
    searcher.on_trial_complete("cut", last_result(2, 0.85, done=True, **{STOPPED_EARLY: True}))
    searcher.on_trial_complete("bad", error=True)
    trials = {t.number: t for t in searcher._ot_study.trials}
    full, cut, bad = trials[0], trials[1], trials[2]
    assert full.state.name == "COMPLETE" and full.value == pytest.approx(0.5)
    assert full.intermediate_values == {1: 0.7, 2: 0.5}
    assert cut.state.name == "PRUNED" and cut.intermediate_values == {1: 0.9, 2: 0.85}
    assert bad.state.name == "FAIL"
