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


def test_a_worker_node_dying_mid_search_does_not_stop_it(tmp_path):
    state_dir = Path(tempfile.mkdtemp(prefix="ats-"))  # short: Ray's sockets live under it
    out = tmp_path / "out"
    log = tmp_path / "log.txt"
    try:
        with LocalCluster(workers=2, cpus_per_node=1, head_cpus=0, state_dir=state_dir) as c:
            proc = start(
                *FAST,
                "--scheduler",
                "none",
                "--num-samples",
                "3",
                "--max-epochs",
                "4",
                "--concurrency",
                "2",
                "--max-failures",
                "3",
                "--final-seeds",
                "0",
                "--address",
                c.address,
                "--out",
                str(out),
                log=log,
                extra_env=c.env(),
            )
            checkpointed = lambda: len(list((out / "tune").glob("mosei_*/checkpoint_000000"))) >= 2  # noqa: E731
            assert wait_for(checkpointed, 300, proc), log.read_text()[-3000:]
            c.kill_worker(0)
            code = proc.wait(timeout=400)
            text = log.read_text()
            assert code == 0, text[-3000:]
            nodes = c.wait_for_nodes(alive=2)  # the GCS marks the node DEAD within ~15 s
            alive = {n["node_id"] for n in nodes if n["state"] == "ALIVE"}
            dead = {n["node_id"] for n in nodes if n["state"] != "ALIVE"}
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    table = rows(out / "trials.csv")
    assert len(table) == 3
    assert all(r["state"] == "COMPLETE" and r["epochs"] == "4" for r in table), table
    assert all(r["node_id"] in alive for r in table)  # finished on the surviving nodes
    assert len(dead) == 1
    first_nodes = set()
    moved = 0
    for trial_dir in (out / "tune" / f"mosei_{r['trial_id']}" for r in table):
        lines = (trial_dir / "result.json").read_text().splitlines()
        results = [json.loads(x) for x in lines]
        epochs = [r["epoch"] for r in results]
        assert epochs.count(1) == 1, f"{trial_dir.name} restarted from scratch: {epochs}"
        first_nodes.add(results[0]["node_id"])
        moved += results[0]["node_id"] in dead and results[-1]["node_id"] in alive
    assert moved >= 1, "no trial was running on the killed worker"
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
