"""Every resume exact: a killed driver's `--resume` spends the epoch and time budgets once,
keeps ASHA's trials (with brackets) as they ended, runs again the trials whose worker was lost
and keeps those that failed by themselves.

The killed searches join the module's shared loopback Ray (`--address`, see conftest.py); each
runs in its own process group, which the test kills whole (only what it started). The errored
trials' search starts its own local Ray, so that the failure hook's variable reaches its workers
(`search.runtime.faults`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from searchtest_util import FAST, NAN_SPACE, REPO, cli, env, rows, run, wait_for

from search.runtime import snapshot
from search.runtime.faults import ENV

pytestmark = pytest.mark.slow
AT_ONCE = 2  # the shared Ray's CPUs: trials at once


def _start_own_group(*args: str, log: Path) -> subprocess.Popen:
    with log.open("w") as handle:
        return subprocess.Popen(
            cli(*args),
            cwd=REPO,
            env=env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed whole, nothing else
        )


def _kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def _epochs_so_far(out: Path) -> int:
    table = out / "trials.csv"
    return sum(int(r["epochs"] or 0) for r in rows(table)) if table.exists() else 0


def _kill_after(proc: subprocess.Popen, out: Path, epochs: int, log: Path) -> None:
    assert wait_for(lambda: _epochs_so_far(out) >= epochs, 240, proc), log.read_text()[-3000:]
    time.sleep(1.5)  # let the experiment snapshot that follows the report land
    _kill_group(proc)


def _resume(out: Path, shared_ray: dict) -> subprocess.CompletedProcess:
    done = run("--resume", str(out), "--address", shared_ray["address"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _dropped(stdout: str) -> list[str]:
    """The trials a resume says started after Tune's last snapshot (run again as new ones)."""
    said = re.search(
        r"after Tune's last snapshot of the killed run, which does not hold them: "
        r"([0-9a-f, ]+);",
        stdout,
    )
    return said.group(1).split(", ") if said else []


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_a_killed_epoch_budget_search_resumes_and_spends_the_budget_once(shared_ray, tmp_path):
    out, log, budget, samples = tmp_path / "out", tmp_path / "first.txt", 7, 6
    proc = _start_own_group(
        *FAST,
        "--scheduler",
        "none",
        "--num-samples",
        str(samples),
        "--max-epochs",
        "2",
        "--epoch-budget",
        str(budget),
        "--final-seeds",
        "0",
        "--address",
        shared_ray["address"],
        "--out",
        str(out),
        log=log,
    )
    _kill_after(proc, out, 3, log)
    assert not (out / "summary.json").exists()

    _resume(out, shared_ray)
    assert _summary(out)["ended"] == "epoch budget"
    table = rows(out / "trials.csv")
    ids = [r["trial_id"] for r in table]
    assert len(ids) == len(set(ids)) and len(ids) <= samples
    assert {r["state"] for r in table} <= {"COMPLETE", "STOPPED", "PENDING"}
    spent = sum(int(r["epochs"]) for r in table)
    assert budget <= spent <= budget + AT_ONCE, table  # once, not once per run
    again = run("--resume", str(out), "--address", shared_ray["address"])
    assert again.returncode == 0 and "complete" in again.stdout


def test_a_killed_time_budget_search_resumes_with_what_is_left(shared_ray, tmp_path):
    out, log = tmp_path / "out", tmp_path / "first.txt"
    proc = _start_own_group(
        *FAST,
        "--scheduler",
        "none",
        "--num-samples",
        "400",
        "--max-epochs",
        "2",
        "--time-budget",
        "90",  # left over after the kill even on a busy machine; 400 trials take far longer
        "--final-seeds",
        "0",
        "--address",
        shared_ray["address"],
        "--out",
        str(out),
        log=log,
    )
    _kill_after(proc, out, 2, log)
    done = _resume(out, shared_ray)
    assert _summary(out)["ended"] == "time budget", done.stdout[-3000:]
    assert len(rows(out / "trials.csv")) < 400


def _study_states(out: Path) -> dict[str, str]:
    study = optuna.load_study(study_name="atsuko-mosei", storage=f"sqlite:///{out / 'study.db'}")
    return {t.user_attrs["tune_trial_id"]: t.state.name for t in study.trials}


def test_asha_with_brackets_resumes_with_its_trials_as_they_ended(shared_ray, tmp_path):
    out, log, samples = tmp_path / "out", tmp_path / "first.txt", 6
    proc = _start_own_group(
        *FAST,
        "--scheduler",
        "asha",
        "--brackets",
        "2",
        "--grace-period",
        "1",
        "--reduction-factor",
        "2",
        "--num-samples",
        str(samples),
        "--max-epochs",
        "3",
        "--final-seeds",
        "0",
        "--address",
        shared_ray["address"],
        "--out",
        str(out),
        log=log,
    )
    _kill_after(proc, out, 4, log)
    ended = {
        r["trial_id"]: (r["state"], r["epochs"])
        for r in rows(out / "trials.csv")
        if r["state"] in ("COMPLETE", "PRUNED")
    }

    saved = snapshot.statuses(str(out / "tune"))  # what Tune's last snapshot knew had ended
    dropped = _dropped(_resume(out, shared_ray).stdout)
    table = rows(out / "trials.csv")
    ids = [r["trial_id"] for r in table]
    assert len(ids) == samples and len(set(ids)) == samples  # exactly the requested trials
    assert {r["state"] for r in table} <= {"COMPLETE", "PRUNED"}
    now = {r["trial_id"]: (r["state"], r["epochs"]) for r in table}
    # what had ended by Tune's last snapshot stays as it ended; a trial that ended after it
    # is judged again by the scheduler, whose rungs come back as that snapshot had them
    kept = {t: v for t, v in ended.items() if saved.get(t) == "TERMINATED"}
    assert {t: now[t] for t in kept} == kept
    # (their folders are removed at the resume; a worker of the killed run that Ray has not
    # ended yet may still write into one, so only the records are checked)
    assert not set(dropped) & set(now)
    assert all(int(r["epochs"]) <= 3 for r in table)
    expected = {r["trial_id"]: "PRUNED" if r["state"] == "PRUNED" else "COMPLETE" for r in table}
    assert _study_states(out) == expected


def _error_log(out: Path, trial_id: str) -> str:
    return (out / "tune" / f"mosei_{trial_id}" / "error.txt").read_text()


def test_resume_runs_again_a_trial_whose_worker_was_lost_and_keeps_a_nan_trial(tmp_path):
    out = tmp_path / "out"
    first = run(
        *FAST,
        "--space",
        str(NAN_SPACE),  # lr 1e30 (NaN loss), 0.003, 1e30 with --seed 0
        "--seed",
        "0",
        "--scheduler",
        "none",
        "--num-samples",
        "3",
        "--max-failures",
        "0",
        "--final-seeds",
        "0",
        "--out",
        str(out),
        extra_env={ENV: "worker_exit:*lr=0.003*"},  # the good trial's worker dies at its start
    )
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]  # none completed
    table = rows(out / "trials.csv")
    nan = [r["trial_id"] for r in table if "NonFiniteLoss" in r["error"]]
    lost = [r["trial_id"] for r in table if float(r["param/lr"]) < 1]
    assert len(nan) == 2 and len(lost) == 1 and {r["state"] for r in table} == {"ERROR"}
    assert "died" in table[[r["trial_id"] for r in table].index(lost[0])]["error"]
    (out / "summary.json").unlink()  # as if the driver had died before writing it
    before = {t: _error_log(out, t) for t in nan}

    # Tune saves its snapshot every ten seconds or more: the first run's last one may still
    # hold the lost trial as RUNNING (it then continues as unfinished, without the line)
    saved = snapshot.statuses(str(out / "tune"))[lost[0]]
    done = run("--resume", str(out))  # without the hook: the lost trial can finish now
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = f"Running again 1 errored trial(s) whose worker or node was lost: {lost[0]}"
    assert (said in done.stdout) == (saved == "ERROR"), (saved, done.stdout[-3000:])
    table = {r["trial_id"]: r for r in rows(out / "trials.csv")}
    assert len(table) == 3 and table[lost[0]]["state"] == "COMPLETE"
    for trial_id in nan:  # kept with its reason and its parameters, never run again
        assert table[trial_id]["state"] == "ERROR"
        assert "NonFiniteLoss" in table[trial_id]["error"]
        assert float(table[trial_id]["param/lr"]) > 1
        assert _error_log(out, trial_id) == before[trial_id]
    assert _summary(out)["best_trial"]["trial_id"] == lost[0]
    assert _study_states(out) == {lost[0]: "COMPLETE", **{t: "FAIL" for t in nan}}
