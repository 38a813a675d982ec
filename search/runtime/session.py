"""Start a local Ray on loopback (or join a cluster) and say where to watch it.

A local Ray started here listens on 127.0.0.1 only (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` keeps
Ray from rewriting loopback to the machine's address), never attaches to another Ray instance
on the machine (`address="local"`), and exports metrics on a loopback port. `--dashboard-host`
exposes the dashboard elsewhere, with a warning: the dashboard and its Jobs API run code for
anyone who can reach them. Only this process's own Ray is shut down, through its handle.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atsuko.errors import ConfigError

LOOPBACK = "127.0.0.1"
DEFAULT_DASHBOARD_PORT = 8265


def ray_env() -> None:
    """Set before Ray starts: loopback only, no usage reports, frequent experiment snapshots."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")  # experiment state for --resume
    # snapshots follow checkpoints closely on purpose (num_to_keep=2): no warning about it
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic table: chosen columns only
    # the dataset's tensors come back from the object store as read-only views, not copies:
    # one copy per node instead of one per trial (`python -m search.bench --only memory`
    # measures it; README, "Benchmarks of the search"); training only reads them (batches
    # are gathered with index_select)
    os.environ.setdefault("RAY_ENABLE_ZERO_COPY_TORCH_TENSORS", "1")
    # ... so torch's "NumPy array is not writable" warning, once per worker, is expected: quiet
    # it in the workers a local Ray starts (they inherit this environment)
    quiet = "ignore:The given NumPy array is not writable:UserWarning"
    current = os.environ.get("PYTHONWARNINGS", "")
    if quiet not in current:
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [current, quiet]))


def quiet_zero_copy_warning() -> None:
    """The driver's "zero-copy only works safely for read-only tensors" warning, expected: the
    dataset is only read (after Ray registers its own filter for it, which this one overrides)."""
    try:
        from ray._private.tensor_serialization_utils import ZeroCopyTensorsWarning
    except ImportError:  # another Ray version: its warning, if any, stays
        return
    warnings.filterwarnings("ignore", category=ZeroCopyTensorsWarning)


def free_port(preferred: int | None = None, host: str = LOOPBACK) -> int:
    """`preferred` if it can be bound on `host`, else a free port the system picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port")


def dashboard_warning(host: str) -> str | None:
    """What exposing the dashboard beyond loopback allows (None for loopback)."""
    if host in (LOOPBACK, "localhost", "::1"):
        return None
    who = (
        f"anyone who can reach that address and holds the access token ({token_location()})"
        if token_auth()
        else f"anyone who can reach that address (no token: {auth_off()})"
    )
    return (
        f"warning: --dashboard-host {host} exposes the Ray dashboard and its Jobs API beyond "
        f"this machine: {who} can run code here. Prefer an SSH tunnel to 127.0.0.1."
    )


def token_auth() -> bool:
    """Whether Ray asks for its access token: unless $RAY_AUTH_MODE says otherwise (Ray's own
    rule; `start` sets it to token when joining a cluster with a token at hand)."""
    mode = os.environ.get("RAY_AUTH_MODE")
    return mode is None or mode.lower() == "token"


def auth_off() -> str:
    return f"RAY_AUTH_MODE={os.environ.get('RAY_AUTH_MODE')} turns token authentication off"


def dashboard_access() -> str:
    """What the console says about reaching the dashboard: where its token is, or that none
    is asked for."""
    if token_auth():
        return f"access token: {token_location()}"
    return f"no access token: {auth_off()}"


DASHBOARD_FLAGS = ("dashboard_host", "dashboard_port", "metrics_port")


def unused_dashboard_flags(settings: Any) -> str | None:
    """The line naming dashboard flags given with --address: a joined cluster runs its own
    dashboard and metrics (they only apply to a Ray started here)."""
    given = [
        f"--{k.replace('_', '-')} {getattr(settings, k)}"
        for k in DASHBOARD_FLAGS
        if getattr(settings, k) not in (None, LOOPBACK)
    ]
    if not settings.address or not given:
        return None
    return (
        f"note: {', '.join(given)} not used: the cluster at --address {settings.address} "
        "runs its own dashboard and metrics (these flags set those of a local Ray)"
    )


TOKEN_VARIABLE = "$RAY_AUTH_TOKEN"  # what `token_location` says when the variable holds it


def token_location(create: bool = False) -> str:
    """Where Ray reads its access token, in Ray's own order (Ray 2.60 turns token
    authentication on by default): `TOKEN_VARIABLE` for $RAY_AUTH_TOKEN, the file
    $RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token. With `create` (a cluster about to start), a
    missing ~/.ray/auth_token is written with a new random token, readable by its owner only,
    and a RAY_AUTH_TOKEN_PATH that names no file is an error."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return TOKEN_VARIABLE
    custom = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(custom or Path.home() / ".ray" / "auth_token").expanduser()
    if create and not path.is_file():
        if custom:
            raise ConfigError(f"RAY_AUTH_TOKEN_PATH={custom} does not name a file")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    return str(path)


def _token_available() -> bool:
    where = token_location()
    return where == TOKEN_VARIABLE or Path(where).is_file()


@dataclass
class RaySession:
    started_local: bool
    dashboard_url: str | None
    metrics_port: int | None
    gcs_address: str
    node_ip: str

    def shutdown(self) -> None:
        """Stop this driver's Ray (its own local instance, or its connection to a cluster)."""
        import ray

        if ray.is_initialized():
            ray.shutdown()


def start(
    address: str | None,
    *,
    dashboard_host: str = LOOPBACK,
    dashboard_port: int | None = None,
    metrics_port: int | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
) -> RaySession:
    """Start a local Ray on loopback, or join the cluster at `address`."""
    ray_env()
    if address and "RAY_AUTH_MODE" not in os.environ and _token_available():
        # Ray 2.60 clients send the token only in token mode (set before Ray reads its config)
        os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    quiet_zero_copy_warning()
    if address:
        try:
            ctx = ray.init(address=address, logging_level="WARNING", log_to_driver=True)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"--address {address}: could not join the Ray cluster ({exc}); a cluster with "
                "token authentication also needs RAY_AUTH_MODE=token and its token"
            ) from None
        info = ctx.address_info
        port = info.get("metrics_export_port")
        return RaySession(
            False, _url(ctx.dashboard_url), port, info["gcs_address"], info["node_ip_address"]
        )
    warning = dashboard_warning(dashboard_host)
    if warning:
        print(warning, file=sys.stderr)
    metrics_port = metrics_port or free_port()
    dash_port = free_port(
        dashboard_port or DEFAULT_DASHBOARD_PORT,
        dashboard_host if dashboard_host != "localhost" else LOOPBACK,
    )
    ctx = ray.init(
        address="local",
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=True,
        dashboard_host=dashboard_host,
        dashboard_port=dash_port,
        _metrics_export_port=metrics_port,
        logging_level="WARNING",
        log_to_driver=True,
    )
    info = ctx.address_info
    return RaySession(
        True, _url(ctx.dashboard_url), metrics_port, info["gcs_address"], info["node_ip_address"]
    )


def _url(dashboard: str | None) -> str | None:
    if not dashboard:
        return None
    return dashboard if dashboard.startswith("http") else f"http://{dashboard}"


def start_for(settings: Any) -> RaySession:
    """`start` with the flags of a search or a sweep (`search.settings.Settings`): the address
    of a cluster to join, the dashboard's host and port, the metrics port."""
    note = unused_dashboard_flags(settings)
    if note:
        print(note, flush=True)
    return start(
        settings.address,
        dashboard_host=settings.dashboard_host,
        dashboard_port=settings.dashboard_port,
        metrics_port=settings.metrics_port,
    )
