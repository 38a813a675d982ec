"""How `search.bench` runs its measurements: plans, child processes, shared helpers.

Each measurement runs `python -m search.bench.child SPEC.json` in a fresh process with its output
in a work folder; a child that fails or hangs ends the measurement with a `BenchError`. Every
search starts its own local Ray (never joining another: RAY_ADDRESS is dropped) and is ended
through its own process tree only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

from atsuko.errors import AtsukoError
from search.bench.curve_table import TABLE
from search.bench.memory import TreeSampler, tree

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds `search/`
FIXED = {"dropout": 0.1}  # the one-value space of the overhead and memory runs
ZERO_COPY_ENV = "RAY_ENABLE_ZERO_COPY_TORCH_TENSORS"
GB = 1e9


class BenchError(AtsukoError):
    """A measurement could not be taken (its child process failed)."""


@dataclass(frozen=True)
class Plan:
    """How much each section runs (`--quick` or the full bench)."""

    repeats: int  # overhead and scaling: repeats of (plain, concurrency 1, concurrency 2)
    trials: int  # trials per overhead run
    epochs: int  # epochs per overhead trial
    scale: float  # synthetic MOSI scale of the overhead runs
    load_repeats: int
    memory_budget_s: float  # Tune time budget of a memory run (trials are stopped after it)
    memory_zero_copy: bool  # also measure with Ray's zero-copy tensors, if trials copy the data
    eff_repeats: int  # search efficiency: seeds 0..eff_repeats-1
    eff_trials: int  # random search: trials of the full budget each
    eff_epochs: int  # the full budget of one trial
    eff_scale: float  # synthetic MOSI scale of the efficiency runs
    gpu_epochs: int  # epochs per trial of the GPU packing runs (full-size MOSI)
    ws_repeats: int  # warm start: seeds 0..ws_repeats-1 of the MOSEI searches
    ws_source_trials: int  # trials of the MOSI search it starts from
    ws_trials: int  # trials of each MOSEI search (cold and warm alike)
    ws_epochs: int  # epochs per trial at most
    ws_grace: int  # ASHA's first rung
    ws_k: int  # --warm-start-k
    ws_source_scale: float  # synthetic MOSI scale
    ws_scale: float  # synthetic MOSEI scale
    replay_seeds: int  # search efficiency on the recorded curves: seeds 0..replay_seeds-1
    replay_compute_seeds: int = 0  # both replays in compute ratios: seeds 0..n-1
    replay_compute_budgets: tuple[int, ...] = (16, 64, 256)  # in full trials
    replay_table: str = str(TABLE)  # the curve table the replay answers from
    held_out_table: str | None = None  # the confirmation table (None: the committed one, if any)


QUICK = Plan(
    repeats=1,
    trials=4,
    epochs=4,
    scale=0.25,
    load_repeats=2,
    memory_budget_s=40,
    memory_zero_copy=False,
    eff_repeats=1,
    eff_trials=5,
    eff_epochs=6,
    eff_scale=0.25,
    gpu_epochs=2,
    ws_repeats=3,
    ws_source_trials=8,
    ws_trials=6,
    ws_epochs=6,
    ws_grace=2,
    ws_k=3,
    ws_source_scale=0.25,
    ws_scale=0.03,
    replay_seeds=10,
    # a 256-trial budget costs about 4 min a seed here (TPE's suggestions slow down with
    # thousands of trials): --quick stops at 64
    replay_compute_seeds=3,
    replay_compute_budgets=(16, 64),
)
FULL = Plan(
    repeats=3,
    trials=8,  # the search's fixed cost (starting Ray) spread over 8 trials
    epochs=13,  # trials long enough that the fixed cost is a small share (README)
    scale=0.5,
    load_repeats=5,
    memory_budget_s=45,
    memory_zero_copy=True,
    eff_repeats=3,
    # 16 trials of up to 32 epochs, rungs at 4 and 16 (the search's default grace, 32 / 8):
    # a smaller plan caps the ratio the figure can show (`search_ratio_ceiling`; README)
    eff_trials=16,
    eff_epochs=32,
    eff_scale=0.5,
    gpu_epochs=5,
    ws_repeats=5,
    ws_source_trials=16,
    ws_trials=12,
    ws_epochs=16,
    ws_grace=2,
    ws_k=5,
    ws_source_scale=0.5,
    ws_scale=0.1,
    replay_seeds=30,
    replay_compute_seeds=10,
)


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env.pop("RAY_ADDRESS", None)  # each search starts its own local Ray, never joins another
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _kill_tree(proc: subprocess.Popen) -> None:
    """End a child we started and everything it started (its own Ray), by PID."""
    procs = tree(proc.pid)
    for p in reversed(procs):
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=30)


class Runner:
    """Runs `search.bench.child` specs in fresh processes, their files under `work`."""

    def __init__(self, work: Path):
        self.work = work
        self.count = 0
        self.synthetic: dict[tuple[str, float], dict[str, Any]] = {}
        self.loads: list[float] = []  # the machine's 1-minute load average before each run

    def run(
        self,
        name: str,
        spec: dict[str, Any],
        *,
        timeout: float = 1800,
        sample: bool = False,
        env: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], TreeSampler | None]:
        self.count += 1
        if hasattr(os, "getloadavg"):
            self.loads.append(os.getloadavg()[0])
        stem = self.work / f"{self.count:02d}-{name}"
        result = Path(f"{stem}.result.json")
        spec_file = Path(f"{stem}.spec.json")
        spec_file.write_text(json.dumps({**spec, "result": str(result)}, indent=1))
        log = Path(f"{stem}.log")
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "search.bench.child", str(spec_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_env(env),
            )
        sampler = TreeSampler(proc.pid).start() if sample else None
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            raise BenchError(f"{name}: no result after {timeout:.0f} s (log: {log})") from None
        except BaseException:  # Ctrl-C: leave no search (and no Ray) of ours running
            _kill_tree(proc)
            raise
        finally:
            if sampler is not None:
                sampler.stop()
        if sampler is not None:  # the memory timeline, for a look afterwards
            timeline = [dataclasses.asdict(snap) for snap in sampler.snapshots]
            Path(f"{stem}.memory.json").write_text(json.dumps(timeline))
        if proc.returncode != 0 or not result.is_file():
            tail = log.read_text(errors="replace")[-2000:]
            raise BenchError(f"{name}: exit status {proc.returncode} (log: {log})\n{tail}")
        return json.loads(result.read_text()), sampler

    def synth(self, dataset: str, scale: float) -> dict[str, Any]:
        """The cached synthetic file (generated before any timing starts)."""
        key = (dataset, scale)
        if key not in self.synthetic:
            say(f"synthetic {dataset} at scale {scale:g} (generated once, then cached)")
            spec = {"kind": "synth", "dataset": dataset, "scale": scale}
            self.synthetic[key], _ = self.run(f"synth-{dataset}-{scale:g}", spec)
        return self.synthetic[key]


def write_space(path: Path, values: dict[str, Any]) -> Path:
    """A search space with one value per parameter: every trial trains the same configuration."""
    params = {k: {"type": "categorical", "choices": [v]} for k, v in values.items()}
    path.write_text(yaml.safe_dump({"params": params}))
    return path


def settings_doc(out: Path, **fields: Any) -> dict[str, Any]:
    """Fields of `search.settings.Settings`: synthetic data, no final seed re-runs."""
    return {"synthetic": True, "final_seeds": 0, "seed": 0, "out": str(out), **fields}
