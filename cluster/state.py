"""What a local cluster records and how its processes are found: the state file
(STATE_DIR/state.json), the token (its location: `search.runtime.session.token_location`),
process records that survive PID reuse, listening sockets.
Shared by `cluster.control` (up, add-worker, down, status), `cluster.local` (the CLI and
`LocalCluster`) and `cluster.supervisor`. Tested in `tests/cluster/test_state.py`."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
from pathlib import Path
from typing import Any

import psutil

from atsuko.errors import AtsukoError
from search.runtime.session import TOKEN_VARIABLE

LOOPBACK = "127.0.0.1"
STATE_FILE = "state.json"
REQUESTS_DIR = "requests"  # add-worker's request files to the supervisor
DEFAULT_STATE_DIR = Path("~/.atsuko-cluster")
# Every process of the cluster and every client sets these:
# without the first, Ray rewrites 127.0.0.1 to the machine's external address, listens on all
# interfaces and a client waits forever for a GCS at that address; the second turns token
# authentication on for the nodes and makes clients send the token.
CLIENT_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}


class ClusterError(AtsukoError):
    """The local cluster cannot be started, reached or stopped; the message says why."""


# ----------------------------------------------------------------------------- token


def read_token(location: str) -> str:
    """The token itself, from what `search.runtime.session.token_location` returned."""
    if location == TOKEN_VARIABLE:
        return os.environ["RAY_AUTH_TOKEN"].strip()
    return Path(location).read_text().strip()


# ----------------------------------------------------------------------------- state


def state_dir_of(state_dir: str | Path | None) -> Path:
    """The state directory as an absolute path (default ~/.atsuko-cluster)."""
    return Path(state_dir or DEFAULT_STATE_DIR).expanduser().resolve()


def read_state(state_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The recorded state of the cluster in `state_dir`, or None when there is none."""
    path = state_dir_of(state_dir) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise ClusterError(f"{path}: unreadable cluster state ({exc})") from None


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as JSON atomically: a reader polling `path` never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Write the state atomically (the supervisor writes, the CLI reads)."""
    write_json(state_dir / STATE_FILE, state)


def proc_record(pid: int, name: str | None = None) -> dict[str, Any]:
    """A process as the state records it: pid, start time (guards against PID reuse), name."""
    p = psutil.Process(pid)
    return {"pid": pid, "create_time": p.create_time(), "name": name or p.name()}


def alive_process(record: dict[str, Any]) -> psutil.Process | None:
    """The recorded process if it still runs (same PID *and* same start time), else None."""
    try:
        p = psutil.Process(record["pid"])
        if abs(p.create_time() - record["create_time"]) > 0.5 or p.status() == "zombie":
            return None
        return p
    except psutil.Error:
        return None


def with_children(procs: list[psutil.Process]) -> dict[int, psutil.Process]:
    found: dict[int, psutil.Process] = {}
    for p in procs:
        found[p.pid] = p
        with contextlib.suppress(psutil.Error):
            for c in p.children(recursive=True):
                found[c.pid] = c
    return found


def cluster_processes(state: dict[str, Any]) -> dict[int, psutil.Process]:
    """Every live process of the cluster: the supervisor, each recorded node process, their
    descendants, and the members of the supervisor's process group (all of them ours: the
    group exists only while one of its members, all started by the supervisor, lives)."""
    roots = [alive_process(state["supervisor"])]
    for node in state.get("nodes", []):
        roots += [alive_process(r) for r in node["pids"]]
    live = [p for p in roots if p is not None]
    found = with_children(live)
    pgid = state.get("pgid")
    if pgid and live:
        for p in psutil.process_iter():
            with contextlib.suppress(OSError, psutil.Error):
                if p.pid not in found and os.getpgid(p.pid) == pgid:
                    found[p.pid] = p
    return {pid: p for pid, p in found.items() if _running(p)}


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != "zombie"
    except psutil.Error:
        return False


def listening_sockets(procs: dict[int, psutil.Process]) -> list[tuple[int, str, str, int]]:
    """(pid, name, ip, port) of every TCP/UDP socket the given processes listen on."""
    out = []
    for pid, p in procs.items():
        with contextlib.suppress(psutil.Error):
            name = p.name()
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and c.laddr):
                    out.append((pid, name, c.laddr.ip, c.laddr.port))
    return out


def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8, ::1 and their IPv4-mapped IPv6 forms (::ffff:127.0.0.1)."""
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback
