"""`search.study.driver.search_tuner`: the flags of ASHA reach Ray Tune's scheduler."""

from __future__ import annotations

from search.settings import Settings
from search.study import driver


def _scheduler(monkeypatch, space, **flags):
    monkeypatch.setattr(driver.tuner, "build_tuner", lambda trainable, **kw: kw)
    kw = driver.search_tuner(
        Settings(dataset="mosei", out="unused", **flags),
        trainable=object,
        space=space,
        metric_name="MAE",
        metric_mode="min",
        max_epochs=32,
        concurrency=2,
        callbacks=[],
    )
    return kw["scheduler"]


def _rungs(scheduler) -> list[list[int]]:
    return [sorted(r for r, _ in b._rungs) for b in scheduler._brackets]


def test_asha_takes_grace_reduction_and_brackets(monkeypatch, space):
    default = _scheduler(monkeypatch, space)  # grace 32 / 8, a quarter kept: rungs 4 and 16
    assert _rungs(default) == [[4, 16]]
    varied = _scheduler(monkeypatch, space, grace_period=8, reduction_factor=3, brackets=2)
    assert varied._reduction_factor == 3
    assert _rungs(varied) == [[8, 24], [24]]  # the second bracket starts at the second rung
    assert _scheduler(monkeypatch, space, scheduler="none") is None
