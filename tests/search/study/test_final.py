"""`search.study.final`: the top trials, the robust winner, winner against default."""

from __future__ import annotations

import pytest
from searchtest_util import sample_records

from search.runtime.records import TrialRecord
from search.study import final
from search.study.final import (
    Candidate,
    FinalChoice,
    choice_doc,
    describe,
    pick,
    top_records,
)


def _record(trial_id: str, score: float, state: str = "COMPLETE", **params) -> TrialRecord:
    return TrialRecord(trial_id=trial_id, state=state, params=params, score=score)


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
    assert [c["trial_id"] for c in doc["candidates"]] == ["other", "steady", "default"]
    assert [c["chosen"] for c in doc["candidates"]] == [False, True, False]
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


def _failed(seed: int, why: str = "InjectedFailure: boom") -> dict:
    return {"seed": seed, "error": why}


def test_winner_and_default_are_compared_only_on_the_seeds_both_finished():
    winner_runs = [_runs(0.30, test=True)[0], _failed(1112)]  # its second run failed
    default_runs = _runs(0.40, 0.10, test=True)  # a lucky second seed: mean 0.25
    steady = Candidate(_record("steady", 0.2), None, winner_runs)
    doc = choice_doc(FinalChoice([steady], steady, winner_runs, default_runs), "MAE", "min")
    vs = doc["versus_default"]
    assert vs["seeds"] == [1111]
    assert vs["valid"]["default"] == pytest.approx(0.40)  # not 0.25, over a seed the winner lacks
    assert vs["valid"]["winner_better"] is True
    assert vs["stats"]["default"]["test"]["MAE"]["n"] == 1
    text = "\n".join(describe(doc, "MAE"))
    assert "over seeds [1111], valid MAE: 0.3000 vs 0.4000 (better)" in text


def test_a_failed_default_run_is_said_and_left_out():
    winner_runs = _runs(0.30, 0.32, test=True)
    default_runs = [_failed(1111, "ActorDiedError: the worker died"), _runs(0.5, 0.4)[1]]
    steady = Candidate(_record("steady", 0.2), None, winner_runs)
    choice = FinalChoice([steady], steady, winner_runs, default_runs)
    doc = {"final": {"runs": winner_runs}, **choice_doc(choice, "MAE", "min")}
    assert doc["default"]["failed"] == [1111]
    assert doc["versus_default"]["seeds"] == [1112]
    assert doc["versus_default"]["valid"]["winner"] == pytest.approx(0.32)
    text = "\n".join(describe(doc, "MAE"))
    assert "Default configuration's run with seed 1111 FAILED: ActorDiedError" in text
    none = [_failed(1111), _failed(1112)]
    alone = {
        "final": {"runs": winner_runs},
        **choice_doc(FinalChoice([steady], steady, winner_runs, none), "MAE", "min"),
    }
    assert alone["versus_default"] is None
    assert "no seed on which both finished" in "\n".join(describe(alone, "MAE"))


def test_shared_seeds_are_those_every_side_that_ran_finished():
    a = Candidate(_record("a", 0.1), None, [*_runs(0.3), _failed(1112)])
    b = Candidate(_record("b", 0.2), None, _runs(0.4, 0.1))
    dead = Candidate(_record("c", 0.3), None, [_failed(1111), _failed(1112)])
    assert final.shared_seeds([a, b, dead], "MAE") == [1111]
    assert pick([a, b], "MAE", "min", [1111]) is a  # b's lucky 1112 is not compared
    assert pick([a, b], "MAE", "min") is b


class _Remote:
    """Stands in for the Ray tasks of `final.choose`: each run's validation MAE by (lr, seed)."""

    def __init__(self, scores: dict, fails: set = frozenset()):
        self.scores, self.fails = scores, fails
        self.folds: dict[tuple, tuple] = {}  # (lr, seed) -> (data.fold, data.folds) of the run

    def remote(self, config, data, threads, test):
        seed = config["train"]["seed"]
        key = (config["train"]["lr"], seed)
        self.folds[key] = (config["data"]["fold"], config["data"]["folds"])
        if key in self.fails:
            return [RuntimeError("lost"), None]
        run = {"seed": seed, "valid": {"MAE": self.scores[key]}}
        return [{**run, "test": {"MAE": 9.0}} if test else run, "weights"]


def _choose(monkeypatch, space, scores, fails=frozenset(), margin=1.0, cv=False, remote=None):
    from atsuko.config import resolve

    def gather(refs, progress):
        ok = {k: v for k, v in refs.items() if not isinstance(v, Exception)}
        return ok, {k: f"RuntimeError: {v}" for k, v in refs.items() if isinstance(v, Exception)}

    remote = remote or _Remote(scores, fails)
    monkeypatch.setattr(final, "_remote", lambda cpus, gpus: (remote, None))
    monkeypatch.setattr(final, "gather_each", gather)
    monkeypatch.setattr(
        final, "_tested", lambda winner, *a: [{**r, "test": {"MAE": 1.0}} for r in winner.runs]
    )
    base = resolve(None, {"data.synthetic": True}, dataset="mosei")  # lr 0.001
    top = [_record("a", 0.1, lr=0.005), _record("b", 0.2, lr=0.002)]
    data = type("Data", (), {"ref": None})()
    return final.choose(
        top,
        space,
        base,
        data,
        [1111, 1112],
        metric="MAE",
        mode="min",
        cpus=1,
        gpus=0,
        margin=margin,
        cv=cv,
    )


def test_the_default_wins_where_its_mean_over_the_same_seeds_is_best(monkeypatch, space):
    scores = {
        (0.005, 1111): 0.5,
        (0.005, 1112): 0.5,
        (0.002, 1111): 0.6,
        (0.002, 1112): 0.4,
        (0.001, 1111): 0.45,
        (0.001, 1112): 0.45,
    }
    choice = _choose(monkeypatch, space, scores)
    assert choice.default_chosen and choice.winner.record is None
    assert choice.best_trial.record.trial_id == "a"  # shown for reference (0.5 vs b's 0.5: first)
    assert [r["test"]["MAE"] for r in choice.runs] == [9.0, 9.0]  # the default's own test runs
    doc = choice_doc(choice, "MAE", "min")
    gain = {"trial_id": "a", "gain": pytest.approx(-0.05), "standard_error": 0.0}
    assert doc["choice"] == {
        "seeds": [1111, 1112],
        "winner": "default",
        "default_chosen": True,
        "gain": {**gain, "margin": 1.0, "beats_default": False},
        "folds": 0,
    }
    assert [c["chosen"] for c in doc["candidates"]] == [False, False, True]
    assert doc["versus_default"] is None
    text = "\n".join(describe(doc, "MAE"))
    assert "found nothing better than the default configuration" in text
    assert "default 0.4500 (chosen)" in text


def test_the_choice_compares_every_side_on_the_seeds_all_finished(monkeypatch, space):
    # b failed on 1112, where the default was unlucky: over 1111 alone the default is best
    scores = {
        (0.005, 1111): 0.5,
        (0.005, 1112): 0.5,
        (0.002, 1111): 0.6,
        (0.001, 1111): 0.45,
        (0.001, 1112): 0.9,
    }
    choice = _choose(monkeypatch, space, scores, fails={(0.002, 1112)})
    assert choice.seeds == [1111] and choice.default_chosen
    scores[(0.001, 1111)] = 0.55  # now trial a is best on 1111
    choice = _choose(monkeypatch, space, scores, fails={(0.002, 1112)})
    assert choice.winner.record.trial_id == "a" and not choice.default_chosen


def test_a_better_mean_within_the_seed_noise_keeps_the_default(monkeypatch, space):
    """Trial a beats the default by .10 on one seed and loses by .01 on the other: a mean gain
    of .045 with a standard error of .055. Under one standard error it is noise: the default
    stays; with `--final-margin 0` any better mean wins, as a plain best-mean choice would."""
    scores = {
        (0.005, 1111): 0.35,
        (0.005, 1112): 0.46,
        (0.002, 1111): 0.6,
        (0.002, 1112): 0.6,
        (0.001, 1111): 0.45,
        (0.001, 1112): 0.45,
    }
    kept = _choose(monkeypatch, space, scores)
    assert kept.default_chosen and kept.gain["trial_id"] == "a"
    assert kept.gain["gain"] == pytest.approx(0.045)
    assert kept.gain["standard_error"] == pytest.approx(0.055)
    text = "\n".join(describe(choice_doc(kept, "MAE", "min"), "MAE"))
    assert "the best trial, a, beat it on mean valid MAE over seeds [1111, 1112] by 0.0450" in text
    assert "within 1 standard error(s) of that paired gain (0.0550)" in text
    assert "best_config.yaml is the default configuration" in text
    anyway = _choose(monkeypatch, space, scores, margin=0.0)
    assert anyway.winner.record.trial_id == "a" and anyway.gain["beats_default"]
    scores[(0.005, 1112)] = 0.44  # better on both seeds: gain .055, standard error .045
    assert _choose(monkeypatch, space, scores).winner.record.trial_id == "a"


def test_final_cv_runs_each_seed_on_its_own_fold_for_every_side(monkeypatch, space):
    """`--final-cv`: the k-th seed trains and validates on fold k of as many folds as seeds,
    the same fold for every candidate and the default, so the comparison is paired by fold."""
    scores = {(lr, seed): 0.5 for lr in (0.005, 0.002, 0.001) for seed in (1111, 1112)}
    remote = _Remote(scores)
    choice = _choose(monkeypatch, space, scores, cv=True, remote=remote)
    assert remote.folds == {
        (lr, seed): (k, 2) for lr in (0.005, 0.002, 0.001) for k, seed in enumerate((1111, 1112))
    }
    doc = choice_doc(choice, "MAE", "min")
    assert doc["choice"]["folds"] == 2 and choice.default_chosen
    text = "\n".join(describe(doc, "MAE"))
    assert "seeds [1111, 1112] (each validating on its own of 2 cross-validation folds)" in text
    plain = _Remote(scores)
    _choose(monkeypatch, space, scores, remote=plain)
    assert set(plain.folds.values()) == {(0, 0)}  # without --final-cv: the dataset's own splits


def test_seeded_configs_carry_seed_and_fold():
    from atsuko.config import resolve

    base = resolve(None, {"data.synthetic": True}, dataset="mosi")
    runs = final.seeded(base, [7, 8, 9], cv=True)
    assert [(r["train"]["seed"], r["data"]["fold"], r["data"]["folds"]) for r in runs.values()] == [
        (7, 0, 3),
        (8, 1, 3),
        (9, 2, 3),
    ]
    assert final.seeded(base, [7], cv=False)[7]["data"]["folds"] == 0
