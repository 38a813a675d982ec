"""A Ray cluster of a head and N worker nodes on this machine: loopback only, token auth on.

    python cluster/local.py up --workers 2 [--cpus-per-node 1] [--state-dir DIR]
    python cluster/local.py up --head-cpus 0 --workers 0   # an autoscaling cluster's start ...
    python cluster/local.py add-worker [--cpus N]          # ... and what its autoscaler does
    python cluster/local.py status
    eval "$(python cluster/local.py env)"     # RAY_ADDRESS and friends for this shell
    python cluster/local.py down

`up` starts a detached supervisor (`cluster.supervisor`, in its own session and process group)
that creates the nodes in-process with `ray.cluster_utils.Cluster`: on Ray 2.60 a worker started
with `ray start --address` does not join a loopback-only head, while nodes started from Python
do. The supervisor records what it started in `STATE_DIR/state.json`; `down` stops exactly those
processes and nothing else; `status` asks the head's dashboard which nodes are alive.
`add-worker` asks the supervisor (a request file in `STATE_DIR/requests`, then SIGUSR1) for one
more worker node, recorded like the others: the local stand-in for an autoscaler.

From Python (tests, notebooks):

    with LocalCluster(workers=2, state_dir=tmp) as c:
        subprocess.run([...], env={**os.environ, **c.env()})   # clients join with c.address
        c.kill_worker(0)                                        # a node crash, mid-run
        c.add_worker()                                          # a node joins, mid-run
"""

from __future__ import annotations

import argparse
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

from atsuko.cli import ArgumentParser, run_cli
from cluster.state import (
    CLIENT_ENV,
    LOOPBACK,
    STATE_FILE,
    ClusterError,
    alive_process,
    cluster_processes,
    is_loopback,
    listening_sockets,
    read_state,
    read_token,
    state_dir_of,
    with_children,
)
from search.runtime.session import free_port, token_location

__all__ = [
    "ClusterError",
    "LocalCluster",
    "add_worker",
    "auth_headers",
    "client_env",
    "is_loopback",
    "query_nodes",
    "read_state",
    "start_cluster",
    "stop_cluster",
    "token_location",
]

REQUESTS_DIR = "requests"  # add-worker's requests to the supervisor
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
                (sdir / STATE_FILE).unlink(missing_ok=True)
                raise ClusterError(
                    f"the cluster did not start: {state.get('error')}\n"
                    f"--- {log_path} (last lines) ---\n{_log_tail(log_path)}"
                )
        if proc.poll() is not None:
            (sdir / STATE_FILE).unlink(missing_ok=True)
            raise ClusterError(
                f"the supervisor exited with status {proc.returncode} before the cluster was up"
                f"\n--- {log_path} (last lines) ---\n{_log_tail(log_path)}"
            )
        time.sleep(0.2)
    state = read_state(sdir)
    if state:
        _terminate(state, grace=5.0)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    _wait_exit(proc, 10.0)
    (sdir / STATE_FILE).unlink(missing_ok=True)
    raise ClusterError(
        f"the cluster was not up after {timeout:.0f} s; stopped it\n"
        f"--- {log_path} (last lines) ---\n{_log_tail(log_path)}"
    )


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
    tmp = folder / f"{request}.tmp"
    tmp.write_text(json.dumps(body))
    os.replace(tmp, folder / f"{request}.json")
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


# ----------------------------------------------------------------------------- Python API


class LocalCluster:
    """A head and `workers` worker nodes on this machine (loopback, token auth), usable as a
    context manager; the nodes live in a detached supervisor, so they survive this object
    unless `stop()` (or leaving the `with` block) ends them.

    Attributes once started: `address` (GCS, 'host:port', what `--address` takes),
    `dashboard_url` ('http://127.0.0.1:P'), `token` (where the token is), `session_dir`,
    `state` (the whole recorded state)."""

    def __init__(
        self,
        workers: int = 2,
        *,
        cpus_per_node: int = 1,
        head_cpus: int | None = None,
        object_store_mb: int = 200,
        state_dir: str | Path | None = None,
        timeout: float = 180.0,
    ) -> None:
        self.workers = workers
        self.cpus_per_node = cpus_per_node
        self.head_cpus = head_cpus
        self.object_store_mb = object_store_mb
        self.state_dir = state_dir_of(state_dir)
        self.timeout = timeout
        self.state: dict[str, Any] | None = None

    @classmethod
    def attach(cls, state_dir: str | Path | None = None) -> LocalCluster:
        """The cluster that `python cluster/local.py up` started from `state_dir`."""
        state = read_state(state_dir)
        if state is None or state.get("status") != "running":
            raise ClusterError(f"no running cluster recorded in {state_dir_of(state_dir)}")
        c = cls(len(state["nodes"]) - 1, state_dir=state_dir)
        c.state = state
        return c

    def start(self) -> LocalCluster:
        self.state = start_cluster(
            self.workers,
            cpus_per_node=self.cpus_per_node,
            head_cpus=self.head_cpus,
            object_store_mb=self.object_store_mb,
            state_dir=self.state_dir,
            timeout=self.timeout,
        )
        return self

    def add_worker(self, cpus: int | None = None, gpus: int = 0, timeout: float = 120.0) -> str:
        """Add a worker node (as the autoscaler would); returns its role ('worker-N')."""
        node = add_worker(self.state_dir, cpus=cpus, gpus=gpus, timeout=timeout)
        self.state = read_state(self.state_dir)
        return node["name"]

    def stop(self) -> list[int]:
        """Stop every process of the cluster; returns their PIDs."""
        pids = stop_cluster(self.state_dir)
        self.state = None
        return pids

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _state(self) -> dict[str, Any]:
        if self.state is None:
            raise ClusterError("the local cluster is not running")
        return self.state

    @property
    def address(self) -> str:
        return self._state()["address"]

    @property
    def dashboard_url(self) -> str:
        return self._state()["dashboard_url"]

    @property
    def token(self) -> str:
        return self._state()["token"]

    @property
    def session_dir(self) -> str:
        return self._state()["session_dir"]

    def env(self) -> dict[str, str]:
        """Environment for a client subprocess: `{**os.environ, **cluster.env()}`."""
        return client_env(self._state())

    def headers(self) -> dict[str, str]:
        """{'Authorization': 'Bearer <token>'} for the dashboard / JobSubmissionClient."""
        return auth_headers(self._state())

    def nodes(self) -> list[dict[str, Any]]:
        """Every node the GCS knows: node_id, state ('ALIVE'/'DEAD'), is_head_node, role,
        resources_total, ..."""
        return query_nodes(self._state())

    def node_ids(self) -> dict[str, str]:
        """role ('head', 'worker-1', ...) -> node id (hex), as recorded at start."""
        return {n["name"]: n["node_id"] for n in self._state()["nodes"]}

    def wait_for_nodes(self, alive: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until exactly `alive` nodes are ALIVE (e.g. after `kill_worker`, whose node
        the GCS marks DEAD within ~15 s); returns the node list."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.nodes()
            if sum(n["state"] == "ALIVE" for n in nodes) == alive:
                return nodes
            if time.monotonic() > deadline:
                raise ClusterError(f"expected {alive} alive nodes, have {nodes}")
            time.sleep(0.5)

    def kill_worker(self, i: int = 0) -> list[int]:
        """SIGKILL worker node `i` (0-based): its raylet and everything under it (agents,
        trial workers), as if the machine died. Returns the PIDs killed."""
        workers = [n for n in self._state()["nodes"] if n["name"] != "head"]
        if not 0 <= i < len(workers):
            raise ClusterError(f"no worker {i}: the cluster has {len(workers)} workers")
        roots = [p for p in (alive_process(r) for r in workers[i]["pids"]) if p is not None]
        procs = with_children(roots)
        for p in procs.values():
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(list(procs.values()), timeout=10)
        return sorted(procs)

    def pids(self) -> set[int]:
        """PIDs of every live process of the cluster right now."""
        return set(cluster_processes(self._state()))

    def listeners(self) -> list[tuple[int, str, str, int]]:
        """(pid, name, ip, port) of every socket the cluster's processes listen on."""
        return listening_sockets(cluster_processes(self._state()))


# ----------------------------------------------------------------------------- CLI


def _print_up(state: dict[str, Any], sdir: Path) -> None:
    n = len(state["nodes"]) - 1
    env = " ".join(f"{k}={v}" for k, v in client_env(state).items())
    flag = "" if sdir == state_dir_of(None) else f" --state-dir {sdir}"
    print(
        f"Ray cluster up: a head and {n} worker node(s) on {LOOPBACK}, token authentication on\n"
        f"  address:   {state['address']}\n"
        f"  dashboard: {state['dashboard_url']}  (it asks for the token; tunnel it with"
        f" `ssh -L PORT:{state['dashboard_url'][7:]} HOST` from elsewhere)\n"
        f"  token:     {state['token']}  (HTTP clients send 'Authorization: Bearer <token>')\n"
        f"  logs:      {state['session_dir']}/logs\n"
        f"  state:     {sdir / STATE_FILE}\n"
        f"Clients join with:\n"
        f"  export {env}\n"
        f"  python search/run.py --dataset mosei --synthetic --address auto --out runs/search\n"
        f"Add a worker node (as an autoscaler would): python cluster/local.py add-worker{flag}\n"
        f"Stop it with: python cluster/local.py down{flag}"
    )


def _print_status(state: dict[str, Any]) -> int:
    sup = alive_process(state["supervisor"])
    print(
        f"cluster {state.get('address', '?')}  status {state['status']}  supervisor pid "
        f"{state['supervisor']['pid']} ({'alive' if sup else 'gone'})\n"
        f"dashboard {state.get('dashboard_url', '?')}  token {state.get('token', '?')}"
    )
    if state["status"] != "running":
        return 1
    try:
        nodes = query_nodes(state)
    except ClusterError as exc:
        print(f"nodes: unknown ({exc})")
        return 1
    print(f"{'NODE':<10} {'STATE':<6} {'CPU':>5} {'GPU':>4}  NODE_ID")
    for n in nodes:
        res = n.get("resources_total") or {}
        print(
            f"{n['role']:<10} {n['state']:<6} {res.get('CPU', 0):>5g} {res.get('GPU', 0):>4g}"
            f"  {n['node_id']}"
        )
    alive = sum(n["state"] == "ALIVE" for n in nodes)
    print(f"{alive}/{len(nodes)} nodes alive")
    return 0 if alive == len(state["nodes"]) else 1


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python cluster/local.py",
        description="A head and N worker Ray nodes on this machine, on loopback only, with "
        "token authentication on. The nodes run in a detached supervisor process.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        default=None,
        help="where the cluster's state and supervisor log live (default ~/.atsuko-cluster); "
        "one cluster per state dir",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    kw = {"parents": [common]}
    up = sub.add_parser("up", help="start a head and N workers, print how to reach them", **kw)
    up.add_argument("--workers", type=int, default=2, help="worker nodes besides the head")
    up.add_argument("--cpus-per-node", type=int, default=1, help="logical CPUs per node")
    up.add_argument(
        "--head-cpus",
        type=int,
        default=None,
        help="head CPUs (default: same); 0 with --workers 0 is an autoscaling cluster's start",
    )
    up.add_argument("--object-store-mb", type=int, default=200, help="object store per node")
    up.add_argument("--port", type=int, default=0, help="GCS port (default: a free one)")
    up.add_argument("--dashboard-port", type=int, default=0, help="default: a free one")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the nodes")
    add = sub.add_parser(
        "add-worker",
        help="add one worker node to the running cluster (what an autoscaler does)",
        **kw,
    )
    add.add_argument("--cpus", type=int, default=None, help="its CPUs (default --cpus-per-node)")
    add.add_argument("--gpus", type=int, default=0, help="GPUs it advertises (default 0)")
    add.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for it")
    sub.add_parser(
        "status",
        help="list the nodes (alive or dead) as the head sees them; exit 1 if one is dead",
        **kw,
    )
    sub.add_parser("env", help="print `export ...` lines for a client shell", **kw)
    down = sub.add_parser("down", help="stop exactly the processes `up` started", **kw)
    down.add_argument("--grace", type=float, default=30.0, help="seconds before SIGKILL")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sdir = state_dir_of(args.state_dir)

    if args.command == "up":
        state = start_cluster(
            args.workers,
            cpus_per_node=args.cpus_per_node,
            head_cpus=args.head_cpus,
            object_store_mb=args.object_store_mb,
            port=args.port,
            dashboard_port=args.dashboard_port,
            state_dir=sdir,
            timeout=args.timeout,
        )
        _print_up(state, sdir)
        return 0
    if args.command == "add-worker":
        node = add_worker(sdir, cpus=args.cpus, gpus=args.gpus, timeout=args.timeout)
        print(
            f"added {node['name']} ({node['cpus']:g} CPU, {node.get('gpus', 0):g} GPU) "
            f"node id {node['node_id']}"
        )
        return 0
    state = read_state(sdir)
    if args.command == "down":
        pids = stop_cluster(sdir, grace=args.grace)
        print(f"stopped {len(pids)} processes" if pids else f"no cluster recorded in {sdir}")
        return 0
    if state is None:
        raise ClusterError(f"no cluster recorded in {sdir}; start one with `up`")
    if args.command == "env":
        for k, v in client_env(state).items():
            print(f"export {k}={v}")
        return 0
    return _print_status(state)


if __name__ == "__main__":
    run_cli(main)
