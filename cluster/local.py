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
processes and nothing else; `status` asks the head's dashboard which nodes are alive. Those
steps are `cluster.control`'s; this module is the CLI and `LocalCluster`.
`add-worker` asks the supervisor (a request file in `STATE_DIR/requests`, then SIGUSR1) for one
more worker node, recorded like the others: the local stand-in for an autoscaler.

From Python (tests, notebooks):

    with LocalCluster(workers=2, state_dir=tmp) as c:
        subprocess.run([...], env={**os.environ, **c.env()})   # clients join with c.address
        c.kill_worker(0)                                        # a node crash, mid-run
        c.add_worker()                                          # a node joins, mid-run

Tested in `tests/cluster/test_local_cluster.py` and `test_add_worker.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Any

import psutil

from atsuko.cli import ArgumentParser, run_cli
from cluster.control import (
    add_worker,
    auth_headers,
    client_env,
    query_nodes,
    start_cluster,
    stop_cluster,
)
from cluster.state import (
    LOOPBACK,
    STATE_FILE,
    ClusterError,
    alive_process,
    cluster_processes,
    is_loopback,
    listening_sockets,
    read_state,
    state_dir_of,
    with_children,
)
from search.runtime.session import token_location

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
