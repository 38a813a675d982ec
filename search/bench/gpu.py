"""GPU figures of `search.bench`: trials per hour on one GPU with 1, 2, 4 and 8 trials packed.

MOSI aligned (synthetic, full size), the same one-value configuration in every trial, two
waves of trials at each packing (`--gpus-per-trial 1/n`, `--concurrency n`, the node's CPUs
shared evenly); then, at the best packing, the same on MOSI unaligned, whose valid lengths
vary from sample to sample (the variable-length case; the aligned runs have one length).

While each search runs, `nvidia-smi` is sampled for every GPU (utilisation, memory) with
timestamps. Each trial reports the GPU Ray assigned to it (`gpu_ids` in its results); the
utilisation and memory figures are read from that GPU only, inside the trials' windows (from
`started` to `finished` in `trials.csv`): Ray's start and teardown, the dataset's loading and
the idle GPUs of the machine are left out. Runs only where torch sees a CUDA device;
elsewhere the figures are "not measured". The pure parts (parsing, GPU selection, windows) are
tested on CPU with recorded `nvidia-smi` output in `tests/search/bench/test_gpu.py`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search import layout
from search.bench.measures import read_rows, trial_window
from search.bench.runner import FIXED, Plan, Runner, say, settings_doc, write_space

PACKINGS = (1, 2, 4, 8)
QUERY = "utilization.gpu,memory.used,memory.total"
QUERY_ALL = "index,uuid,utilization.gpu,memory.used,memory.total"
SAMPLE_EVERY_S = 0.5


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


@dataclass(frozen=True)
class GpuSample:
    t: float  # wall-clock time of the sample (time.time(), as trials.csv's times)
    index: int  # nvidia-smi's index of the GPU
    uuid: str
    util: float  # %
    used: float  # MiB
    total: float  # MiB


def parse_smi_rows(text: str, t: float) -> list[GpuSample]:
    """Every GPU's row of `nvidia-smi --query-gpu=index,uuid,utilization.gpu,memory.used,
    memory.total --format=csv,noheader,nounits`, taken at `t`; rows with "[N/A]" (or that are
    not such rows at all) are left out."""
    found = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            continue
        try:
            index, util, used, total = int(parts[0]), *(float(x) for x in parts[2:])
        except ValueError:
            continue
        found.append(GpuSample(t, index, parts[1], util, used, total))
    return found


def gpu_indices(ray_ids: Iterable[str], samples: list[GpuSample]) -> set[int]:
    """nvidia-smi indices of the GPUs Ray assigned (`ray.get_gpu_ids()` of the trials).

    Ray's GPU ids are the entries of CUDA_VISIBLE_DEVICES where the node started (or 0..n-1
    without it): an index, matched to nvidia-smi's index, or a UUID (`GPU-...`), matched to the
    GPU's UUID. An id that matches no sampled GPU is left out."""
    uuids = {s.uuid: s.index for s in samples}
    indices = {s.index for s in samples}
    found = set()
    for raw in ray_ids:
        gid = str(raw).strip()
        if gid.startswith("GPU-") and gid in uuids:
            found.add(uuids[gid])
        elif gid.isdigit() and int(gid) in indices:
            found.add(int(gid))
    return found


@dataclass(frozen=True)
class TrialSpan:
    start: float
    end: float
    gpus: frozenset[int]  # nvidia-smi indices of the trial's GPUs


def window_stats(samples: list[GpuSample], spans: list[TrialSpan]) -> dict[str, float]:
    """Utilisation (mean, peak; %) and peak memory used (MiB) of the trials' GPUs, from the
    samples taken on a trial's GPU while that trial ran; NaN without such samples."""
    inside = [
        s for s in samples if any(sp.start <= s.t <= sp.end and s.index in sp.gpus for sp in spans)
    ]
    if not inside:
        return {"util_mean": math.nan, "util_max": math.nan, "memory_max_mib": math.nan}
    utils = [s.util for s in inside]
    return {
        "util_mean": sum(utils) / len(utils),
        "util_max": max(utils),
        "memory_max_mib": max(s.used for s in inside),
        "samples": float(len(inside)),
    }


def trial_gpu_ids(tune_dir: str | Path) -> dict[str, list[str]]:
    """Trial folder name -> the GPU ids Ray assigned it (`gpu_ids` in its `result.json`)."""
    found: dict[str, list[str]] = {}
    for log in sorted(Path(tune_dir).glob("*/result.json")):
        for line in log.read_text().splitlines():
            try:
                ids = json.loads(line).get("gpu_ids")
            except (json.JSONDecodeError, AttributeError):
                continue
            if ids:
                found[log.parent.name] = [x for x in str(ids).split(",") if x]
                break
    return found


def trial_spans(out: Path, samples: list[GpuSample], dataset: str = "mosi") -> list[TrialSpan]:
    """Each trial's window (trials.csv) and the GPUs Ray assigned it (its result.json)."""
    ids = trial_gpu_ids(out / layout.TUNE_DIR)
    spans = []
    for row in read_rows(out / layout.TRIALS):
        try:
            start, end = float(row["started"]), float(row["finished"])
        except (KeyError, TypeError, ValueError):
            continue
        gpus = gpu_indices(ids.get(f"{dataset}_{row.get('trial_id')}", []), samples)
        if gpus and math.isfinite(start) and math.isfinite(end):
            spans.append(TrialSpan(start, end, frozenset(gpus)))
    return spans


class GpuSampler:
    """Samples every GPU through `nvidia-smi` every `every_s` seconds in a thread."""

    def __init__(self, every_s: float | None = None):
        self.every_s = SAMPLE_EVERY_S if every_s is None else every_s
        self.samples: list[GpuSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        cmd = ["nvidia-smi", f"--query-gpu={QUERY_ALL}", "--format=csv,noheader,nounits"]
        while not self._stop.is_set():
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
                self.samples += parse_smi_rows(done.stdout, time.time())
            except (OSError, subprocess.SubprocessError):
                pass
            self._stop.wait(self.every_s)

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)


def packing_settings(n: int, cpus: int) -> dict[str, Any]:
    """Resources of n trials packed on one GPU: a 1/n share each and the CPUs split evenly."""
    return {
        "concurrency": n,
        "gpus_per_trial": 1.0 / n,
        "cpus_per_trial": max(1, cpus // n) if cpus >= n else cpus / n,
    }


def _packed_run(
    runner: Runner, plan: Plan, tag: str, n: int, space: Path, sets: list[str]
) -> tuple[float, dict[str, float]]:
    """One search of 2n trials packed n to a GPU: (trials per hour, its GPU's figures)."""
    out = runner.work / tag
    doc = settings_doc(
        out,
        dataset="mosi",
        scale=1.0,
        space=str(space),
        sets=["patience=0", *sets],
        num_samples=2 * n,  # two waves: the second shows the steady state
        max_epochs=plan.gpu_epochs,
        sampler="random",
        scheduler="none",
        **packing_settings(n, os.cpu_count() or 1),
    )
    with GpuSampler() as sampler:
        runner.run(tag, {"kind": "search", "settings": doc})
    window = trial_window(read_rows(out / layout.TRIALS), n)
    stats = window_stats(sampler.samples, trial_spans(out, sampler.samples))
    return 60.0 * window.per_minute, stats


def gpu_section(plan: Plan, runner: Runner) -> dict[str, Any]:
    """Trials per hour and GPU utilisation at each packing (nothing measured without a GPU)."""
    name = cuda_device()
    if name is None:
        say("gpu: no CUDA device here; the GPU figures are not measured")
        return {"gpu_trials_per_hour": None, "gpu_device": None}
    space = write_space(runner.work / "space-fixed.yaml", FIXED)
    runner.synth("mosi", 1.0)
    per_hour, util, memory = {}, {}, {}
    for n in PACKINGS:
        say(f"gpu: {n} trial(s) packed on one GPU ({name})")
        per_hour[n], stats = _packed_run(runner, plan, f"gpu-{n}", n, space, [])
        util[n], memory[n] = stats["util_mean"], stats["memory_max_mib"]
    best = max(per_hour, key=lambda n: per_hour[n] if math.isfinite(per_hour[n]) else -1)
    say(f"gpu: variable lengths (MOSI unaligned), {best} packed")
    runner.run(
        "synth-mosi-unaligned", {"kind": "synth", "dataset": "mosi", "scale": 1.0, "aligned": False}
    )
    var_hour, var = _packed_run(runner, plan, "gpu-varlen", best, space, ["data.aligned=false"])
    return {
        "gpu_device": name,
        "gpu_epochs_per_trial": plan.gpu_epochs,
        "gpu_trials_per_hour": per_hour,
        "gpu_utilisation_mean": util,
        "gpu_memory_max_mib": memory,
        "gpu_best_packing": best,
        "gpu_packing_speedup": per_hour[best] / per_hour[1] if per_hour[1] else math.nan,
        "gpu_varlen_packing": best,
        "gpu_varlen_trials_per_hour": var_hour,
        "gpu_varlen_utilisation_mean": var["util_mean"],
        "gpu_varlen_memory_max_mib": var["memory_max_mib"],
    }
