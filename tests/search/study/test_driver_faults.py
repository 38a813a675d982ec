"""Faults: a NaN trial, a SIGKILLed driver and --resume, Ctrl-C, a time budget.

Each search here joins the session's shared loopback Ray with --address (see conftest.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import optuna
import pytest
from searchtest_util import FAST, NAN_SPACE, kill_tree, rows, run, start, wait_for

pytestmark = pytest.mark.slow


def _epochs(trial_dir) -> list[int]:
    lines = (trial_dir / "result.json").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines if line.strip()]


def _past_first_epoch(trial_dir) -> bool:
    """A checkpoint after the first epoch is on disk (Tune keeps the last two)."""
    return any(p.name > "checkpoint_000000" for p in trial_dir.glob("checkpoint_*"))


def _study_states(out) -> dict[str, str]:
    study = optuna.load_study(study_name="atsuko-mosei", storage=f"sqlite:///{out / 'study.db'}")
    return {t.user_attrs["tune_trial_id"]: t.state.name for t in study.trials}


def test_a_nan_trial_errors_with_its_reason_and_the_search_goes_on(shared_ray, tmp_path):
    out = tmp_path / "out"
    done = run(
        *FAST,
        "--space",
        str(NAN_SPACE),
        "--seed",
        "0",
        "--scheduler",
        "none",
        "--max-failures",
        "0",
        "--final-seeds",
        "0",
        "--address",
        shared_ray["address"],
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = rows(out / "trials.csv")
    assert len(table) == 3
    errored = [r for r in table if r["state"] == "ERROR"]
    assert errored and all(float(r["param/lr"]) > 1 for r in errored)
    assert all("NonFiniteLoss" in r["error"] and "non-finite loss" in r["error"] for r in errored)
    assert [r["state"] for r in table if float(r["param/lr"]) < 1] == ["COMPLETE"]
    states = _study_states(out)
    assert {states[r["trial_id"]] for r in errored} == {"FAIL"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"]["ERROR"] == len(errored)
    assert float(summary["best_trial"]["params"]["lr"]) < 1


def test_resume_after_the_driver_is_killed(shared_ray, tmp_path):
    out = tmp_path / "out"
    args = ["--address", shared_ray["address"]]
    proc = start(
        *FAST,
        "--scheduler",
        "none",
        "--num-samples",
        "4",
        "--max-epochs",
        "8",  # long enough that a trial is mid-way while another has finished
        "--final-seeds",
        "0",
        "--out",
        str(out),
        *args,
        log=tmp_path / "first.txt",
    )

    def finished_one_and_another_mid_way() -> bool:
        table = out / "trials.csv"
        complete = (
            {r["trial_id"] for r in rows(table) if r["state"] == "COMPLETE"}
            if table.exists()
            else set()
        )
        mid = [
            d
            for d in (out / "tune").glob("mosei_*")
            if d.name.removeprefix("mosei_") not in complete and _past_first_epoch(d)
        ]
        return bool(complete) and bool(mid)

    assert wait_for(finished_one_and_another_mid_way, 240, proc), (
        tmp_path / "first.txt"
    ).read_text()[-3000:]
    time.sleep(1.5)  # let the experiment snapshot that follows the checkpoint land
    kill_tree(proc, signal.SIGKILL)
    # kept: the finished trials and those with a checkpoint; a trial that had only just been
    # created when the driver died is in no snapshot, and the resumed search replaces it
    before = {r["trial_id"] for r in rows(out / "trials.csv") if r["state"] == "COMPLETE"}
    before |= {
        d.name.removeprefix("mosei_")
        for d in (out / "tune").glob("mosei_*")
        if _past_first_epoch(d)
    }

    done = run("--resume", str(out), *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Resuming mosei" in done.stdout
    table = rows(out / "trials.csv")
    ids = [r["trial_id"] for r in table]
    assert len(ids) == 4 and len(set(ids)) == 4, ids  # exactly the requested trials
    assert before <= set(ids)
    assert all(r["state"] == "COMPLETE" and r["epochs"] == "8" for r in table)
    for trial_id in ids:
        trial_dir = out / "tune" / f"mosei_{trial_id}"
        epochs = _epochs(trial_dir)
        assert max(epochs) == 8
        # a kept trial continues from its checkpoint; one that started just before the kill
        # (a reused worker starts the next trial within a second) may have reported an epoch
        # that no snapshot holds yet: it starts again, as Tune promises no more
        if trial_id in before:
            assert epochs.count(1) == 1, f"{trial_dir.name} restarted from scratch: {epochs}"
    assert _study_states(out) == {r["trial_id"]: "COMPLETE" for r in table}
    again = run("--resume", str(out), *args)
    assert again.returncode == 0 and "complete" in again.stdout


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(shared_ray, tmp_path):
    out = tmp_path / "out"
    log = tmp_path / "log.txt"
    proc = start(
        *FAST,
        "--scheduler",
        "none",
        "--num-samples",
        "4",
        "--max-epochs",
        "4",
        "--address",
        shared_ray["address"],
        "--out",
        str(out),
        log=log,
    )
    assert wait_for(lambda: any((out / "tune").glob("mosei_*/checkpoint_000000")), 240, proc)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=120)
    text = log.read_text()
    assert code == 130, text[-3000:]
    assert f"python search/run.py --resume {out}" in text
    assert "Traceback" not in text
    assert (out / "trials.csv").is_file() and (out / "search.json").is_file()
    assert any(r["state"] in ("RUNNING", "PENDING") for r in rows(out / "trials.csv"))


BUDGET, AFTER_BUDGET = 12, 60  # seconds; stopping and writing take ~20 s on a busy machine


def _exits_within_the_budget(proc, log) -> None:
    """The driver exits within the budget's bound from the search's start (its monitoring
    block: starting Python and joining Ray are not counted); else it is ended and the test
    fails."""
    try:
        assert wait_for(lambda: "Monitoring" in log.read_text(), 300, proc), log.read_text()
        proc.wait(timeout=BUDGET + AFTER_BUDGET)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {BUDGET + AFTER_BUDGET} s into a {BUDGET} s budget")
    finally:
        if proc.poll() is None:
            kill_tree(proc)


def test_time_budget_stops_the_search_with_everything_written(shared_ray, tmp_path):
    """However many trials this machine finishes in the budget (none, on a busy one): the
    search stops soon after it, every trial is COMPLETE or STOPPED in trials.csv and study.db,
    and there is a best configuration (exit 0) exactly when some trial completed (else exit 1,
    saying so)."""
    out, log = tmp_path / "out", tmp_path / "log.txt"
    args = ["--scheduler", "none", "--num-samples", "40", "--max-epochs", "1"]
    args += ["--time-budget", str(BUDGET), "--final-seeds", "0"]
    proc = start(*FAST, *args, "--address", shared_ray["address"], "--out", str(out), log=log)
    _exits_within_the_budget(proc, log)
    text = log.read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ended"] == "time budget", text[-3000:]
    table = rows(out / "trials.csv")
    assert 0 < len(table) < 40 and summary["trials"]["total"] == len(table)
    states = {r["trial_id"]: r["state"] for r in table}
    assert set(states.values()) <= {"COMPLETE", "STOPPED"}, table
    optuna_states = {t: "COMPLETE" if s == "COMPLETE" else "PRUNED" for t, s in states.items()}
    assert _study_states(out) == optuna_states
    completed = "COMPLETE" in states.values()
    assert proc.returncode == (0 if completed else 1), text[-3000:]
    assert (out / "best_config.yaml").is_file() == completed
    assert completed or "No trial ran to completion" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    "flags", [["--cpus-per-trial", "512"], ["--gpus-per-trial", "64"]], ids=["cpus", "gpus"]
)
def test_a_trial_that_fits_no_node_is_refused(flags, tmp_path):
    """On the local Ray the search starts (nothing can join it); a cluster joined with
    --address waits instead (tests/search/study/test_autoscaling.py)."""
    out = tmp_path / "out"
    done = run(*FAST, *flags, "--out", str(out))
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"error: {flags[0]} {flags[1]}: no Ray node has" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (out / "search.json").exists()  # the search never started
