"""`search.study.restored_search`: a searcher restored from a moment other than the trial list's
is reconciled with the list, so the resumed search runs its `--num-samples` and never crashes."""

from __future__ import annotations

import json

import optuna

from search.runtime.records import METRIC
from search.study.restored_search import SnapshotSearch
from search.study.searcher import PrunedAwareOptunaSearch, RerunLimiter, make_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
SAMPLES = 4


def _search(space) -> SnapshotSearch:
    searcher = PrunedAwareOptunaSearch(
        space=space, metric=METRIC, mode="min", sampler=make_sampler("tpe", 0)
    )
    search = SnapshotSearch(RerunLimiter(searcher, max_concurrent=SAMPLES))
    search._total_samples = SAMPLES
    return search


def _made(search: SnapshotSearch, *trial_ids: str) -> None:
    for trial_id in trial_ids:  # as `SearchGenerator.create_trial_if_possible` does
        assert search.searcher.suggest(trial_id) is not None
        search._counter += 1


def _trial_list(folder, *trial_ids: str) -> None:
    entries = [[json.dumps({"trial_id": t, "status": "RUNNING"}), "{}"] for t in trial_ids]
    (folder / "experiment_state-2026-01-01_00-00-00.json").write_text(
        json.dumps({"trial_data": entries})
    )


def test_a_searcher_ahead_of_the_trial_list_forgets_the_trials_it_lacks(space, tmp_path, capsys):
    killed = _search(space)
    _made(killed, "a", "b", "c", "d")  # c and d were made after the list's last upload
    killed.save_to_dir(str(tmp_path), session_str="2026-01-01_00-00-00")
    _trial_list(tmp_path, "a", "b")

    resumed = _search(space)
    resumed.restore_from_dir(str(tmp_path))
    limiter, searcher = resumed.searcher, resumed.searcher.searcher
    assert resumed._counter == 2 and not resumed.is_finished()  # two more to run
    assert limiter.live_trials == {"a", "b"}  # c, d would hold their slots forever
    states = {t.number: t.state.name for t in searcher._ot_study.trials}
    assert states == {0: "RUNNING", 1: "RUNNING", 2: "FAIL", 3: "FAIL"}
    assert "2 trial(s) that Tune's trial list does not (c, d" in capsys.readouterr().out
    _made(resumed, "e", "f")
    assert resumed.is_finished() and resumed._counter == SAMPLES


def test_a_searcher_behind_the_trial_list_ignores_trials_it_never_made(space, tmp_path):
    killed = _search(space)
    _made(killed, "a")
    killed.save_to_dir(str(tmp_path), session_str="2026-01-01_00-00-00")
    _trial_list(tmp_path, "a", "b")  # b reached the list, not the searcher's file

    resumed = _search(space)
    resumed.restore_from_dir(str(tmp_path))
    assert resumed._counter == 2
    resumed.searcher.on_trial_result("b", {METRIC: 0.5, "epoch": 1})
    resumed.searcher.on_trial_complete("b", {METRIC: 0.5, "epoch": 1})  # no KeyError
    resumed.searcher.on_trial_complete("a", {METRIC: 0.4, "epoch": 1})
    (trial,) = resumed.searcher.searcher._ot_study.trials
    assert trial.state.name == "COMPLETE" and trial.value == 0.4


def test_a_consistent_snapshot_is_restored_unchanged(space, tmp_path, capsys):
    killed = _search(space)
    _made(killed, "a", "b")
    killed.save_to_dir(str(tmp_path), session_str="2026-01-01_00-00-00")
    _trial_list(tmp_path, "a", "b")
    resumed = _search(space)
    resumed.restore_from_dir(str(tmp_path))
    assert resumed._counter == 2 and resumed.searcher.live_trials == {"a", "b"}
    assert capsys.readouterr().out == ""
