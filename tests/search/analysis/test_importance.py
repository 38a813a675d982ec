"""Importance, marginals and history from a search's own trials (read by `search.study.trials`,
tested in `tests/search/study/test_trials.py`)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from report_fixtures import write_search

from search.analysis import importance as imp
from search.study.trials import load


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    return write_search(tmp_path_factory.mktemp("search") / "out")


@pytest.mark.parametrize("method", ["pedanova", "fanova"])
def test_importance_over_completed_trials(search_dir, method):
    data = load(search_dir)
    values, notes = imp.importance(data, method)
    assert values and set(values) <= {"num_bands", "tau_band", "tau_mod", "lr", "hidden"} | {
        "batch_size"
    }
    assert sum(values.values()) == pytest.approx(1.0)
    assert max(values, key=values.get) in ("lr", "tau_mod")  # the scores were made from these
    assert any("rough" in n for n in notes)  # 8 completed trials


def test_importance_from_trials_csv_when_the_study_is_unreadable(search_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(search_dir, out)
    (out / "study.db").write_bytes(b"not a database")
    values, _ = imp.importance(load(out))
    assert values and sum(values.values()) == pytest.approx(1.0)


def test_trials_csv_alone_is_enough(search_dir, tmp_path):
    (tmp_path / "trials.csv").write_bytes((search_dir / "trials.csv").read_bytes())
    doc = imp.analyse(tmp_path)
    assert doc["source"] == "trials.csv" and doc["n_complete"] == 8 and doc["importance"]


def test_too_few_trials_give_a_note_not_an_error(tmp_path):
    write_search(tmp_path, n=2, finished=False)
    data = load(tmp_path)
    assert len(data.complete) < 2
    values, notes = imp.importance(data)
    assert values == {} and "needs at least 2" in notes[0]
    assert imp.analyse(tmp_path / "nothing") is None


def test_marginals_bin_numbers_and_group_choices(search_dir):
    marg = imp.marginals(load(search_dir))
    lr = marg["lr"]
    assert lr["log"] and len(lr["x"]) == 8
    assert 1 <= len(lr["bins"]["x"]) <= 5 and sum(lr["bins"]["n"]) == 8
    assert min(lr["x"]) <= min(lr["bins"]["x"]) <= max(lr["bins"]["x"]) <= max(lr["x"])
    assert marg["hidden"]["kind"] == "categorical" and marg["hidden"]["bins"]["x"] == ["16"]


def test_history_counts_every_trial_but_only_complete_ones_improve(search_dir):
    hist = imp.history(load(search_dir))
    assert hist["trial"] == list(range(1, 13))
    assert hist["epochs"][-1] == 8 * 2 + 4 * 1  # pruned and failed trials cost epochs too
    best = [b for b in hist["best"] if b is not None]
    assert np.all(np.diff(best) <= 0)
    done = [s for s, st in zip(hist["score"], hist["state"], strict=True) if st == "COMPLETE"]
    assert best[-1] == pytest.approx(min(done))


def test_write_importance_says_why_sweeps_are_the_fair_measure(search_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(search_dir, out)
    path = imp.write_importance(out, "fanova")
    doc = json.loads(path.read_text())
    assert doc["method"] == "fanova" and doc["evaluator"] == "FanovaImportanceEvaluator"
    assert "one-at-a-time" in doc["caveat"] and "cluster" in doc["caveat"]
    assert math.isclose(sum(doc["importance"].values()), 1.0)
    assert set(doc["history"]) >= {"trial", "epochs", "best"}
