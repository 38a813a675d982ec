"""Searches on a cluster that cannot hold a trial yet: say so, and say when it can.

An autoscaling cluster (`cluster/aws.yaml`, `gcp.yaml`, the KubeRay manifests) starts with a
head that advertises no CPU and no worker; the autoscaler adds workers for the trials that wait.
So the driver does not refuse such a cluster (`search.study.driver.check_resources`, for
searches and sweeps), and while no trial runs and some wait, `WaitingForResources` (a callback
of every Tuner, `search.runtime.tuner.build_tuner`) prints one line every `every_s` seconds
after `after_s`, and one when the first of them starts. A local Ray (`ray.init` without `--address`)
can never grow: there the driver still refuses trials that no node can hold.
Tested in `tests/search/runtime/test_waiting.py` (the pure parts) and
`tests/search/study/test_autoscaling.py` (a search on a head without CPUs).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback

# a trial PENDING this long, none running: say the search waits (the tests shorten it)
WAIT_AFTER_S = float(os.environ.get("ATSUKO_WAIT_AFTER_S", "20"))
WAIT_EVERY_S = 60.0  # ... and again this often while it lasts
FALLBACK_CONCURRENCY = 4  # default concurrency when no node fits and the ceiling is unknown


def fits(resources: dict[str, float], cpus: float, gpus: float) -> int:
    """How many trials of `cpus` CPUs and `gpus` GPUs `resources` hold at once."""
    n = math.floor(resources.get("CPU", 0) / cpus + 1e-9) if cpus > 0 else 1 << 30
    if gpus > 0:
        n = min(n, math.floor(resources.get("GPU", 0) / gpus + 1e-9))
    return max(0, n)


def node_fits(nodes: list[dict[str, float]], cpus: float, gpus: float) -> bool:
    """Whether one node can hold a trial (its CPUs and GPUs together: one placement)."""
    return any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in nodes)


def autoscaler_ceiling() -> dict[str, float] | None:
    """The most resources the cluster's autoscaler may add up to (its node groups' max counts),
    or None where no autoscaler published its configuration (Ray's private state API: absent on
    another Ray version, which then reads as unknown)."""
    try:
        from ray._private.state import state

        ceiling = state.get_max_resources_from_cluster_config()
    except Exception:  # noqa: BLE001 - private API; unknown is a valid answer
        return None
    return {k: float(v) for k, v in ceiling.items()} if ceiling else None


class WaitingForResources(Callback):
    """Prints when no trial runs and some wait for resources (an autoscaler or a new worker
    must add a node), and when they get them."""

    def __init__(
        self,
        cpus: float,
        gpus: float,
        after_s: float = WAIT_AFTER_S,
        every_s: float = WAIT_EVERY_S,
        say: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cpus, self.gpus = cpus, gpus
        self.after_s, self.every_s = after_s, every_s
        self.say, self.clock = say, clock
        self.since: float | None = None  # when the cluster was first seen with none running
        self.said: float | None = None  # when the last "waiting" line was printed

    def __getstate__(self) -> dict[str, Any]:  # pickled with the Tuner (for --resume)
        return {**self.__dict__, "say": print, "clock": time.monotonic, "since": None}

    def check(self, statuses: list[str]) -> str | None:
        """The line to print now for trials in these states, if any."""
        now = self.clock()
        running = sum(s == "RUNNING" for s in statuses)
        pending = sum(s == "PENDING" for s in statuses)
        if running or not pending:
            waited, self.since = self.since, None
            if running and self.said is not None and waited is not None:
                self.said = None
                return f"Resources arrived: a trial started after {now - waited:.0f} s of waiting."
            return None
        if self.since is None:
            self.since = now
        waited = now - self.since
        if waited < self.after_s or (self.said is not None and now - self.said < self.every_s):
            return None
        self.said = now
        return (
            f"Waiting for resources: {pending} trial(s) PENDING for {waited:.0f} s, none running; "
            f"each needs {self.cpus:g} CPU and {self.gpus:g} GPU on one node. The cluster's "
            "autoscaler (or a worker joining, e.g. `python cluster/local.py add-worker`) must "
            "add a node that can hold one."
        )

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        line = self.check([str(t.status) for t in trials])
        if line:
            self.say(line)
