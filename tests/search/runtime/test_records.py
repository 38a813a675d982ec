"""`search.runtime.records`: states from Tune, the error line, trials.csv."""

from __future__ import annotations

import math

from searchtest_util import last_result, sample_records

from search.runtime.records import STOPPED_EARLY, build, short_error, write_csv, write_rows


def test_states_from_tune(space):
    assert build("a", {}, last_result(3, 0.5, done=True), status="TERMINATED").state == "COMPLETE"
    pruned = last_result(1, 0.9, done=True, **{STOPPED_EARLY: True})
    assert build("b", {}, pruned, status="TERMINATED").state == "PRUNED"
    assert build("c", {}, last_result(1, 0.9), status="TERMINATED").state == "STOPPED"
    assert build("d", {}, last_result(2, 0.9), status="RUNNING").state == "RUNNING"
    assert build("e", {}, {}, status="PENDING").state == "PENDING"
    err = build("f", {}, {}, status="ERROR", error="Traceback\n  ...\nValueError: nope\n")
    assert err.state == "ERROR" and err.error == "ValueError: nope" and math.isnan(err.score)
    rec = build("a", {"lr": 0.1}, last_result(3, 0.5, done=True), status="TERMINATED")
    assert rec.valid == {"MAE": 0.5} and rec.scores == {3: 0.5} and rec.epochs == 3


def test_short_error_finds_the_exception_line():
    text = (
        "Failure # 1\nTraceback (most recent call last):\n  File x\n"
        "ray.exceptions.RayTaskError(NonFiniteLoss): ray::AtsukoTrial.train()\n"
        "atsuko.train.NonFiniteLoss: non-finite loss at epoch 1, step 2 (task nan)\n"
    )
    assert short_error(text).startswith("atsuko.train.NonFiniteLoss: non-finite loss")


def test_trials_csv_has_params_state_epochs_metrics_and_node(space, tmp_path):
    records = sample_records()
    table = write_csv(records, tmp_path / "trials.csv", space.names)
    assert [r["state"] for r in table] == ["COMPLETE", "PRUNED", "ERROR", "RUNNING"]
    assert {"param/num_bands", "valid/MAE", "node_ip", "node_id", "epochs", "error"} <= set(
        table[0]
    )


def test_trials_csv_keeps_the_order_its_trials_were_first_written_in(space, tmp_path):
    # a resumed search's results come back in another order than the search made its trials
    path = tmp_path / "trials.csv"
    t1, t2, t3, t4 = sample_records()
    write_csv([t1, t2, t3], path, space.names)
    table = write_csv([t3, t4, t1, t2], path, space.names)
    assert [r["trial_id"] for r in table] == ["t1", "t2", "t3", "t4"]
    lines = path.read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["t1", "t2", "t3", "t4"]
    path.write_text("not,a trials file\n1,2\n")  # no trial_id column: the order given
    assert [r["trial_id"] for r in write_csv([t4, t1], path, space.names)] == ["t4", "t1"]


def test_write_rows_is_atomic_and_leaves_absent_cells_empty(tmp_path):
    path = tmp_path / "t.csv"
    write_rows(path, [{"a": 1, "b": 2}, {"a": 3}], ["a", "b"])
    assert path.read_text().splitlines() == ["a,b", "1,2", "3,"]
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
