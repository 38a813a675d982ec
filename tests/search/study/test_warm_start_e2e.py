"""Warm start end to end: a search seeded from a finished one, killed and resumed.

Both searches join the module's shared loopback Ray with --address (see conftest.py).
"""

from __future__ import annotations

import signal
import time

import optuna
import pytest
from searchtest_util import FAST, kill_tree, rows, run, start, wait_for

pytestmark = pytest.mark.slow


def _past_first_epoch(trial_dir) -> bool:
    return any(p.name > "checkpoint_000000" for p in trial_dir.glob("checkpoint_*"))


def test_seeded_trials_run_first_marked_and_once_across_a_resume(shared_ray, tmp_path):
    address = ["--address", shared_ray["address"]]
    quiet = ["--scheduler", "none", "--final-seeds", "0"]
    source = tmp_path / "mosei-first"
    done = run(*FAST, *quiet, "--num-samples", "3", "--max-epochs", "1", "--out", str(source),
               *address)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    first = sorted(
        (r for r in rows(source / "trials.csv") if r["state"] == "COMPLETE"),
        key=lambda r: float(r["score"]),
    )

    out = tmp_path / "warm"
    proc = start(
        *FAST, *quiet, "--num-samples", "4", "--max-epochs", "6", "--seed", "7",
        "--warm-start", str(source), "--warm-start-k", "2", "--out", str(out), *address,
        log=tmp_path / "first.txt",
    )  # fmt: skip
    assert wait_for(
        lambda: any(_past_first_epoch(d) for d in (out / "tune").glob("mosei_*")), 240, proc
    ), (tmp_path / "first.txt").read_text()[-3000:]
    time.sleep(1.5)  # let the experiment snapshot that follows the checkpoint land
    kill_tree(proc, signal.SIGKILL)
    log = (tmp_path / "first.txt").read_text()
    assert "Warm start: 2 configuration(s) run first" in log
    assert f"{source}:{first[0]['trial_id']}" in log

    again = run("--resume", str(out), *address)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    table = sorted(rows(out / "trials.csv"), key=lambda r: float(r["started"]))
    assert len(table) == 4 and all(r["state"] == "COMPLETE" for r in table)
    origins = [r["warm_start"] for r in table]
    expected = {f"{source}:{r['trial_id']}" for r in first[:2]}
    assert [o for o in origins if o] and set(filter(None, origins)) <= expected
    assert sorted(filter(None, origins)) == sorted(expected)  # each seed ran once, never twice
    assert all(origins[:2]) and not any(origins[2:])  # the seeds came first
    by_id = {f"{source}:{r['trial_id']}": r for r in first}
    for r in table[:2]:
        mine = by_id[r["warm_start"]]
        for key in ("num_bands", "lr", "tau_mod"):
            assert float(r[f"param/{key}"]) == pytest.approx(float(mine[f"param/{key}"]))
    study = optuna.load_study(study_name="atsuko-mosei", storage=f"sqlite:///{out / 'study.db'}")
    marked = {t.user_attrs["tune_trial_id"]: t.user_attrs.get("warm_start") for t in study.trials}
    assert marked == {r["trial_id"]: (r["warm_start"] or None) for r in table}
    assert study.metric_names == ["valid MAE"]
    report = (out / "report.md").read_text()
    assert "2 warm-started trial(s)" in report
