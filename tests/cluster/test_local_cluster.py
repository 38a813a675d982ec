"""The local multi-node cluster (`python cluster/local.py`): a head and two workers that outlive
`up`, all alive in `status`, work spread over them, a Ray Job that succeeds through the token-
guarded Jobs API, nothing listening beyond loopback, a second cluster beside it, a killed worker
seen dead, and `down` leaving none of its processes. One cluster serves the module, in order."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from atsuko.errors import ConfigError
from cluster.local import (
    LocalCluster,
    is_loopback,
    read_state,
    stop_cluster,
    token_location,
)

REPO = Path(__file__).resolve().parents[2]
LOCAL = [sys.executable, str(REPO / "cluster" / "local.py")]


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([*LOCAL, *args], capture_output=True, text=True, timeout=timeout)


def short_tmpdir() -> Path:
    """A state dir with a short path: Ray's Unix sockets live under it."""
    return Path(tempfile.mkdtemp(prefix="atc-"))


# ----------------------------------------------------------------------------- without Ray


def test_token_is_created_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    where = Path(token_location(create=True))
    assert where == tmp_path / ".ray" / "auth_token"
    assert len(where.read_text()) == 64 and (where.stat().st_mode & 0o777) == 0o600
    before = where.read_text()
    assert token_location(create=True) == str(where) and where.read_text() == before  # kept
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="RAY_AUTH_TOKEN_PATH"):
        token_location(create=True)
    assert token_location() == str(tmp_path / "missing")  # only says where, creates nothing


def test_cli_without_a_cluster(tmp_path: Path) -> None:
    r = cli("status", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "error: no cluster recorded" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("down", "--state-dir", str(tmp_path))
    assert r.returncode == 0 and "no cluster recorded" in r.stdout
    r = cli("up", "--workers", "-1", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "--workers must be >= 0" in r.stderr
    r = cli("add-worker", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "no running cluster recorded" in r.stderr


# ----------------------------------------------------------------------------- a live cluster


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[LocalCluster, str]]:
    """`up --workers 2` through the CLI, which returns while the nodes keep running."""
    sdir = short_tmpdir()
    try:
        r = cli("up", "--workers", "2", "--state-dir", str(sdir))
        assert r.returncode == 0, r.stdout + r.stderr
        yield LocalCluster.attach(sdir), r.stdout
    finally:
        stop_cluster(sdir)  # nothing left to stop when test_down ran
        shutil.rmtree(sdir, ignore_errors=True)


@pytest.mark.slow
def test_up_prints_how_to_reach_it(live: tuple[LocalCluster, str]) -> None:
    c, out = live
    assert c.address.startswith("127.0.0.1:") and c.dashboard_url.startswith("http://127.0.0.1:")
    for text in (c.address, c.dashboard_url, c.token, "RAY_AUTH_MODE=token", "down"):
        assert text in out
    again = cli("up", "--workers", "1", "--state-dir", str(c.state_dir))
    assert again.returncode == 2 and "already running" in again.stderr


@pytest.mark.slow
def test_status_shows_three_alive_nodes(live: tuple[LocalCluster, str]) -> None:
    c, _ = live
    r = cli("status", "--state-dir", str(c.state_dir))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3/3 nodes alive" in r.stdout
    for role in ("head", "worker-1", "worker-2"):
        assert any(ln.split()[:2] == [role, "ALIVE"] for ln in r.stdout.splitlines()), r.stdout
    assert {n["role"]: n["state"] for n in c.nodes()} == dict.fromkeys(c.node_ids(), "ALIVE")


@pytest.mark.slow
def test_dashboard_requires_the_token(live: tuple[LocalCluster, str]) -> None:
    c, _ = live
    url = c.dashboard_url + "/api/v0/nodes"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 401
    with urllib.request.urlopen(urllib.request.Request(url, headers=c.headers()), timeout=10) as r:
        assert r.status == 200


@pytest.mark.slow
def test_tasks_spread_over_nodes(live: tuple[LocalCluster, str]) -> None:
    c, _ = live
    code = (
        "import ray, time\n"
        "ray.init(address='auto')\n"
        "@ray.remote(num_cpus=1, scheduling_strategy='SPREAD')\n"
        "def where():\n"
        "    time.sleep(0.3)\n"
        "    return ray.get_runtime_context().get_node_id()\n"
        "print(len(set(ray.get([where.remote() for _ in range(6)]))))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **c.env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) >= 2


@pytest.mark.slow
def test_ray_job_succeeds_through_the_jobs_api(live: tuple[LocalCluster, str]) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    c, _ = live
    jobs = JobSubmissionClient(c.dashboard_url, headers=c.headers())
    job = jobs.submit_job(
        entrypoint='python -c "import ray; ray.init(); print(ray.cluster_resources())"'
    )
    deadline = time.monotonic() + 120
    while not jobs.get_job_status(job).is_terminal() and time.monotonic() < deadline:
        time.sleep(0.5)
    logs = jobs.get_job_logs(job)
    assert jobs.get_job_status(job) == JobStatus.SUCCEEDED, logs[-2000:]
    assert "'CPU': 3.0" in logs


@pytest.mark.slow
def test_nothing_listens_beyond_loopback(live: tuple[LocalCluster, str]) -> None:
    c, _ = live
    listeners = c.listeners()
    ports = {port for _, _, _, port in listeners}
    assert int(c.address.rsplit(":", 1)[1]) in ports  # the GCS
    assert int(c.dashboard_url.rsplit(":", 1)[1]) in ports  # the dashboard and Jobs API
    open_ = [sock for sock in listeners if not is_loopback(sock[2])]
    assert not open_, f"listening beyond loopback: {open_}"


@pytest.mark.slow
def test_second_cluster_beside_the_first() -> None:
    sdir = short_tmpdir()
    try:
        with LocalCluster(workers=0, state_dir=sdir) as other:
            pids = other.pids()
            nodes = other.nodes()
            assert [n["state"] for n in nodes] == ["ALIVE"] and nodes[0]["role"] == "head"
            assert not [s for s in other.listeners() if not is_loopback(s[2])]
        assert not [p for p in pids if psutil.pid_exists(p) and _not_zombie(p)]
    finally:
        shutil.rmtree(sdir, ignore_errors=True)


@pytest.mark.slow
def test_kill_worker_is_seen_dead(live: tuple[LocalCluster, str]) -> None:
    c, _ = live
    killed = c.kill_worker(1)
    assert killed and not [p for p in killed if psutil.pid_exists(p) and _not_zombie(p)]
    nodes = c.wait_for_nodes(alive=2, timeout=90)
    states = {n["role"]: n["state"] for n in nodes}
    assert states == {"head": "ALIVE", "worker-1": "ALIVE", "worker-2": "DEAD"}


@pytest.mark.slow
def test_down_leaves_none_of_its_processes(live: tuple[LocalCluster, str]) -> None:
    c, _ = live
    pids = c.pids()
    state = read_state(c.state_dir)
    assert state is not None and state["supervisor"]["pid"] in pids
    r = cli("down", "--state-dir", str(c.state_dir))
    assert r.returncode == 0 and "stopped" in r.stdout, r.stdout + r.stderr
    left = [p for p in pids if psutil.pid_exists(p) and _not_zombie(p)]
    assert not left, f"still running: {[_describe(p) for p in left]}"
    assert read_state(c.state_dir) is None
    assert "no cluster recorded" in cli("down", "--state-dir", str(c.state_dir)).stdout


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _describe(pid: int) -> str:
    try:
        return json.dumps({"pid": pid, "cmd": psutil.Process(pid).cmdline()[:3]})
    except psutil.Error:
        return str(pid)
