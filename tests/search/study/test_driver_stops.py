"""`search.study.driver.fit_or_stop`: a Tune run that ends early says how to resume (Ray not
started)."""

from __future__ import annotations

from pathlib import Path

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


class _RayRunner:
    """Raises `error` from a frame whose code is filed under Ray's package, as Tune's own
    controller raises it."""

    def __init__(self, error):
        self.error = error

    def fit(self):
        import ray

        where = str(Path(ray.__file__).parent / "air" / "execution" / "_internal" / "manager.py")
        exec(compile("raise error", where, "exec"), {"error": self.error})


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
    assert driver.fit_or_stop(_RayRunner(error), store) == code
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


def test_a_runtime_error_of_our_own_code_keeps_its_traceback(tmp_path, capsys):
    with pytest.raises(RuntimeError, match="a bug in a callback"):
        driver.fit_or_stop(_Runner(RuntimeError("a bug in a callback")), Storage(str(tmp_path)))
    assert "Resume with" not in capsys.readouterr().out
