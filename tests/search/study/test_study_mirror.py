"""`search.study.study_mirror`: study.db mirrors the trials, idempotently."""

from __future__ import annotations

import optuna
import pytest
from searchtest_util import last_result, sample_records

from search.runtime.records import build
from search.study.study_mirror import StudyMirror

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_mirror_is_idempotent_and_opens_with_optuna(space, tmp_path):
    db = tmp_path / "study.db"
    mirror = StudyMirror(db, "atsuko-mosei", "min", space.distributions())
    records = sample_records()
    assert mirror.add(records) == 3
    assert mirror.add(records) == 0  # again: nothing new
    study = optuna.load_study(study_name="atsuko-mosei", storage=f"sqlite:///{db}")
    states = {t.user_attrs["tune_trial_id"]: t for t in study.trials}
    assert {k: t.state.name for k, t in states.items()} == {
        "t1": "COMPLETE", "t2": "PRUNED", "t3": "FAIL"
    }  # fmt: skip
    assert states["t1"].value == pytest.approx(0.4)
    assert states["t2"].intermediate_values == {1: 0.9}
    assert states["t1"].params["band_split"] == "log"
    assert mirror.matches(records)


def test_mirror_sync_rebuilds_when_the_file_disagrees(space, tmp_path):
    db = tmp_path / "study.db"
    mirror = StudyMirror(db, "atsuko-mosei", "min", space.distributions())
    records = sample_records()
    ghost = build("ghost", {}, last_result(2, 0.1, done=True), status="TERMINATED")
    mirror.add([*records, ghost])  # e.g. written before a driver was killed, then re-run
    assert not mirror.matches(records)
    mirror.sync(records)
    assert mirror.matches(records)
    study = optuna.load_study(study_name="atsuko-mosei", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3
