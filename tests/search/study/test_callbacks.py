"""`search.study.callbacks`: scheduler stops marked, trials.csv and study.db kept current
from live Tune trials (fake trials: no Ray)."""

from __future__ import annotations

import csv
import pickle
from types import SimpleNamespace

import optuna
from searchtest_util import last_result

from search import layout
from search.runtime import trial_metrics
from search.runtime.records import STOPPED_EARLY
from search.runtime.storage import Storage
from search.study.callbacks import SearchOutputs, trial_record
from search.study.study_mirror import StudyMirror, study_name

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _trial(trial_id, status, last, error_file=None):
    return SimpleNamespace(
        trial_id=trial_id,
        status=status,
        config={"lr": 0.01},
        last_result=last,
        error_file=error_file,
        local_path="",
    )


def _outputs(tmp_path, space, monkeypatch):
    monkeypatch.setattr(trial_metrics, "publish_search", lambda dataset, counts: None)
    mirror = StudyMirror(tmp_path / layout.STUDY, study_name("mosei"), "min", space.distributions())
    return SearchOutputs(Storage(tmp_path), "mosei", space.names, 8, mirror)


def test_a_result_the_scheduler_ended_early_is_marked(tmp_path, space, monkeypatch):
    outputs = _outputs(tmp_path, space, monkeypatch)
    early, last = last_result(2, 0.5, done=True), last_result(8, 0.4, done=True)
    outputs.on_trial_result(0, [], None, early)
    outputs.on_trial_result(0, [], None, last)
    assert early[STOPPED_EARLY] and STOPPED_EARLY not in last


def test_each_trial_end_rewrites_trials_csv_and_the_study(tmp_path, space, monkeypatch):
    outputs = _outputs(tmp_path, space, monkeypatch)
    err = tmp_path / "error.txt"
    err.write_text("Traceback\nValueError: boom\n")
    running = _trial("b", "RUNNING", last_result(3, 0.6))
    trials = [
        _trial("a", "TERMINATED", last_result(8, 0.4, done=True)),
        running,
        _trial("c", "ERROR", {}, error_file=str(err)),
    ]
    outputs.on_trial_complete(0, trials, running)  # b is finishing: no longer RUNNING
    rows = list(csv.DictReader(open(tmp_path / layout.TRIALS)))
    assert [(r["trial_id"], r["state"]) for r in rows] == [
        ("a", "COMPLETE"), ("b", "STOPPED"), ("c", "ERROR")
    ]  # fmt: skip
    assert rows[2]["error"] == "ValueError: boom"
    study = optuna.load_study(
        study_name=study_name("mosei"), storage=f"sqlite:///{tmp_path / layout.STUDY}"
    )
    assert len(study.trials) == 3


def test_a_failure_to_write_never_stops_the_search(tmp_path, space, monkeypatch, caplog):
    outputs = _outputs(tmp_path, space, monkeypatch)
    assert outputs.write([object()]) == []  # not a trial: logged, not raised
    assert "could not update" in caplog.text


def test_restored_with_the_tuner_it_writes_where_the_storage_is(tmp_path, space, monkeypatch):
    outputs = pickle.loads(pickle.dumps(_outputs(tmp_path, space, monkeypatch)))
    assert outputs.mirror.path == tmp_path / layout.STUDY
    assert trial_record(_trial("x", "PENDING", {}), finishing=True).state == "STOPPED"
