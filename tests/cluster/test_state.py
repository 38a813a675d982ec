"""`cluster.state` without a cluster: the state file, the token, process records that survive
PID reuse, listening sockets, loopback addresses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from cluster.state import (
    STATE_FILE,
    ClusterError,
    alive_process,
    cluster_processes,
    is_loopback,
    listening_sockets,
    proc_record,
    read_state,
    read_token,
    state_dir_of,
    write_state,
)
from search.runtime.session import TOKEN_VARIABLE


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")


def test_state_round_trip(tmp_path: Path) -> None:
    assert read_state(tmp_path) is None
    write_state(tmp_path, {"status": "running", "nodes": []})
    assert read_state(tmp_path) == {"status": "running", "nodes": []}
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temporary file left


def test_unreadable_state_is_a_cluster_error(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(ClusterError, match="unreadable cluster state"):
        read_state(tmp_path)


def test_state_dir_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert state_dir_of("here") == tmp_path.resolve() / "here"
    assert state_dir_of(None).is_absolute() and state_dir_of(None).name == ".atsuko-cluster"


def test_token_from_a_file_or_the_environment(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "token").write_text("abc\n")
    assert read_token(str(tmp_path / "token")) == "abc"
    monkeypatch.setenv("RAY_AUTH_TOKEN", " xyz \n")
    assert read_token(TOKEN_VARIABLE) == "xyz"


def test_a_record_does_not_match_a_reused_pid() -> None:
    me = proc_record(os.getpid(), "pytest")
    assert me["name"] == "pytest" and alive_process(me).pid == os.getpid()
    assert alive_process({**me, "create_time": me["create_time"] - 60}) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    gone = proc_record(child.pid)
    child.wait()
    assert alive_process(gone) is None


def test_cluster_processes_and_their_sockets() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        state = {"supervisor": proc_record(sleeper.pid), "nodes": []}
        assert set(cluster_processes(state)) == {sleeper.pid}
        sleeper.kill()
        sleeper.wait()
        assert cluster_processes(state) == {}
        port = listener.getsockname()[1]
        mine = listening_sockets({os.getpid(): psutil.Process()})
        assert (os.getpid(), psutil.Process().name(), "127.0.0.1", port) in mine
    finally:
        listener.close()
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
