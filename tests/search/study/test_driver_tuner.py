"""`search.study.driver.search_tuner`: the flags of ASHA reach Ray Tune's scheduler."""

from __future__ import annotations

from search.settings import Settings
from search.study import budget as search_budget
from search.study import driver


def _tuner_args(monkeypatch, space, stop=None, onset_score=None, **flags):
    monkeypatch.setattr(driver.tuner, "build_tuner", lambda trainable, **kw: kw)
    return driver.search_tuner(
        Settings(dataset="mosei", out="unused", **flags),
        trainable=object,
        space=space,
        metric_name="MAE",
        metric_mode="min",
        max_epochs=32,
        concurrency=2,
        callbacks=[],
        stop=stop,
        onset_score=onset_score,
    )


def _scheduler(monkeypatch, space, **flags):
    return _tuner_args(monkeypatch, space, **flags)["scheduler"]


def _rungs(scheduler) -> list[list[int]]:
    return [sorted(r for r, _ in b._rungs) for b in scheduler._brackets]


def test_asha_takes_grace_reduction_and_brackets(monkeypatch, space):
    default = _scheduler(monkeypatch, space)  # grace 32 / 8, a quarter kept: rungs 4 and 16
    assert _rungs(default) == [[4, 16]]
    varied = _scheduler(monkeypatch, space, grace_period=8, reduction_factor=3, brackets=2)
    assert varied._reduction_factor == 3
    assert _rungs(varied) == [[8, 24], [24]]  # the second bracket starts at the second rung
    assert _scheduler(monkeypatch, space, scheduler="none") is None


def test_rung_onset_and_tpe_rungs_reach_the_tuner(monkeypatch, space):
    from search.study.onset import OnsetStop
    from search.study.restored_search import SnapshotSearch
    from search.study.rung_tpe import RungTPESampler
    from search.study.searcher import RerunLimiter

    assert _rungs(_scheduler(monkeypatch, space, scheduler="rung", grace_period=8)) == [[8]]
    args = _tuner_args(monkeypatch, space, onset_score=1.2, scheduler="onset", onset_epoch=3,
                       sampler="tpe_rungs")  # fmt: skip
    onset = args["scheduler"]
    assert isinstance(onset, OnsetStop) and (onset._epoch, onset._baseline) == (3, 1.2)
    assert isinstance(args["search_alg"], SnapshotSearch)  # reconciled on --resume
    limiter = args["search_alg"].searcher  # the searcher in the search's concurrency limiter
    assert isinstance(limiter, RerunLimiter) and limiter.max_concurrent == args["concurrency"]
    assert isinstance(limiter.searcher._sampler, RungTPESampler)


def test_the_epoch_budget_counts_each_trials_epoch_once_and_stops_all(monkeypatch, space):
    budget = search_budget.start(3, None)
    args = _tuner_args(monkeypatch, space, stop=budget, time_budget=60)
    assert args["stop"] is budget and "time_budget" not in args  # counted by the stopper
    for trial, epoch in (("a", 1), ("b", 1), ("a", 1), ("a", 2)):  # ("a", 1) twice: a retry
        assert budget(trial, {"epoch": epoch}) is False  # never stops one trial alone
    assert search_budget.spent()[0] == 3 and budget.stop_all()
    assert not search_budget.start(4, None).stop_all()


def test_the_progress_table_shows_only_parameters_every_trial_has(monkeypatch, space):
    columns = _tuner_args(monkeypatch, space)["reporter"]._parameter_columns
    conditional = {p.name for p in space.params if p.when}
    assert conditional & set(space.names[:5])  # band_split, tau_band: among the first five
    assert columns and not conditional & set(columns)
