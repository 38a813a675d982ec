"""`search.study.searcher`: every sampler proposes from the space; scheduler stops are PRUNED."""

from __future__ import annotations

import logging

import optuna
import pytest
from searchtest_util import last_result

from search.runtime.records import FINAL, METRIC, STOPPED_EARLY
from search.study.searcher import SAMPLERS, PrunedAwareOptunaSearch, make_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
RAY_OPTUNA_LOG = "ray.tune.search.optuna.optuna_search"  # the logger of Ray's OptunaSearch


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


def test_a_lost_trial_run_again_on_resume_is_learnt_from(space, tmp_path):
    """A trial whose worker was lost is told FAIL; `--resume` runs it again (errored.py), and
    its rerun's result reaches the study as a new trial of the same parameters."""
    searcher = PrunedAwareOptunaSearch(
        space=space, metric=METRIC, mode="min", sampler=make_sampler("tpe", 0)
    )
    for tid in ("lost", "cut", "nan"):
        searcher.suggest(tid)
    searcher.on_trial_result("lost", last_result(1, 0.8))
    for tid in ("lost", "cut", "nan"):
        searcher.on_trial_complete(tid, error=True)
    searcher.save(str(tmp_path / "searcher.pkl"))  # as the snapshot holds it
    searcher = PrunedAwareOptunaSearch(space=space, metric=METRIC, mode="min")
    searcher.restore(str(tmp_path / "searcher.pkl"))
    searcher.on_trial_result("lost", last_result(1, 0.8))  # the rerun, from its checkpoint
    searcher.on_trial_result("lost", last_result(2, 0.6, **{FINAL: True}))
    assert len(searcher._ot_study.trials) == 3  # told from its completion, not its final result
    searcher.on_trial_complete("lost", last_result(2, 0.6, done=True))  # RerunLimiter's
    searcher.on_trial_result("cut", last_result(1, 0.9))
    searcher.on_trial_complete("cut", last_result(2, 0.85, done=True, **{STOPPED_EARLY: True}))
    searcher.on_trial_complete("nan", error=True)  # failed again: nothing more to learn
    trials = searcher._ot_study.trials
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "FAIL", "COMPLETE", "PRUNED"]
    lost, cut = trials[3], trials[4]
    assert lost.params == trials[0].params and lost.value == pytest.approx(0.6)
    assert lost.intermediate_values == {1: 0.8, 2: 0.6} and lost.user_attrs["rerun_of"] == 0
    assert cut.params == trials[1].params and cut.intermediate_values == {1: 0.9, 2: 0.85}
    searcher.on_trial_complete("lost", last_result(2, 0.6, done=True))  # told once only
    assert len(searcher._ot_study.trials) == 5
    assert "lost" not in searcher._reruns() and "nan" in searcher._reruns()


def test_the_search_limiter_passes_on_a_rerun_trials_completion(space):
    """Tune's own concurrency limiter drops the completion of a trial it saw fail (no longer
    live); the search's passes it on, so an ASHA-stopped rerun reaches the study."""
    from search.study.searcher import RerunLimiter

    searcher = PrunedAwareOptunaSearch(
        space=space, metric=METRIC, mode="min", sampler=make_sampler("tpe", 0)
    )
    limiter = RerunLimiter(searcher, max_concurrent=2)
    assert limiter.suggest("lost") and limiter.suggest("other")
    assert limiter.suggest("third") is None  # still limits: two at once
    limiter.on_trial_complete("lost", error=True)
    limiter.on_trial_complete("other", last_result(3, 0.5, done=True))
    assert limiter.live_trials == set()
    limiter.on_trial_result("lost", last_result(1, 0.9))  # the rerun on --resume
    limiter.on_trial_complete("lost", last_result(2, 0.7, done=True, **{STOPPED_EARLY: True}))
    states = [t.state.name for t in searcher._ot_study.trials]
    assert states == ["FAIL", "COMPLETE", "PRUNED"]
    assert searcher._ot_study.trials[2].intermediate_values == {1: 0.9, 2: 0.7}


@pytest.mark.parametrize("stopped", [False, True], ids=["complete", "stopped_by_asha"])
def test_a_rerun_is_told_once_from_its_completion(space, caplog, stopped):
    """A rerun's results (its final one too), then its completion as `RerunLimiter` passes it
    on: exactly one new trial, and Ray's searcher never hears the trial complete again."""
    from search.study.searcher import RerunLimiter

    searcher = PrunedAwareOptunaSearch(
        space=space, metric=METRIC, mode="min", sampler=make_sampler("tpe", 0)
    )
    limiter = RerunLimiter(searcher, max_concurrent=2)
    limiter.suggest("lost")
    limiter.on_trial_complete("lost", error=True)  # its worker lost: told FAIL
    limiter.on_trial_result("lost", last_result(1, 0.9))  # the rerun on --resume
    if stopped:  # the result ASHA stops on reaches only the completion
        last = last_result(2, 0.7, done=True, **{STOPPED_EARLY: True})
    else:
        last = last_result(2, 0.7, **{FINAL: True})
        limiter.on_trial_result("lost", last)
    with caplog.at_level(logging.WARNING, logger=RAY_OPTUNA_LOG):
        limiter.on_trial_complete("lost", {**last, "done": True})
        limiter.on_trial_complete("lost", {**last, "done": True})  # even told twice
    trials = searcher._ot_study.trials
    assert [t.state.name for t in trials] == ["FAIL", "PRUNED" if stopped else "COMPLETE"]
    assert trials[1].intermediate_values == {1: 0.9, 2: 0.7}
    assert trials[1].value == (None if stopped else pytest.approx(0.7))
    assert trials[1].params == trials[0].params and trials[1].user_attrs["rerun_of"] == 0
    assert "additional completion" not in caplog.text


def test_seeds_come_first_marked_once_and_survive_a_save_and_restore(space, tmp_path):
    from search.runtime.records import WARM_START

    seed = {"num_bands": 1, "tau_mod": 2.5, "lr": 4e-3, "hidden": 64, "batch_size": 32}

    def searcher():
        return PrunedAwareOptunaSearch(
            space=space,
            metric=METRIC,
            mode="min",
            sampler=make_sampler("tpe", 0),
            seeds=[(seed, "runs/mosi:abc")],
        )

    fresh = searcher()
    first = fresh.suggest("a")
    assert first[WARM_START] == "runs/mosi:abc"
    assert {k: first[k] for k in seed} == seed
    assert fresh._ot_trials["a"].user_attrs[WARM_START] == "runs/mosi:abc"
    assert WARM_START not in fresh.suggest("b")  # then the sampler as usual
    # the study holds this search's two trials, nothing finished: no earlier score was told
    assert [t.state.name for t in fresh._ot_study.trials] == ["RUNNING", "RUNNING"]
    fresh.on_trial_complete("a", result=last_result(2, 0.5, done=True))
    # saved after its seed was handed out (as --resume restores it): never handed out again
    fresh.save(str(tmp_path / "state.pkl"))
    restored = searcher()
    restored.restore(str(tmp_path / "state.pkl"))
    assert all(WARM_START not in restored.suggest(f"r{i}") for i in range(3))
    # saved before: handed out once, first
    before = searcher()
    before.save(str(tmp_path / "before.pkl"))
    again = searcher()
    again.restore(str(tmp_path / "before.pkl"))
    marks = [again.suggest(f"s{i}").get(WARM_START) for i in range(3)]
    assert marks == ["runs/mosi:abc", None, None]
