"""Searches on real CMU-MOSI (built from ../shared/data/real at test time, skipped without it):
the default space draws every `num_bands` (1 to 8) and real utterances are as short as one
token, yet no trial errs, a `num_bands` sweep has a point for every value, and the console of a
search that ends normally holds no warning about read-only arrays and no traceback."""

from __future__ import annotations

import json

import pytest
import real_data as rd
from searchtest_util import rows, run

pytestmark = pytest.mark.slow
ROWS = 160  # per split: real rows (the first ones), text lengths 0, 1, 2 among them
QUIET = ["--max-epochs", "1", "--concurrency", "2"]


@pytest.fixture(scope="module")
def mosi_file(tmp_path_factory):
    reason = rd.missing()
    if reason:
        pytest.skip(reason)
    return rd.mosi_pickle(tmp_path_factory.mktemp("real_mosi"), aligned=True, limit=ROWS)


@pytest.fixture(scope="module")
def smoke(mosi_file, tmp_path_factory):
    """A smoke search with the default space (no --space) on the real-MOSI file."""
    out = tmp_path_factory.mktemp("real_search") / "out"
    args = ["--dataset", "mosi", "--data", str(mosi_file), "--smoke-test", "--out", str(out)]
    cv = ["--final-seeds", "2", "--final-cv"]
    done = run(*args, "--num-samples", "6", *QUIET, *cv, timeout=900)
    return out, done


def test_smoke_search_on_real_mosi_has_no_error_trial(smoke):
    out, done = smoke
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trials = rows(out / "trials.csv")
    assert len(trials) == 6
    assert {t["state"] for t in trials} <= {"COMPLETE", "PRUNED"}, trials


def test_final_cv_validates_each_seed_on_its_own_fold_of_whole_videos(smoke):
    """`--final-cv` on real MOSI: seed 1111 on fold 0 and 1112 on fold 1 of train and valid
    (real videos), for the default and the winner alike; the console says so."""
    out, done = smoke
    doc = json.loads((out / "summary.json").read_text())
    assert doc["choice"]["folds"] == 2
    for runs in (doc["default"]["runs"], doc["final"]["runs"]):
        assert [(r["seed"], r["fold"]) for r in runs] == [
            (1111, {"fold": 0, "of": 2}),
            (1112, {"fold": 1, "of": 2}),
        ]
    assert "own of 2 cross-validation folds" in done.stdout


def test_a_search_that_ends_normally_prints_no_warning_or_traceback(smoke):
    _, done = smoke
    console = done.stdout + done.stderr
    assert "NumPy array is not writable" not in console
    assert "ZeroCopyTensorsWarning" not in console  # the final runs return their weights
    assert "Traceback" not in console and "SystemExit" not in console, console[-4000:]


def test_num_bands_sweep_has_a_point_for_every_value(mosi_file, tmp_path):
    done = run(
        "--dataset", "mosi", "--data", str(mosi_file), "--sensitivity", "num_bands",
        "--seeds", "1", "--max-epochs", "1", "--set", "hidden=16", "--set", "batch_size=64",
        "--out", str(tmp_path), "--concurrency", "2",
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    curves = rows(tmp_path / "sensitivity" / "curves.csv")
    points = {int(float(r["value"])): r["state"] for r in curves if r["parameter"] == "num_bands"}
    assert points == {k: "COMPLETE" for k in range(1, 9)}, curves
