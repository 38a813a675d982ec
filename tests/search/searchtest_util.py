"""Helpers for the search tests: run the CLI, watch a run's sockets and metrics, read outputs."""

from __future__ import annotations

import csv
import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "search" / "run.py"
TINY_SPACE = Path(__file__).with_name("tiny_space.yaml")
NAN_SPACE = Path(__file__).with_name("nan_space.yaml")
# small and quick: 2% of MOSEI's rows, width 16 (tiny_space), 1 final seed
FAST = ["--dataset", "mosei", "--smoke-test", "--space", str(TINY_SPACE)]


def cli(*args: str) -> list[str]:
    return [sys.executable, str(RUN), *args]


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    e = {**os.environ, **(extra or {})}
    e.pop("RAY_ADDRESS", None)  # never join someone else's Ray by accident
    e["PYTHONUNBUFFERED"] = "1"
    return e


def run(
    *args: str, timeout: float = 300, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli(*args), cwd=REPO, env=env(extra_env), capture_output=True, text=True, timeout=timeout
    )


def start(*args: str, log: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the CLI in the background, output to `log` (read it after it ends)."""
    handle = log.open("w")
    return subprocess.Popen(
        cli(*args),
        cwd=REPO,
        env=env(extra_env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
    )


def is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def listeners(root: int) -> list[tuple[int, str, str, int]]:
    """(pid, name, ip, port) of every listening socket of `root` and its descendants."""
    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return []
    found = []
    for p in procs:
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    found.append((p.pid, p.name(), c.laddr.ip, c.laddr.port))
        except psutil.Error:
            continue
    return found


def metrics_text(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


class Watcher(threading.Thread):
    """Polls a running search: every listening socket of its process tree, and (optionally)
    the metrics endpoint, keeping the last text that had the trial gauges."""

    def __init__(self, pid: int, metrics_port: int | None = None, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.metrics_port, self.every = pid, metrics_port, every
        self.sockets: set[tuple[int, str, str, int]] = set()
        self.metrics = ""
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.sockets.update(listeners(self.pid))
            if self.metrics_port:
                text = metrics_text(self.metrics_port)
                if "ray_atsuko_trial_epoch{" in text:
                    self.metrics = text
            time.sleep(self.every)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def wait_for(predicate: Any, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.3)
    return False


def kill_tree(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal a process we started, then end what it left behind (its own descendants)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    proc.send_signal(sig)
    proc.wait(timeout=60)
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=10)


def last_result(epoch: int, best: float, **extra) -> dict:
    """A trial's last Tune result as the trainable reports it."""
    from search.runtime.records import METRIC

    return {"epoch": epoch, METRIC: best, "best_epoch": 1, "best_valid/MAE": best, **extra}


def sample_records() -> list:
    """Four records: COMPLETE, PRUNED, ERROR and RUNNING (not finished)."""
    from search.runtime.records import STOPPED_EARLY, build

    params = {"num_bands": 2, "band_split": "log", "tau_band": 0.5, "lr": 0.003}
    return [
        build("t1", params, last_result(3, 0.4, done=True), status="TERMINATED"),
        build(
            "t2",
            params,
            last_result(1, 0.9, done=True, **{STOPPED_EARLY: True}),
            status="TERMINATED",
        ),
        build("t3", params, {}, status="ERROR", error="ValueError: x"),
        build("t4", params, last_result(1, 0.8), status="RUNNING"),  # not finished: not mirrored
    ]
