"""A search's trials read back from its folder (`search.study.trials`): the mirrored study
first, with its selection and parameter kinds; `trials.csv` when the study is unreadable or
missing; nothing when neither is there."""

from __future__ import annotations

import shutil

import pytest
from report_fixtures import write_search

from search.study.trials import load


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    return write_search(tmp_path_factory.mktemp("search") / "out")


def test_reads_the_mirrored_study_with_its_selection(search_dir):
    data = load(search_dir)
    assert data.source == "study.db" and not data.notes
    assert (data.metric, data.mode) == ("MAE", "min")
    states = sorted(t.state for t in data.trials)
    assert states.count("COMPLETE") == 8 and "PRUNED" in states and "ERROR" in states
    assert data.kinds["lr"] == {**data.kinds["lr"], "kind": "float", "log": True}
    assert data.kinds["num_bands"]["kind"] == "int"
    assert all(t.node == "127.0.0.1" for t in data.trials)


def test_falls_back_to_trials_csv_when_the_study_is_unreadable(search_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(search_dir, out)
    (out / "study.db").write_bytes(b"not a database")
    data = load(out)
    assert data.source == "trials.csv"
    assert any("study.db could not be read" in n for n in data.notes)
    assert len(data.complete) == 8


def test_trials_csv_alone_is_enough(search_dir, tmp_path):
    (tmp_path / "trials.csv").write_bytes((search_dir / "trials.csv").read_bytes())
    data = load(tmp_path)
    assert data.source == "trials.csv" and len(data.complete) == 8
    assert (data.metric, data.mode) == ("MAE", "min")  # the column that equals the score
    assert data.kinds["lr"]["log"] and data.kinds["num_bands"]["kind"] == "int"


def test_a_folder_without_trials_gives_none(tmp_path):
    assert load(tmp_path / "nothing") is None
