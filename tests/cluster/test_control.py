"""`cluster.control` without Ray: bad sizes, a supervisor that fails or dies before the cluster
is up (its state forgotten, the error ending with its log), and commands without a cluster.
A real cluster: test_local_cluster.py and test_add_worker.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cluster import control
from cluster.state import STATE_FILE, ClusterError, proc_record, read_state, write_state


def test_bad_sizes_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="--workers must be >= 0"):
        control.start_cluster(-1, state_dir=tmp_path)
    with pytest.raises(ClusterError, match="--head-cpus >= 0"):
        control.start_cluster(1, head_cpus=-1, state_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def _supervisor(code: str, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)


def test_a_supervisor_that_exits_early_is_reported_with_its_log(tmp_path: Path) -> None:
    log_path = tmp_path / "supervisor.log"
    proc = _supervisor("print('no free port'); raise SystemExit(3)", log_path)
    (tmp_path / STATE_FILE).write_text("{}")  # an unrelated state: not this supervisor's
    with pytest.raises(ClusterError) as error:
        control._wait_running(proc, tmp_path, log_path, timeout=60)
    message = str(error.value)
    assert "exited with status 3 before the cluster was up" in message
    assert message.endswith("(last lines) ---\nno free port")
    assert read_state(tmp_path) is None


def test_a_failed_start_is_reported_once_the_supervisor_is_gone(tmp_path: Path) -> None:
    log_path = tmp_path / "supervisor.log"
    proc = _supervisor("import time; print('starting'); time.sleep(2)", log_path)
    try:
        state = {"supervisor": proc_record(proc.pid), "status": "failed", "error": "GCS died"}
        write_state(tmp_path, state)
        with pytest.raises(ClusterError, match="the cluster did not start: GCS died"):
            control._wait_running(proc, tmp_path, log_path, timeout=60)
        assert proc.poll() is not None and read_state(tmp_path) is None
    finally:
        proc.kill()
        proc.wait()


def test_commands_without_a_cluster(tmp_path: Path) -> None:
    assert control.stop_cluster(tmp_path) == []
    with pytest.raises(ClusterError, match="no running cluster recorded"):
        control.add_worker(tmp_path)
    with pytest.raises(ClusterError, match="--cpus must be > 0"):
        control.add_worker(tmp_path, cpus=0)


def test_what_a_client_is_given(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("secret\n")
    state = {"address": "127.0.0.1:6379", "token": str(tmp_path / "token")}
    assert control.client_env(state)["RAY_ADDRESS"] == "127.0.0.1:6379"
    assert control.client_env(state)["RAY_AUTH_MODE"] == "token"
    assert control.auth_headers(state) == {"Authorization": "Bearer secret"}
