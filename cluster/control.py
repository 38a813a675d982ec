"""Starting, growing, stopping and asking a local cluster: what `python cluster/local.py`
and `cluster.local.LocalCluster` do, with the nodes in a detached supervisor
(`cluster.supervisor`) and what it started recorded in STATE_DIR/state.json (`cluster.state`).

Tested in `tests/cluster/test_control.py` (without Ray), `test_local_cluster.py` and
`test_add_worker.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from cluster.state import (
    CLIENT_ENV,
    REQUESTS_DIR,
    STATE_FILE,
    ClusterError,
    alive_process,
    cluster_processes,
    read_state,
    read_token,
    state_dir_of,
    write_json,
)
from search.runtime.session import free_port, token_location

# Unix socket paths (session dir + sockets/plasma_store) must stay under 108 bytes.
_MAX_RAY_TMPDIR = 40


# ----------------------------------------------------------------------------- up / down


def _ray_tmpdir(state_dir: Path) -> Path:
    """RAY_TMPDIR for the nodes: under the state dir when its path is short enough for Ray's
    Unix sockets, else a fresh directory under the system's temp dir."""
    candidate = state_dir / "ray"
    if len(str(candidate)) <= _MAX_RAY_TMPDIR:
        return candidate
    return Path(tempfile.mkdtemp(prefix="atsuko-ray-"))


def _log_tail(path: str | Path, lines: int = 25) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _not_started(sdir: Path, log_path: Path, why: str) -> ClusterError:
    """Forget the state of a cluster that did not start; the error ends with the log's tail."""
    (sdir / STATE_FILE).unlink(missing_ok=True)
    return ClusterError(f"{why}\n--- {log_path} (last lines) ---\n{_log_tail(log_path)}")


def start_cluster(
    workers: int = 2,
    *,
    cpus_per_node: int = 1,
    head_cpus: int | None = None,
    object_store_mb: int = 200,
    port: int = 0,
    dashboard_port: int = 0,
    state_dir: str | Path | None = None,
    timeout: float = 180.0,
) -> dict[str, Any]:
    """Start a head and `workers` worker nodes in a detached supervisor; return the state once
    every node is alive. Ports left at 0 are picked free on loopback. `head_cpus=0` with
    `workers=0` is a cluster like the cloud configs' at first: a head that runs no trial and no
    worker yet (`add_worker` then stands in for the autoscaler)."""
    _check_sizes(workers, cpus_per_node, head_cpus)
    sdir = state_dir_of(state_dir)
    sdir.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(sdir)
    options = {
        "--workers": workers,
        "--cpus-per-node": cpus_per_node,
        "--head-cpus": cpus_per_node if head_cpus is None else head_cpus,
        "--object-store-mb": object_store_mb,
        "--port": port or free_port(),
        "--dashboard-port": dashboard_port or free_port(),
        "--token": token_location(create=True),
    }
    cmd = [sys.executable, "-m", "cluster.supervisor", "--state-dir", str(sdir)]
    for flag, value in options.items():
        cmd += [flag, str(value)]
    log_path = sdir / "supervisor.log"
    return _wait_running(_spawn(cmd, sdir, log_path), sdir, log_path, timeout)


def _check_sizes(workers: int, cpus_per_node: int, head_cpus: int | None) -> None:
    if workers < 0:
        raise ClusterError(f"--workers must be >= 0, got {workers}")
    if cpus_per_node <= 0 or (head_cpus is not None and head_cpus < 0):
        raise ClusterError("--cpus-per-node must be > 0 and --head-cpus >= 0")


def _spawn(cmd: list[str], sdir: Path, log_path: Path) -> subprocess.Popen:
    """The detached supervisor, its output appended to `log_path`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            cwd=sdir,
            env=_supervisor_env(sdir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command; its own process group
        )


def _clear_leftovers(sdir: Path) -> None:
    """Refuse a state dir whose cluster still runs; stop what a dead supervisor left."""
    old = read_state(sdir)
    if old is None:
        return
    if old.get("status") in ("starting", "running") and alive_process(old["supervisor"]):
        raise ClusterError(
            f"a cluster is already running from {sdir} (supervisor pid "
            f"{old['supervisor']['pid']}); run `down` first or pass another --state-dir"
        )
    _terminate(old, grace=5.0)  # leftovers of a supervisor that died: ours, stop them
    (sdir / STATE_FILE).unlink(missing_ok=True)


def _supervisor_env(sdir: Path) -> dict[str, str]:
    """The supervisor's (and so every node's) environment: loopback, token mode, RAY_TMPDIR,
    and `python` in a Ray Job's entrypoint being this interpreter, with the project importable."""
    tmpdir = _ray_tmpdir(sdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    python_bin = str(Path(sys.executable).parent)
    project_root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        **CLIENT_ENV,
        "RAY_TMPDIR": str(tmpdir),
        "PATH": python_bin + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(p for p in (project_root, os.environ.get("PYTHONPATH")) if p),
    }
    env.pop("RAY_ADDRESS", None)
    return env


def _wait_running(
    proc: subprocess.Popen, sdir: Path, log_path: Path, timeout: float
) -> dict[str, Any]:
    """The state once the supervisor says `running`; on failure or timeout, stop what it
    started and raise with the log's last lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(sdir)
        if state and state["supervisor"]["pid"] == proc.pid:
            if state["status"] == "running":
                return state
            if state["status"] == "failed":
                _wait_exit(proc, 30.0)
                _terminate(state, grace=5.0)
                why = f"the cluster did not start: {state.get('error')}"
                raise _not_started(sdir, log_path, why)
        if proc.poll() is not None:
            why = f"the supervisor exited with status {proc.returncode} before the cluster was up"
            raise _not_started(sdir, log_path, why)
        time.sleep(0.2)
    state = read_state(sdir)
    if state:
        _terminate(state, grace=5.0)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    _wait_exit(proc, 10.0)
    raise _not_started(sdir, log_path, f"the cluster was not up after {timeout:.0f} s; stopped it")


def add_worker(
    state_dir: str | Path | None = None,
    *,
    cpus: int | None = None,
    gpus: int = 0,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Add one worker node to the running cluster in `state_dir`, as an autoscaler would for a
    pending trial; returns its node record once it is alive. The supervisor creates it (a
    request file in STATE_DIR/requests, then SIGUSR1), so `down` stops it with the rest."""
    if (cpus is not None and cpus <= 0) or gpus < 0:
        raise ClusterError("--cpus must be > 0 and --gpus >= 0")
    sdir = state_dir_of(state_dir)
    state = read_state(sdir)
    sup = alive_process(state["supervisor"]) if state else None
    if state is None or state.get("status") != "running" or sup is None:
        raise ClusterError(f"no running cluster recorded in {sdir}; start one with `up`")
    request = f"{os.getpid()}-{time.monotonic_ns()}"
    folder = sdir / REQUESTS_DIR
    folder.mkdir(exist_ok=True)
    body = {"id": request, "cpus": cpus or state.get("cpus_per_node", 1), "gpus": gpus}
    write_json(folder / f"{request}.json", body)
    with contextlib.suppress(psutil.Error):
        sup.send_signal(signal.SIGUSR1)  # wake it now (it also looks every second)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(sdir) or {}
        answer = (state.get("requests") or {}).get(request)
        if answer is not None:
            if answer.get("error"):
                raise ClusterError(f"the worker was not added: {answer['error']}")
            return next(n for n in state["nodes"] if n["name"] == answer["node"])
        if alive_process(state.get("supervisor") or {"pid": -1, "create_time": 0}) is None:
            raise ClusterError(f"the cluster's supervisor is gone (see {sdir / 'supervisor.log'})")
        time.sleep(0.2)
    raise ClusterError(f"no new worker after {timeout:.0f} s (see {sdir / 'supervisor.log'})")


def _wait_exit(proc: subprocess.Popen, timeout: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)


def _terminate(state: dict[str, Any], grace: float) -> list[int]:
    """SIGTERM the supervisor (it removes its nodes), then SIGKILL whatever of the cluster is
    left after `grace` seconds. Returns the PIDs that were running."""
    procs = cluster_processes(state)
    sup = alive_process(state["supervisor"])
    if sup is not None:
        with contextlib.suppress(psutil.Error):
            sup.terminate()
    _, alive = psutil.wait_procs(list(procs.values()), timeout=grace)
    if alive or cluster_processes(state):
        for p in list(alive) + list(cluster_processes(state).values()):
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(list(cluster_processes(state).values()) + list(alive), timeout=10)
    return sorted(procs)


def stop_cluster(state_dir: str | Path | None = None, grace: float = 30.0) -> list[int]:
    """Stop the cluster recorded in `state_dir`: exactly the processes it started. Returns
    their PIDs ([] when there was none). The logs stay in the session directory."""
    sdir = state_dir_of(state_dir)
    state = read_state(sdir)
    if state is None:
        return []
    pids = _terminate(state, grace)
    (sdir / STATE_FILE).unlink(missing_ok=True)
    return pids


# ----------------------------------------------------------------------------- status


def query_nodes(state: dict[str, Any], timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every node the head's GCS knows (alive or dead), through the dashboard's state API on
    loopback with the token; each dict gains `role` ('head', 'worker-1', ...) from the state."""
    url = state["dashboard_url"] + "/api/v0/nodes?limit=1000&detail=1"
    req = urllib.request.Request(url, headers=auth_headers(state))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - loopback URL
            body = json.load(r)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ClusterError(
            f"the dashboard at {state['dashboard_url']} did not answer: {exc}"
        ) from None
    roles = {n["node_id"]: n["name"] for n in state.get("nodes", [])}
    nodes = body["data"]["result"]["result"]
    for n in nodes:
        n["role"] = roles.get(n["node_id"], "?")
    order = {n["name"]: n["index"] for n in state.get("nodes", [])}
    return sorted(nodes, key=lambda n: (order.get(n["role"], 1 << 30), n["node_id"]))


def auth_headers(state: dict[str, Any]) -> dict[str, str]:
    """The HTTP header the dashboard and the Jobs API want."""
    return {"Authorization": f"Bearer {read_token(state['token'])}"}


def client_env(state: dict[str, Any]) -> dict[str, str]:
    """Environment a client process needs to join: RAY_ADDRESS (so `--address auto` and
    `ray.init()` find this cluster), token mode, and loopback addressing."""
    return {**CLIENT_ENV, "RAY_ADDRESS": state["address"]}
