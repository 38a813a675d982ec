"""`up --head-cpus 0 --workers 0` (an autoscaling cluster's start) and `add-worker` (what its
autoscaler does): the new node is alive with the resources asked for, recorded in the state,
on loopback, and `down` stops it with the rest."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cluster.local import LocalCluster, is_loopback, read_state, stop_cluster

REPO = Path(__file__).resolve().parents[2]
LOCAL = [sys.executable, str(REPO / "cluster" / "local.py")]

pytestmark = pytest.mark.slow


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LOCAL, *args], capture_output=True, text=True, timeout=240)


@pytest.fixture
def sdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="ata-"))  # short: Ray's sockets live under it
    try:
        yield folder
    finally:
        stop_cluster(folder)  # nothing left when the test ran `down` itself
        shutil.rmtree(folder, ignore_errors=True)


def test_add_worker_to_a_head_without_cpus(sdir: Path) -> None:
    r = cli("up", "--head-cpus", "0", "--workers", "0", "--state-dir", str(sdir))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "a head and 0 worker node(s)" in r.stdout and "add-worker" in r.stdout
    r = cli("status", "--state-dir", str(sdir))
    assert "1/1 nodes alive" in r.stdout and r.stdout.splitlines()[3].split()[:3] == [
        "head",
        "ALIVE",
        "0",
    ]
    before = LocalCluster.attach(sdir).pids()

    r = cli("add-worker", "--cpus", "2", "--gpus", "1", "--state-dir", str(sdir))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "added worker-1 (2 CPU, 1 GPU)" in r.stdout
    c = LocalCluster.attach(sdir)
    assert set(c.node_ids()) == {"head", "worker-1"}
    nodes = {n["role"]: n for n in c.nodes()}
    assert nodes["worker-1"]["state"] == "ALIVE"
    assert nodes["worker-1"]["resources_total"]["CPU"] == 2
    assert nodes["worker-1"]["resources_total"]["GPU"] == 1
    assert c.add_worker() == "worker-2"  # the Python API; --cpus-per-node's 1 CPU
    assert "3/3 nodes alive" in cli("status", "--state-dir", str(sdir)).stdout
    assert not [s for s in c.listeners() if not is_loopback(s[2])]
    pids = c.pids()
    assert pids > before  # the new nodes' processes are the cluster's

    r = cli("down", "--state-dir", str(sdir))
    assert r.returncode == 0 and "stopped" in r.stdout
    assert not [p for p in pids if psutil.pid_exists(p) and _alive(p)]
    assert read_state(sdir) is None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
