"""The detached process that owns a local cluster's Ray nodes (`python cluster/local.py up`
starts it in its own session and process group; do not run it by hand).

It creates the head and the workers in-process with `ray.cluster_utils.Cluster`, every node
on 127.0.0.1 with its own free ports, records them in STATE_DIR/state.json, then waits for
SIGTERM or SIGINT, on which it removes the nodes and exits. Meanwhile it serves `add-worker`:
each request file in STATE_DIR/requests (SIGUSR1 wakes it; it also looks every second) becomes
one more worker node, recorded in the state, with the answer under `requests` there. The node
processes are its children and die with it (Ray's fate sharing), so nothing outlives it.
Tested in `tests/cluster/test_local_cluster.py` and `test_add_worker.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from cluster.state import LOOPBACK, REQUESTS_DIR, proc_record, write_state
from search.runtime.session import free_port

MB = 1024 * 1024


def _node_record(node: Any, index: int, name: str, cpus: float) -> dict[str, Any]:
    pids = [
        proc_record(info.process.pid, kind)
        for kind, infos in node.all_processes.items()
        for info in infos
        if info.process is not None and info.process.poll() is None
    ]
    return {"index": index, "name": name, "node_id": node.node_id, "cpus": cpus, "pids": pids}


def _shutdown(cluster: Any) -> None:
    """Remove the workers, then the head; a node already dead (killed) is skipped."""
    if cluster is None:
        return
    for node in list(cluster.worker_nodes) + [cluster.head_node]:
        if node is None:
            continue
        try:
            cluster.remove_node(node, allow_graceful=True)
        except Exception:  # noqa: BLE001 - a killed node may fail its own checks; go on
            traceback.print_exc()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m cluster.supervisor")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--cpus-per-node", type=int, required=True)
    p.add_argument("--head-cpus", type=int, required=True)
    p.add_argument("--object-store-mb", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dashboard-port", type=int, required=True)
    p.add_argument("--token", required=True, help="where the token is (recorded only)")
    return p.parse_args(argv)


def _start_nodes(args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]]]:
    """The head and the first workers, all registered with the GCS."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        shutdown_at_exit=True,
        head_node_args={
            "num_cpus": args.head_cpus,
            "object_store_memory": args.object_store_mb * MB,
            "node_ip_address": LOOPBACK,
            "node_name": "head",
            "gcs_server_port": args.port,
            "include_dashboard": True,
            "dashboard_host": LOOPBACK,
            "dashboard_port": args.dashboard_port,
            # Ray's fixed default (52365) would collide with another Ray on this machine.
            "dashboard_agent_listen_port": free_port(),
        },
    )
    nodes = [_node_record(cluster.head_node, 0, "head", args.head_cpus)]
    try:
        for i in range(1, args.workers + 1):
            node = cluster.add_node(
                wait=False,  # all of them registered at once below, with a longer timeout
                num_cpus=args.cpus_per_node,
                object_store_memory=args.object_store_mb * MB,
                node_ip_address=LOOPBACK,
                node_name=f"worker-{i}",
            )
            nodes.append(_node_record(node, i, f"worker-{i}", args.cpus_per_node))
        cluster.wait_for_nodes(timeout=120)  # 2 busy cores can take a while
    except BaseException:
        _shutdown(cluster)
        raise
    return cluster, nodes


def _add_requested(cluster: Any, sdir: Path, state: dict[str, Any], store_mb: int) -> None:
    """Serve `add-worker`: one worker node per request file, answered in the state."""
    answers = state.setdefault("requests", {})
    for path in sorted((sdir / REQUESTS_DIR).glob("*.json")):
        try:
            request = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # still being written (it is renamed into place) or garbage: skip
        path.unlink(missing_ok=True)
        index = len(state["nodes"])
        name = f"worker-{index}"
        try:
            node = cluster.add_node(
                wait=True,
                num_cpus=request["cpus"],
                num_gpus=request.get("gpus", 0),
                object_store_memory=store_mb * MB,
                node_ip_address=LOOPBACK,
                node_name=name,
            )
        except Exception as exc:  # noqa: BLE001 - answered to `add-worker`, which reports it
            traceback.print_exc()
            answers[request["id"]] = {"error": f"{type(exc).__name__}: {exc}"}
        else:
            record = _node_record(node, index, name, request["cpus"])
            state["nodes"].append({**record, "gpus": request.get("gpus", 0)})
            answers[request["id"]] = {"node": name}
            print(f"added {name} ({request['cpus']} CPU)", flush=True)
        write_state(sdir, state)


def _signals() -> tuple[threading.Event, threading.Event]:
    """(stop, wake): SIGTERM and SIGINT set `stop`, SIGUSR1 (`add-worker`) sets `wake`."""
    stop = threading.Event()
    wake = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the terminal of `up` may close
    signal.signal(signal.SIGUSR1, lambda *_: wake.set())  # `add-worker` wrote a request
    return stop, wake


def _initial_state(args: argparse.Namespace, sdir: Path) -> dict[str, Any]:
    """The state recorded before any node starts (status "starting")."""
    return {
        "version": 1,
        "status": "starting",
        "error": None,
        "supervisor": proc_record(os.getpid(), "supervisor"),
        "pgid": os.getpgid(0),
        "token": args.token,
        "ray_tmpdir": os.environ.get("RAY_TMPDIR"),
        "log": str(sdir / "supervisor.log"),
        "cpus_per_node": args.cpus_per_node,
        "nodes": [],
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _serve(
    cluster: Any,
    sdir: Path,
    state: dict[str, Any],
    object_store_mb: int,
    stop: threading.Event,
    wake: threading.Event,
) -> None:
    """Until `down`: add the workers that `add-worker` requests; then stop every node."""
    while not stop.is_set():
        wake.wait(1.0)
        wake.clear()
        if not stop.is_set():
            _add_requested(cluster, sdir, state, object_store_mb)
            signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a new Node took it again
    print("stopping the nodes", flush=True)
    _shutdown(cluster)
    state["status"] = "stopped"
    write_state(sdir, state)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    sdir = Path(args.state_dir)
    stop, wake = _signals()
    state = _initial_state(args, sdir)
    write_state(sdir, state)
    t0 = time.monotonic()
    try:
        cluster, nodes = _start_nodes(args)
    except Exception as exc:  # noqa: BLE001 - recorded for `up`, which reports it
        traceback.print_exc()
        state.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        write_state(sdir, state)
        return 1
    # Each Ray Node installed its own SIGTERM handler (drain, then exit); take it back so that
    # `down` removes every node in order.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    state.update(
        status="running",
        address=cluster.address,
        dashboard_url="http://" + cluster.webui_url,
        session_dir=cluster.head_node.get_session_dir_path(),
        nodes=nodes,
        startup_seconds=round(time.monotonic() - t0, 1),
    )
    write_state(sdir, state)
    print(f"cluster up at {cluster.address} in {state['startup_seconds']} s", flush=True)
    _serve(cluster, sdir, state, args.object_store_mb, stop, wake)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
