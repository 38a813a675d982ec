"""End-to-end: one smoke search (own local Ray) and everything it must leave behind."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import optuna
import pytest
import yaml
from searchtest_util import REPO, env, is_loopback, rows

from atsuko.config import from_dict

pytestmark = pytest.mark.slow


def test_smoke_search_finishes_with_every_output(smoke_run):
    assert smoke_run.code == 0, smoke_run.log[-3000:]
    for name in ("best_config.yaml", "trials.csv", "study.db", "summary.json", "search.json"):
        assert (smoke_run.out / name).is_file(), name
    for name in ("report.html", "report.md", "importance.json"):  # the report follows a search
        assert (smoke_run.out / name).is_file(), name
    assert list((smoke_run.out / "tune").glob("*/events.out.tfevents.*")), "no TensorBoard events"
    log = smoke_run.log
    assert "Ray dashboard   http://127.0.0.1:" in log and "auth_token" in log
    assert f"tensorboard --logdir {smoke_run.out / 'tune'}" in log
    assert "Trial name" in log  # Tune's progress table
    assert "Traceback" not in log


def test_trials_csv_has_one_finished_row_per_trial(smoke_run):
    table = rows(smoke_run.out / "trials.csv")
    assert len(table) == 3 and len({r["trial_id"] for r in table}) == 3
    assert {r["state"] for r in table} <= {"COMPLETE", "PRUNED"}
    assert any(r["state"] == "COMPLETE" for r in table)
    for r in table:
        assert 1 <= int(r["epochs"]) <= 2
        assert r["node_ip"] == "127.0.0.1" and r["node_id"]
        assert math.isfinite(float(r["valid/MAE"])) and float(r["score"]) == float(r["valid/MAE"])
        assert r["param/num_bands"] and r["param/lr"]


def test_two_trials_really_ran_at_once(smoke_run):
    spans = [
        (float(r["started"]), float(r["finished"])) for r in rows(smoke_run.out / "trials.csv")
    ]
    overlaps = [
        (a, b)
        for i, a in enumerate(spans)
        for b in spans[i + 1 :]
        if max(a[0], b[0]) < min(a[1], b[1])
    ]
    assert overlaps, f"no two trials overlapped in time: {spans}"


def test_study_db_matches_trials_csv(smoke_run):
    study = optuna.load_study(
        study_name="atsuko-mosei", storage=f"sqlite:///{smoke_run.out / 'study.db'}"
    )
    table = {r["trial_id"]: r for r in rows(smoke_run.out / "trials.csv")}
    by_id = {t.user_attrs["tune_trial_id"]: t for t in study.trials}
    assert set(by_id) == set(table)
    for tid, t in by_id.items():
        r = table[tid]
        assert t.state.name == r["state"]
        assert t.intermediate_values, "per-epoch values missing"
        if r["state"] == "COMPLETE":
            assert t.value == pytest.approx(float(r["score"]))
            assert len(t.intermediate_values) == int(r["epochs"])
        assert t.params["lr"] == pytest.approx(float(r["param/lr"]))
    assert study.direction == optuna.study.StudyDirection.MINIMIZE


def test_summary_reports_the_robust_winner_and_the_default(smoke_run):
    doc = json.loads((smoke_run.out / "summary.json").read_text())
    table = rows(smoke_run.out / "trials.csv")
    complete = sorted(
        (r for r in table if r["state"] == "COMPLETE"), key=lambda r: float(r["score"])
    )
    cands = doc[
        "candidates"
    ]  # the 3 best complete trials (--final-top-k default), then the default
    trials = [c["trial_id"] for c in cands[:-1]]
    assert trials == [r["trial_id"] for r in complete[:3]] and cands[-1]["trial_id"] == "default"
    assert doc["choice"]["seeds"] == [1111, 1112]  # every side finished both
    chosen = [c for c in cands if c["chosen"]]
    assert len(chosen) == 1 and chosen[0]["trial_id"] == doc["choice"]["winner"]
    assert chosen[0]["mean_valid"] == min(c["mean_valid"] for c in cands)
    assert all("test" not in c for c in cands)  # only the winner is scored on test
    assert doc["final"]["seeds"] == [1111, 1112]
    assert chosen[0]["mean_valid"] == pytest.approx(doc["final"]["valid"]["MAE"]["mean"])
    if doc["choice"]["default_chosen"]:  # tiny data: the default may well be best
        assert doc["versus_default"] is None
        assert "found nothing better than the default configuration" in smoke_run.log
        return
    assert chosen[0]["trial_id"] == doc["best_trial"]["trial_id"]
    for split in ("valid", "test"):
        assert set(doc["final"][split]["MAE"]) == {"mean", "std", "n"}
        assert doc["final"][split]["MAE"]["n"] == 2
        assert doc["default"][split]["MAE"]["n"] == 2
        vs = doc["versus_default"][split]
        assert vs["winner"] == pytest.approx(doc["final"][split]["MAE"]["mean"])
        assert vs["default"] == pytest.approx(doc["default"][split]["MAE"]["mean"])
    # the seed-1111 re-run is the trial itself: same configuration, same seed, same score
    rerun = next(r for r in doc["final"]["runs"] if r["seed"] == 1111)
    winner = next(r for r in table if r["trial_id"] == chosen[0]["trial_id"])
    assert rerun["valid"]["MAE"] == pytest.approx(float(winner["score"]), rel=1e-6)
    assert "Winner vs default configuration over seeds [1111, 1112], test MAE" in smoke_run.log


def test_best_config_reproduces_its_trials_validation_score(smoke_run):
    path = smoke_run.out / "best_config.yaml"
    config = from_dict(yaml.safe_load(path.read_text()))  # a complete, valid configuration
    doc = json.loads((smoke_run.out / "summary.json").read_text())
    seed = doc["best_trial"]["seed"]
    assert config.train.seed == seed
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "atsuko.train",
            "--config",
            str(path),
            "--seed",
            str(seed),
            "--json",
        ],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["valid"]["MAE"] == pytest.approx(doc["best_trial"]["score"], rel=1e-6)


def test_nothing_listens_beyond_loopback(smoke_run):
    assert smoke_run.sockets, "the watcher saw no listening socket (did Ray start?)"
    outside = [s for s in smoke_run.sockets if not is_loopback(s[2])]
    assert not outside, f"listening beyond loopback: {outside}"


def test_trial_progress_is_exported_as_ray_metrics(smoke_run):
    text = smoke_run.metrics
    assert text, f"no atsuko gauges seen at 127.0.0.1:{smoke_run.metrics_port}/metrics"
    trial_ids = {r["trial_id"] for r in rows(smoke_run.out / "trials.csv")}
    for name in (
        "ray_atsuko_trial_epoch",
        "ray_atsuko_trial_valid_score",
        "ray_atsuko_trial_best_valid_score",
    ):
        lines = [ln for ln in text.splitlines() if ln.startswith(name + "{")]
        assert lines, name
        assert all('dataset="mosei"' in ln for ln in lines)
        assert any(f'trial="{t}"' in ln for ln in lines for t in trial_ids)
