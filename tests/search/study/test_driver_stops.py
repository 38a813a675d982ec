"""`search.study.driver.fit_or_stop`: a Tune run that ends early says how to resume (no Ray)."""

from __future__ import annotations

import pytest

from search.runtime.storage import Storage
from search.study import driver

OOM = (
    "Caught unexpected exception: 1 worker(s) were killed due to the node running low on "
    "memory. Memory on the node was 22.37GB used / 23.54GB limit (0.950287)\nOOM kill reason: ..."
)


class _Runner:
    def __init__(self, outcome):
        self.outcome = outcome

    def fit(self):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def test_results_pass_through(tmp_path):
    assert driver.fit_or_stop(_Runner(["results"]), Storage(str(tmp_path))) == ["results"]


@pytest.mark.parametrize(
    "error, code, said",
    [
        (KeyboardInterrupt(), 130, "Interrupted."),
        (RuntimeError(OOM), 1, "Ray Tune failed (RuntimeError: Caught"),
    ],
)
def test_a_run_that_stops_early_says_why_and_how_to_resume(tmp_path, capsys, error, code, said):
    store = Storage(str(tmp_path))
    assert driver.fit_or_stop(_Runner(error), store) == code
    out = capsys.readouterr().out
    assert said in out and f"python search/run.py --resume {tmp_path}" in out
    assert "OOM kill reason" not in out  # the cause's first line only


def test_a_tune_error_is_a_stop_too(tmp_path, capsys):
    from ray.tune.error import TuneError

    assert (
        driver.fit_or_stop(_Runner(TuneError("trials did not complete")), Storage(str(tmp_path)))
        == 1
    )
    assert "TuneError: trials did not complete" in capsys.readouterr().out
