"""One-at-a-time sweeps: values from the space, the grid, anchors, curves.csv, and one real
sweep through Ray Tune (slow) that is resumed and then scored on the test split."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import yaml
from report_fixtures import TINY_SPACE, sweep_plan, write_search
from sweep_child import run_sweep

from atsuko.errors import ConfigError
from search import layout
from search.settings import Settings
from search.study.space import Param
from search.sweep import runner as sensitivity
from search.sweep.curves import complete, curve_rows, read_curves, write_curves
from search.sweep.plan import Plan, default_metric, plan_sweep, sweep_values


def test_integers_take_every_value_and_log_floats_log_spaced_points():
    assert sweep_values(Param("num_bands", "int", low=1, high=8), 5) == list(range(1, 9))
    assert sweep_values(Param("layers", "int", low=1, high=5, step=2), 5) == [1, 3, 5]
    logs = sweep_values(Param("tau_band", "float", low=0.05, high=10.0, log=True), 5)
    assert logs[0] == pytest.approx(0.05) and logs[-1] == pytest.approx(10.0)
    ratios = np.diff(np.log(logs))
    assert len(logs) == 5 and np.allclose(ratios, ratios[0], rtol=1e-4)


def test_linear_floats_categoricals_and_the_anchor_value():
    lin = sweep_values(Param("lambda_bi", "float", low=0.0, high=1.0), 5)
    assert lin == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    cats = sweep_values(Param("band_split", "categorical", choices=("uniform", "log")), 7)
    assert cats == ["uniform", "log"]
    with_anchor = sweep_values(Param("tau_mod", "float", low=0.1, high=10.0, log=True), 2, 1.0)
    assert with_anchor == pytest.approx([0.1, 1.0, 10.0])  # sorted, anchor in the middle
    wide = sweep_values(Param("batch_size", "int", low=8, high=512, log=True), 4)
    assert wide == [8, 32, 128, 512]  # a wide log-scale integer: log-spaced points
    with pytest.raises(ConfigError, match="--points 1"):
        sweep_values(Param("tau_mod", "float", low=0.1, high=10.0, log=True), 1)


def test_default_metric_per_dataset():
    assert default_metric("mosi") == default_metric("mosei") == "Mult_acc_7"
    assert default_metric("mintrec") == "acc"
    assert default_metric("sims") == default_metric("simsv2") == "Mult_acc_5"


def test_grid_has_every_value_times_seed_and_shares_the_anchor(tmp_path):
    plan = sweep_plan(tmp_path, params=("num_bands", "tau_mod"), seeds=3, points=2)
    values = {p["name"]: p["values"] for p in plan.params}
    assert values["num_bands"] == [1, 2, 3]  # tiny space: 1..3, anchor 3
    assert values["tau_mod"] == pytest.approx([0.1, 1.0, 10.0])  # 2 points + anchor 1.0
    assert len(plan.points) == 2 * (3 + 3) * 3  # datasets x values x seeds
    keys = {(p["dataset"], p["parameter"], p["value"], p["seed"]) for p in plan.points}
    assert len(keys) == len(plan.points)
    # the anchor (num_bands 3, tau_mod 1) runs once per (dataset, seed), shared by both curves
    assert len(plan.trials) == 2 * (2 + 2 + 1) * 3
    anchors = [p for p in plan.points if p["anchor"]]
    assert len(anchors) == 2 * 2 * 3
    assert {p["trial"] for p in anchors} == {
        f"{ds}|anchor|seed={s}" for ds in ("mosi", "mosei") for s in (1111, 1112, 1113)
    }
    ds, overrides = plan.trials["mosi|tau_mod=10|seed=1112"]
    assert ds == "mosi" and overrides == {"tau_mod": 10.0, "seed": 1112}


def test_bad_requests_name_what_is_wrong(tmp_path):
    s = Settings(synthetic=True, space=str(TINY_SPACE))
    with pytest.raises(ConfigError, match="dropout: not a parameter of the search space"):
        plan_sweep(["mosi"], ["dropout"], out=tmp_path, settings=s)
    with pytest.raises(ConfigError, match="--metric acc is not a CMU-MOSI metric"):
        plan_sweep(["mosi"], ["tau_mod"], metric="acc", out=tmp_path, settings=s)
    pinned = Settings(synthetic=True, space=str(TINY_SPACE), sets=["tau_mod=2"])
    with pytest.raises(ConfigError, match="pinned by --set"):
        plan_sweep(["mosi"], ["tau_mod"], out=tmp_path, settings=pinned)
    with pytest.raises(ConfigError, match="--around best: no best_config.yaml for mosi"):
        plan_sweep(["mosi"], ["tau_mod"], around="best", out=tmp_path, settings=s)
    with pytest.raises(ConfigError, match="--around nowhere.yaml"):
        plan_sweep(["mosi"], ["tau_mod"], around="nowhere.yaml", out=tmp_path, settings=s)
    with pytest.raises(ConfigError, match="appears twice"):
        plan_sweep(["mosi", "mosi"], ["tau_mod"], out=tmp_path, settings=s)


def test_anchor_from_a_file_and_from_a_finished_search(tmp_path):
    s = Settings(synthetic=True, scale=0.05, space=str(TINY_SPACE))
    anchor = tmp_path / "anchor.yaml"
    anchor.write_text(yaml.safe_dump({"model": {"tau_mod": 2.0, "num_bands": 2}}))
    plan = plan_sweep(
        ["mosi", "mosei"], ["tau_mod"], around=str(anchor), points=2, out=tmp_path, settings=s
    )
    assert plan.anchors["mosei"].model.tau_mod == 2.0
    assert plan.anchors["mosei"].model.num_bands == 2  # every other parameter from the file too
    assert plan.anchors["mosei"].data.dataset == "mosei"
    assert plan.params[0]["values"] == pytest.approx([0.1, 2.0, 10.0])
    assert plan.to_json()["anchor"]["mosi"]["tau_mod"] == 2.0

    search = write_search(tmp_path / "search")  # a finished search on mosei
    best = plan_sweep(["mosei"], ["num_bands"], around="best", out=search, settings=s)
    assert best.anchor_source["mosei"].endswith(layout.BEST_CONFIG)
    written = yaml.safe_load((search / layout.BEST_CONFIG).read_text())
    assert best.anchors["mosei"].model.num_bands == written["model"]["num_bands"]


def _outcomes(plan: Plan, skip: int = 0) -> dict:
    out = {}
    for i, label in enumerate(plan.trials):
        if i < skip:
            continue
        out[label] = {
            "state": "COMPLETE",
            "epochs": 2,
            "best_epoch": 1,
            "valid": {"Mult_acc_7": 0.3 + i * 1e-3, "MAE": 1.0},
            "trial_id": f"id{i}",
        }
    return out


def test_curves_csv_has_every_point_and_seed(tmp_path):
    plan = sweep_plan(tmp_path, seeds=2)
    path = write_curves(curve_rows(plan, _outcomes(plan)), tmp_path / layout.SENS_CURVES)
    with path.open() as f:
        header = next(csv.reader(f))
    assert header[:4] == ["dataset", "parameter", "value", "seed"]
    assert "valid/Mult_acc_7" in header and "valid/MAE" in header
    assert not any(h.startswith("test/") for h in header)  # only with with_test
    rows = read_curves(path)
    assert len(rows) == len(plan.points)
    want = {(p["dataset"], p["parameter"], p["value"], p["seed"]) for p in plan.points}
    assert {(r["dataset"], r["parameter"], r["value"], r["seed"]) for r in rows} == want
    assert all(math.isfinite(r["valid/Mult_acc_7"]) for r in rows)
    # an anchor trial's scores appear on both parameters' curves
    anchor_rows = [r for r in rows if r["anchor"] and r["dataset"] == "mosi" and r["seed"] == 1111]
    assert {r["parameter"] for r in anchor_rows} == {"num_bands", "tau_mod"}
    assert len({r["valid/Mult_acc_7"] for r in anchor_rows}) == 1


def test_curves_leave_out_points_that_never_ran_and_add_test_columns(tmp_path):
    plan = sweep_plan(tmp_path, datasets=("mosi",), params=("tau_mod",), seeds=2)
    plan.with_test = True
    outcomes = _outcomes(plan, skip=2)
    tests = {label: {"Mult_acc_7": 0.2} for label in outcomes}
    rows = curve_rows(plan, outcomes, tests)
    assert len(rows) == len(plan.points) - 2
    assert all(r["test/Mult_acc_7"] == 0.2 for r in rows)
    failed = next(iter(outcomes))  # a NaN loss: the point stays, without scores
    outcomes[failed] = {"state": "ERROR", "valid": {}, "error": "NonFiniteLoss: ..."}
    path = write_curves(curve_rows(plan, outcomes, tests), tmp_path / layout.SENS_CURVES)
    errored = [r for r in read_curves(path) if r["state"] == "ERROR"]
    assert errored and all(math.isnan(r["valid/Mult_acc_7"]) for r in errored)


def test_a_different_sweep_in_the_same_folder_is_refused(tmp_path):
    plan = sweep_plan(tmp_path, datasets=("mosi",), params=("tau_mod",), seeds=1)
    folder = tmp_path / layout.SENS_DIR
    folder.mkdir()
    (folder / layout.SENS_PLAN).write_text(json.dumps(plan.to_json()))
    assert sensitivity._check_resume(folder, plan.to_json()) is not None  # same: resume
    other = sweep_plan(tmp_path, datasets=("mosi",), params=("tau_mod",), seeds=2)
    with pytest.raises(ConfigError, match="different sensitivity sweep"):
        sensitivity._check_resume(folder, other.to_json())


def _sweep(out, address: str, *, time_budget=None, with_test=False) -> str:
    """run_sensitivity in a child process (`sweep_child`), joined to the shared test Ray."""
    settings = dict(
        synthetic=True,
        scale=0.05,
        max_epochs=1,
        space=str(TINY_SPACE),
        sets=["hidden=16", "batch_size=64"],
        address=address,
        time_budget=time_budget,
    )
    args = dict(
        datasets=["mosi", "mosei"],
        params=["tau_mod"],
        seeds=1,
        points=2,
        with_test=with_test,
        out=str(out),
        settings=settings,
    )
    return run_sweep(args)


@pytest.mark.slow
def test_sweep_runs_on_ray_resumes_and_scores_test_once(tmp_path, shared_ray):
    """Two datasets through Ray Tune (the shared loopback Ray); stopped early by a time budget,
    then resumed to the end, then the test split scored from the checkpoints."""
    curves = tmp_path / layout.SENS_DIR / layout.SENS_CURVES
    _sweep(tmp_path, shared_ray["address"], time_budget=1.0)
    first = read_curves(curves) if curves.is_file() else []
    assert sum(r["state"] == "COMPLETE" for r in first) < 6, "a 1 s budget cannot finish 6 trials"

    log = _sweep(tmp_path, shared_ray["address"])
    assert "Resuming sensitivity sweep" in log
    rows = read_curves(curves)
    assert len(rows) == 2 * 3 and {r["state"] for r in rows} == {"COMPLETE"}
    assert {(r["dataset"], r["value"]) for r in rows} == {
        (ds, v) for ds in ("mosi", "mosei") for v in ("0.1", "1", "10")
    }
    assert all(math.isfinite(r["valid/Mult_acc_7"]) for r in rows)
    assert not any(k.startswith("test/") for k in rows[0])
    assert (tmp_path / layout.SENS_DIR / layout.TUNE_DIR / "round1").is_dir()

    _sweep(tmp_path, shared_ray["address"], with_test=True)
    rows = read_curves(curves)
    assert all(math.isfinite(r["test/Mult_acc_7"]) for r in rows)
    plan = json.loads((tmp_path / layout.SENS_DIR / layout.SENS_PLAN).read_text())
    assert len(plan["data"]["mosi"]["sha256"]) == 64
    # nothing left to do: the same call again returns at once, without Ray
    same = plan_sweep(
        ["mosi", "mosei"],
        ["tau_mod"],
        seeds=1,
        points=2,
        with_test=True,
        out=tmp_path,
        settings=Settings(
            synthetic=True,
            scale=0.05,
            max_epochs=1,
            space=str(TINY_SPACE),
            sets=["hidden=16", "batch_size=64"],
        ),
    )
    assert sensitivity._check_resume(tmp_path / layout.SENS_DIR, same.to_json()) is not None
    assert complete(tmp_path / layout.SENS_DIR, same)
