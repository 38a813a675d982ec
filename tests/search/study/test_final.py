"""`search.study.final`: the top trials, the robust winner, winner against default."""

from __future__ import annotations

import pytest
from searchtest_util import sample_records

from search.runtime.records import TrialRecord
from search.study.final import (
    Candidate,
    FinalChoice,
    choice_doc,
    describe,
    pick,
    top_records,
)


def _record(trial_id: str, score: float, state: str = "COMPLETE") -> TrialRecord:
    return TrialRecord(trial_id=trial_id, state=state, params={}, score=score)


def _runs(*maes: float, test: bool = False) -> list[dict]:
    return [
        {"seed": 1111 + i, "valid": {"MAE": m}, "test": {"MAE": m + 0.1} if test else None}
        for i, m in enumerate(maes)
    ]


def test_top_records_are_the_best_complete_trials_in_order():
    records = [_record("a", 0.5), _record("b", 0.3), _record("c", 0.1, "PRUNED"), _record("d", 0.4)]
    assert [r.trial_id for r in top_records(records, "min", 2)] == ["b", "d"]
    assert [r.trial_id for r in top_records(records, "max", 5)] == ["a", "d", "b"]
    assert top_records(sample_records(), "min", 3)[0].trial_id == "t1"  # ERROR, RUNNING left out


def test_the_winner_is_the_best_mean_over_seeds_not_the_best_single_trial():
    lucky = Candidate(_record("lucky", 0.10), None, _runs(0.40, 0.50))  # the search's best
    steady = Candidate(_record("steady", 0.20), None, _runs(0.30, 0.30))
    assert pick([lucky, steady], "MAE", "min") is steady
    assert pick([lucky, steady], "MAE", "max") is lucky
    broken = Candidate(_record("broken", 0.05), None, [{"seed": 1111, "error": "NonFiniteLoss"}])
    assert pick([broken, steady], "MAE", "min") is steady  # no valid score: never chosen


def test_summary_entries_compare_winner_and_default_on_both_splits():
    steady = Candidate(_record("steady", 0.20), None, _runs(0.30, 0.32))
    other = Candidate(_record("other", 0.10), None, _runs(0.50, 0.52))
    choice = FinalChoice(
        [other, steady], steady, _runs(0.30, 0.32, test=True), _runs(0.40, 0.44, test=True)
    )
    doc = choice_doc(choice, "MAE", "min")
    assert [c["chosen"] for c in doc["candidates"]] == [False, True]
    assert doc["candidates"][1]["mean_valid"] == pytest.approx(0.31)
    assert "test" not in doc["candidates"][0]  # candidates are never scored on test
    assert doc["default"]["test"]["MAE"]["mean"] == pytest.approx(0.52)
    vs = doc["versus_default"]
    assert vs["valid"]["winner"] == pytest.approx(0.31)
    assert vs["valid"]["default"] == pytest.approx(0.42)
    assert vs["valid"]["difference"] == pytest.approx(-0.11)
    assert vs["valid"]["winner_better"] is True and vs["test"]["winner_better"] is True
    text = "\n".join(describe(doc, "MAE"))
    assert "steady 0.3100 (chosen)" in text
    assert "test MAE: 0.4100 vs 0.5200 (better)" in text
    worse = choice_doc(
        FinalChoice([steady], steady, _runs(0.5, test=True), _runs(0.4, test=True)), "MAE", "min"
    )
    assert worse["versus_default"]["test"]["winner_better"] is False


def test_without_final_seeds_there_is_no_comparison():
    only = Candidate(_record("a", 0.2), None)
    doc = choice_doc(FinalChoice([only], only, [], []), "MAE", "min")
    assert doc["versus_default"] is None and doc["default"]["seeds"] == []
