"""GPU figures of `search.bench`: trials per hour on one GPU with 1, 2, 4 and 8 trials packed.

MOSI aligned (synthetic, full size), the same one-value configuration in every trial, two
waves of trials at each packing (`--gpus-per-trial 1/n`, `--concurrency n`, the node's CPUs
shared evenly). While each search runs, `nvidia-smi` is sampled for the GPU's utilisation and
memory. Runs only where torch sees a CUDA device; elsewhere the figures are "not measured".
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
from typing import Any

from search.bench.measures import read_rows, trial_window
from search.bench.runner import FIXED, Plan, Runner, say, settings_doc, write_space

PACKINGS = (1, 2, 4, 8)
QUERY = "utilization.gpu,memory.used,memory.total"


def cuda_device() -> str | None:
    """The name of CUDA device 0 as torch sees it (None: no usable GPU here)."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def parse_smi(text: str) -> tuple[float, float, float] | None:
    """(utilisation %, memory used MiB, memory total MiB) of the first GPU in `nvidia-smi
    --query-gpu=utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`."""
    for line in text.strip().splitlines():
        try:
            util, used, total = (float(x) for x in line.split(","))
        except ValueError:
            return None  # "[N/A]" or an error message
        return util, used, total
    return None


class GpuSampler:
    """Samples the first GPU through `nvidia-smi` every `every_s` seconds in a thread."""

    def __init__(self, every_s: float = 0.5):
        self.every_s = every_s
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        cmd = ["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits", "-i", "0"]
        while not self._stop.is_set():
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
                sample = parse_smi(done.stdout)
            except (OSError, subprocess.SubprocessError):
                sample = None
            if sample is not None:
                self.samples.append(sample)
            self._stop.wait(self.every_s)

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)

    def summary(self) -> dict[str, float]:
        """Mean and peak utilisation (%), peak memory used (MiB); NaN without samples."""
        if not self.samples:
            return {"util_mean": math.nan, "util_max": math.nan, "memory_max_mib": math.nan}
        utils = [s[0] for s in self.samples]
        return {
            "util_mean": sum(utils) / len(utils),
            "util_max": max(utils),
            "memory_max_mib": max(s[1] for s in self.samples),
        }


def packing_settings(n: int, cpus: int) -> dict[str, Any]:
    """Resources of n trials packed on one GPU: a 1/n share each and the CPUs split evenly."""
    return {
        "concurrency": n,
        "gpus_per_trial": 1.0 / n,
        "cpus_per_trial": max(1, cpus // n) if cpus >= n else cpus / n,
    }


def gpu_section(plan: Plan, runner: Runner) -> dict[str, Any]:
    """Trials per hour and GPU utilisation at each packing (nothing measured without a GPU)."""
    name = cuda_device()
    if name is None:
        say("gpu: no CUDA device here; the GPU figures are not measured")
        return {"gpu_trials_per_hour": None, "gpu_device": None}
    work = runner.work
    space = write_space(work / "space-fixed.yaml", FIXED)
    runner.synth("mosi", 1.0)
    cpus = os.cpu_count() or 1
    per_hour, util, memory = {}, {}, {}
    for n in PACKINGS:
        tag = f"gpu-{n}"
        say(f"gpu: {n} trial(s) packed on one GPU ({name})")
        doc = settings_doc(
            work / tag,
            dataset="mosi",
            scale=1.0,
            space=str(space),
            sets=["patience=0"],
            num_samples=2 * n,  # two waves: the second shows the steady state
            max_epochs=plan.gpu_epochs,
            sampler="random",
            scheduler="none",
            **packing_settings(n, cpus),
        )
        with GpuSampler() as sampler:
            runner.run(tag, {"kind": "search", "settings": doc})
        window = trial_window(read_rows(work / tag / "trials.csv"), n)
        per_hour[n] = 60.0 * window.per_minute
        stats = sampler.summary()
        util[n], memory[n] = stats["util_mean"], stats["memory_max_mib"]
    best = max(per_hour, key=lambda n: per_hour[n] if math.isfinite(per_hour[n]) else -1)
    return {
        "gpu_device": name,
        "gpu_epochs_per_trial": plan.gpu_epochs,
        "gpu_trials_per_hour": per_hour,
        "gpu_utilisation_mean": util,
        "gpu_memory_max_mib": memory,
        "gpu_best_packing": best,
        "gpu_packing_speedup": per_hour[best] / per_hour[1] if per_hour[1] else math.nan,
    }
