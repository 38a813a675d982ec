"""Trial records, the study.db mirror, the pruning-aware searcher, trial naming (no Ray)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import optuna
import pytest

from atsuko.config import resolve
from search.runtime.records import FINAL, METRIC, STOPPED_EARLY, build, short_error, write_csv
from search.runtime.session import dashboard_warning
from search.runtime.trainable import label_logs, make_trainable
from search.runtime.tuner import collect
from search.study.export import prune_checkpoints
from search.study.searcher import SAMPLERS, PrunedAwareOptunaSearch, make_sampler
from search.study.space import load_space
from search.study.study_mirror import StudyMirror

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def space():
    return load_space(None, resolve(None, {"data.synthetic": True}, dataset="mosei"))


def result(epoch: int, best: float, **extra) -> dict:
    return {"epoch": epoch, METRIC: best, "best_epoch": 1, "best_valid/MAE": best, **extra}


def test_states_from_tune(space):
    assert build("a", {}, result(3, 0.5, done=True), status="TERMINATED").state == "COMPLETE"
    pruned = result(1, 0.9, done=True, **{STOPPED_EARLY: True})
    assert build("b", {}, pruned, status="TERMINATED").state == "PRUNED"
    assert build("c", {}, result(1, 0.9), status="TERMINATED").state == "STOPPED"
    assert build("d", {}, result(2, 0.9), status="RUNNING").state == "RUNNING"
    assert build("e", {}, {}, status="PENDING").state == "PENDING"
    err = build("f", {}, {}, status="ERROR", error="Traceback\n  ...\nValueError: nope\n")
    assert err.state == "ERROR" and err.error == "ValueError: nope" and math.isnan(err.score)
    rec = build("a", {"lr": 0.1}, result(3, 0.5, done=True), status="TERMINATED")
    assert rec.valid == {"MAE": 0.5} and rec.scores == {3: 0.5} and rec.epochs == 3


def test_short_error_finds_the_exception_line():
    text = (
        "Failure # 1\nTraceback (most recent call last):\n  File x\n"
        "ray.exceptions.RayTaskError(NonFiniteLoss): ray::AtsukoTrial.train()\n"
        "atsuko.train.NonFiniteLoss: non-finite loss at epoch 1, step 2 (task nan)\n"
    )
    assert short_error(text).startswith("atsuko.train.NonFiniteLoss: non-finite loss")


def _records(space):
    params = {"num_bands": 2, "band_split": "log", "tau_band": 0.5, "lr": 0.003}
    return [
        build("t1", params, result(3, 0.4, done=True), status="TERMINATED"),
        build(
            "t2", params, result(1, 0.9, done=True, **{STOPPED_EARLY: True}), status="TERMINATED"
        ),
        build("t3", params, {}, status="ERROR", error="ValueError: x"),
        build("t4", params, result(1, 0.8), status="RUNNING"),  # not finished: not mirrored
    ]


def test_mirror_is_idempotent_and_opens_with_optuna(space, tmp_path):
    db = tmp_path / "study.db"
    mirror = StudyMirror(db, "atsuko-mosei", "min", space.distributions())
    records = _records(space)
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
    records = _records(space)
    ghost = build("ghost", {}, result(2, 0.1, done=True), status="TERMINATED")
    mirror.add([*records, ghost])  # e.g. written before a driver was killed, then re-run
    assert not mirror.matches(records)
    mirror.sync(records)
    assert mirror.matches(records)
    study = optuna.load_study(study_name="atsuko-mosei", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3


def test_trials_csv_has_params_state_epochs_metrics_and_node(space, tmp_path):
    records = _records(space)
    table = write_csv(records, tmp_path / "trials.csv", space.names)
    assert [r["state"] for r in table] == ["COMPLETE", "PRUNED", "ERROR", "RUNNING"]
    assert {"param/num_bands", "valid/MAE", "node_ip", "node_id", "epochs", "error"} <= set(
        table[0]
    )


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_proposes_from_the_space(name, space):
    searcher = PrunedAwareOptunaSearch(
        space=space, metric=METRIC, mode="min", sampler=make_sampler(name, 1)
    )
    config = searcher.suggest("trial_1")
    assert set(config) <= set(space.names) and "lr" in config


def test_scheduler_stops_are_pruned_not_complete(space):
    searcher = PrunedAwareOptunaSearch(
        space=space, metric=METRIC, mode="min", sampler=make_sampler("tpe", 0)
    )
    for tid in ("full", "cut", "bad"):
        searcher.suggest(tid)
    searcher.on_trial_result("full", result(1, 0.7))
    searcher.on_trial_result("full", result(2, 0.5))
    searcher.on_trial_complete("full", result(2, 0.5, done=True))
    searcher.on_trial_result("cut", result(1, 0.9))
    # ASHA stopped it on epoch 2: that result never reached on_trial_result
    searcher.on_trial_complete("cut", result(2, 0.85, done=True, **{STOPPED_EARLY: True}))
    searcher.on_trial_complete("bad", error=True)
    trials = {t.number: t for t in searcher._ot_study.trials}
    full, cut, bad = trials[0], trials[1], trials[2]
    assert full.state.name == "COMPLETE" and full.value == pytest.approx(0.5)
    assert full.intermediate_values == {1: 0.7, 2: 0.5}
    assert cut.state.name == "PRUNED" and cut.intermediate_values == {1: 0.9, 2: 0.85}
    assert bad.state.name == "FAIL"


def test_a_trial_whose_last_result_is_final_counts_complete_without_done(tmp_path):
    """A killed driver's snapshot can hold a trial's last epoch without Tune's `done`."""

    def tune_result(name, **last):
        metrics = {"trial_id": name, "epoch": 3, METRIC: 0.5, **last}
        return SimpleNamespace(metrics=metrics, config={}, path=str(tmp_path), error=None)

    results = [
        tune_result("patience", **{FINAL: True}),  # stopped by patience at epoch 3 of 8
        tune_result("cut"),  # interrupted mid-way: --resume continues it
        tune_result("all", epoch=8),  # all epochs, from a run before the marker existed
    ]
    records = collect(results, "mosi", finished=False, max_epochs=8)
    assert [r.state for r in records] == ["COMPLETE", "RUNNING", "COMPLETE"]


def test_trial_actors_are_named_by_dataset_and_trial(space, capsys):
    cls = make_trainable(data=None, base={"data": {"dataset": "mosei"}}, cpus=1, gpus=0.5)
    assert cls.dataset_name == "mosei"
    assert cls.__repr__(SimpleNamespace(dataset_name="mosei")) == "atsuko_mosei"
    request = cls.default_resource_request({})
    assert request.required_resources == {"CPU": 1, "GPU": 0.5}
    # a reused actor relabels its log lines for each trial: Ray's log monitor reads this line
    from ray._private.ray_constants import LOG_PREFIX_ACTOR_NAME

    label_logs("atsuko_mosei_ab12_00003")
    out, err = capsys.readouterr()
    assert out == err == f"{LOG_PREFIX_ACTOR_NAME}atsuko_mosei_ab12_00003\n"


def test_exposing_the_dashboard_warns_what_it_allows():
    assert dashboard_warning("127.0.0.1") is None and dashboard_warning("localhost") is None
    text = dashboard_warning("0.0.0.0")
    assert "run code" in text and ("auth_token" in text or "RAY_AUTH_TOKEN" in text)


def test_finished_searches_keep_only_the_best_trials_checkpoints(tmp_path):
    for trial in ("mosei_a", "mosei_b", "mosei_orphan"):
        for k in range(2):
            (tmp_path / trial / f"checkpoint_00000{k}").mkdir(parents=True)
        (tmp_path / trial / "result.json").write_text("{}")
    assert prune_checkpoints(tmp_path, keep="mosei_b") == 4
    assert sorted(p.name for p in (tmp_path / "mosei_b").iterdir())[:2] == [
        "checkpoint_000000", "checkpoint_000001"
    ]  # fmt: skip
    assert not list((tmp_path / "mosei_a").glob("checkpoint_*"))
    assert (tmp_path / "mosei_a" / "result.json").is_file()
