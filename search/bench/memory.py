"""Memory of a process tree, sampled in a background thread (for `search.bench`).

The whole local Ray node that a search starts is the driver process and its descendants (GCS,
raylet with the object store, dashboard, agents, trial workers). Their memory is summed as PSS
(proportional set size, from `/proc/PID/smaps_rollup` through psutil): a page shared by k
processes counts 1/k in each, so the object store's shared memory and shared libraries count
once in the sum, while a private copy of the dataset in a trial counts in full.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

TRIAL_PREFIX = "ray::AtsukoTrial"  # process title of a trial actor (Ray sets `ray::<class>`)


def role(proc: psutil.Process, root: int) -> str:
    """driver, trial (a trial actor), worker (other Ray workers), agent, or a service's name
    (raylet, gcs_server, dashboard, monitor, log_monitor)."""
    if proc.pid == root:
        return "driver"
    try:
        args = proc.cmdline()
        name = proc.name()
    except psutil.Error:
        return "gone"
    title = args[0] if args else name
    if title.startswith(TRIAL_PREFIX):
        return "trial"
    if title.startswith("ray::"):
        return "agent" if "Agent" in title else "worker"
    if title.startswith("ray-dashboard"):  # the dashboard's head modules, one process each
        return "dashboard"
    scripts = [Path(a).stem for a in args[1:4] if a.endswith(".py")]
    if "default_worker" in scripts:
        return "worker"
    return scripts[0] if scripts else "other"


def pss_uss(proc: psutil.Process) -> tuple[int, int]:
    """(proportional, unique) set size in bytes; zeros if the process is gone or unreadable."""
    try:
        info = proc.memory_full_info()
        return int(info.pss), int(info.uss)
    except (psutil.Error, AttributeError, OSError):
        return 0, 0


def tree(root: int) -> list[psutil.Process]:
    """`root` and all its descendants (empty once `root` has ended)."""
    try:
        top = psutil.Process(root)
        return [top, *top.children(recursive=True)]
    except psutil.Error:
        return []


@dataclass
class Snapshot:
    t: float  # seconds since sampling began
    total: int  # sum of PSS over the tree, bytes
    by_role: dict[str, int]  # role -> summed PSS
    trials: list[int]  # PSS of each trial actor process
    trials_uss: list[int]  # USS of each: its private pages (a private copy of the data shows here)


@dataclass
class TreeSampler:
    """Samples the PSS of `root`'s process tree every `every` seconds until `stop()`."""

    root: int
    every: float = 0.5
    snapshots: list[Snapshot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def sample(self) -> Snapshot:
        by_role: dict[str, int] = {}
        trials: list[tuple[int, int]] = []
        total = 0
        for proc in tree(self.root):
            kind = role(proc, self.root)  # each time: an idle worker may become a trial
            size, unique = pss_uss(proc)
            total += size
            by_role[kind] = by_role.get(kind, 0) + size
            if kind == "trial":
                trials.append((size, unique))
        trials.sort()
        snap = Snapshot(
            time.monotonic() - self._start,
            total,
            by_role,
            [t[0] for t in trials],
            [t[1] for t in trials],
        )
        self.snapshots.append(snap)
        return snap

    def _run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.every)

    def peak(self) -> Snapshot:
        """The snapshot with the largest total (an empty one if nothing was sampled)."""
        if not self.snapshots:
            return Snapshot(0.0, 0, {}, [], [])
        return max(self.snapshots, key=lambda s: s.total)

    def most_trials(self) -> int:
        """The most trial actors seen at once."""
        return max((len(s.trials) for s in self.snapshots), default=0)

    def settled(self) -> int:
        """The node's memory while its trials run: the median total over the later half of
        the snapshots that show the most trials at once (past the put and the loading)."""
        most = self.most_trials()
        shown = [s.total for s in self.snapshots if most and len(s.trials) == most]
        later = shown[len(shown) // 2 :]
        return int(statistics.median(later)) if later else 0

    def steady_trial_private(self) -> int:
        """A trial's private memory (USS) once settled: the median, over the later half of the
        snapshots that show trials, of the largest trial's USS (past the deserialisation peak)."""
        shown = [max(s.trials_uss) for s in self.snapshots if s.trials_uss]
        later = shown[len(shown) // 2 :]
        return int(statistics.median(later)) if later else 0

    def largest_by_role(self, name: str) -> int:
        """The largest summed PSS of one role (e.g. 'driver') over the run."""
        return max((s.by_role.get(name, 0) for s in self.snapshots), default=0)

    def largest_trial(self) -> tuple[int, int]:
        """(largest PSS, largest USS) of one trial actor over the run."""
        pss = max((max(s.trials) for s in self.snapshots if s.trials), default=0)
        uss = max((max(s.trials_uss) for s in self.snapshots if s.trials_uss), default=0)
        return pss, uss
