"""`search.runtime.faults`: the test hook's patterns, and one line for a failed Ray task.
On Ray: tests/search/study/test_rerun_failures.py (seed re-runs) and
tests/search/sweep/test_scoring_failures.py (a sweep's test scoring)."""

from __future__ import annotations

import pytest

from search.runtime import faults
from search.runtime.faults import ENV, InjectedFailure


def test_fault_hook_matches_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    faults.maybe_fail("final_run", 1112)  # unset: nothing happens
    monkeypatch.setenv(ENV, "final_run:1112, score_test:mosi|anchor|*")
    with pytest.raises(InjectedFailure, match="final_run 1112"):
        faults.maybe_fail("final_run", 1112)
    faults.maybe_fail("final_run", 1111)
    with pytest.raises(InjectedFailure):
        faults.maybe_fail("score_test", "mosi|anchor|seed=0")
    faults.maybe_fail("score_test", "mosi|tau_mod=10|seed=0")


def test_task_error_is_one_line_from_the_cause() -> None:
    class Wrapped(Exception):
        cause = ValueError("line one\nCUDA out of memory")

    assert faults.task_error(Wrapped("traceback...")) == "ValueError: CUDA out of memory"
    assert faults.task_error(RuntimeError("")) == "RuntimeError: "
    assert faults.task_error(KeyError("x")).startswith("KeyError")
