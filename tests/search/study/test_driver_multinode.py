"""A worker node that dies mid-search does not stop it (a head and two workers on loopback).

Uses the cluster helper's `cluster.local.LocalCluster`; the head has no CPUs, so every trial
runs on a worker, and killing one worker (SIGKILL of its raylet and everything under it)
forces a retry from the last checkpoint on the other.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
from searchtest_util import FAST, REPO, RUN, rows, start, wait_for

from cluster.local import LocalCluster

pytestmark = pytest.mark.slow


def _results(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [json.loads(line) for line in lines if line.strip()]


def _caught_mid_way(tune_dir: Path, node_id: str) -> str | None:
    """A trial now running on `node_id` with a checkpoint and at least two of its four epochs
    to go (so it is still running when its node dies a moment later, however slow the
    machine), or None."""
    for trial_dir in tune_dir.glob("mosei_*"):
        results = _results(trial_dir)
        last = results[-1] if results else {}
        if last.get("node_id") == node_id and last.get("epoch", 0) <= 2:
            if any(trial_dir.glob("checkpoint_*")):
                return trial_dir.name
    return None


def test_a_worker_node_dying_mid_search_does_not_stop_it(tmp_path):
    state_dir = Path(tempfile.mkdtemp(prefix="ats-"))  # short: Ray's sockets live under it
    out = tmp_path / "out"
    log = tmp_path / "log.txt"
    args = ["--scheduler", "none", "--num-samples", "3", "--max-epochs", "4"]
    args += ["--concurrency", "2", "--max-failures", "3", "--final-seeds", "0"]
    try:
        with LocalCluster(workers=2, cpus_per_node=1, head_cpus=0, state_dir=state_dir) as c:
            victim = [node for name, node in c.node_ids().items() if name != "head"][0]
            proc = start(*FAST, *args, "--address", c.address, "--out", str(out), log=log)
            caught = None

            def a_trial_is_caught() -> bool:
                nonlocal caught
                caught = _caught_mid_way(out / "tune", victim)
                return caught is not None

            assert wait_for(a_trial_is_caught, 300, proc), log.read_text()[-3000:]
            c.kill_worker(0)
            code = proc.wait(timeout=400)
            text = log.read_text()
            assert code == 0, text[-3000:]
            nodes = c.wait_for_nodes(alive=2)  # the GCS marks the node DEAD within ~15 s
            alive = {n["node_id"] for n in nodes if n["state"] == "ALIVE"}
            dead = {n["node_id"] for n in nodes if n["state"] != "ALIVE"}
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    assert dead == {victim}
    table = rows(out / "trials.csv")
    assert len(table) == 3
    assert all(r["state"] == "COMPLETE" and r["epochs"] == "4" for r in table), table
    assert all(r["node_id"] in alive for r in table)  # finished on the surviving nodes
    moved = _results(out / "tune" / caught)
    epochs = [r["epoch"] for r in moved]
    assert moved[0]["node_id"] == victim and moved[-1]["node_id"] in alive, moved
    # restored, not restarted: it keeps its start time (a fresh start takes a new one) and
    # reports again only the epoch its checkpoint holds, first on the new node
    assert len({r["started_at"] for r in moved}) == 1, f"{caught} restarted from scratch: {epochs}"
    assert epochs == sorted(epochs) and len(epochs) - len(set(epochs)) <= 1, epochs
    first_nodes = {_results(out / "tune" / f"mosei_{r['trial_id']}")[0]["node_id"] for r in table}
    assert len(first_nodes) >= 2, f"trials did not spread over the workers: {first_nodes}"


def test_a_search_submitted_as_a_ray_job_runs_to_the_end(tmp_path):
    """The cluster path of the README: the search as a Ray Job, `--address auto` inside it."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    state_dir = Path(tempfile.mkdtemp(prefix="atj-"))
    out = tmp_path / "out"
    args = [*FAST, "--num-samples", "2", "--max-epochs", "1", "--final-seeds", "0"]
    command = " ".join([shlex.quote(sys.executable), str(RUN), *args, "--address", "auto"])
    try:
        with LocalCluster(workers=1, cpus_per_node=1, state_dir=state_dir) as c:
            jobs = JobSubmissionClient(c.dashboard_url, headers=c.headers())
            job = jobs.submit_job(
                entrypoint=f"cd {shlex.quote(str(REPO))} && {command} --out {shlex.quote(str(out))}"
            )
            deadline = time.monotonic() + 400
            while not jobs.get_job_status(job).is_terminal() and time.monotonic() < deadline:
                time.sleep(1)
            status, logs = jobs.get_job_status(job), jobs.get_job_logs(job)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    assert status == JobStatus.SUCCEEDED, logs[-3000:]
    table = rows(out / "trials.csv")
    assert len(table) == 2 and all(r["state"] == "COMPLETE" for r in table), table
    assert (out / "best_config.yaml").is_file()
