"""Shared fixtures: one local Ray for the fault tests, one end-to-end smoke search.

Starting Ray costs ~5 s and each trial ~2 s on a 2-core machine, so the search CLIs in the
fault tests join one Ray (`--address`) started once for their module in a child process, and
the end-to-end checks all read one smoke search (which starts its own local Ray, as users do).
Both are module-scoped: each is used by one module and ends with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from searchtest_util import FAST, REPO, Watcher, env, start

from search.runtime.session import free_port


def _start_head(log: Path) -> tuple[subprocess.Popen, dict]:
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("ray_head.py")), "2"],
            cwd=REPO,
            env=env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=60)
        return proc, {}
    return proc, {**json.loads(line), "pid": proc.pid}


@pytest.fixture(scope="module")
def shared_ray(tmp_path_factory):
    """{'address', 'metrics_port', 'dashboard_url', 'pid'} of a 2-CPU loopback Ray."""
    log = tmp_path_factory.mktemp("ray_head") / "stderr.txt"
    proc, info = _start_head(log)
    if not info:  # a busy machine can lose a port race once: try again
        proc, info = _start_head(log)
    if not info:
        pytest.fail("the test Ray did not start:\n" + log.read_text()[-3000:])
    yield info
    proc.stdin.close()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


@dataclass
class SmokeRun:
    out: Path
    code: int
    log: str
    sockets: set
    metrics: str
    metrics_port: int


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> SmokeRun:
    """`run.py --dataset mosei --smoke-test` (tiny space) with its own local Ray, watched."""
    out = tmp_path_factory.mktemp("smoke") / "out"
    log = out.parent / "log.txt"
    port = free_port()
    proc = start(*FAST, "--out", str(out), "--metrics-port", str(port), log=log)
    watcher = Watcher(proc.pid, port)
    watcher.start()
    try:
        code = proc.wait(timeout=400)
    finally:
        watcher.done.set()
        watcher.join(timeout=10)
        if proc.poll() is None:
            proc.kill()
    return SmokeRun(out, code, log.read_text(), watcher.sockets, watcher.metrics, port)


@pytest.fixture(scope="session")
def space():
    """The default search space on synthetic MOSEI."""
    from atsuko.config import resolve
    from search.study.space import load_space

    return load_space(None, resolve(None, {"data.synthetic": True}, dataset="mosei"))
