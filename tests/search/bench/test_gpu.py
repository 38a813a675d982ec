"""`search.bench.gpu`'s pure parts, on CPU with recorded `nvidia-smi` output: every GPU's row
parsed, Ray's GPU ids mapped to nvidia-smi's GPUs (index or UUID), utilisation read from the
assigned GPU inside the trials' windows only (not over Ray's start and teardown, nor from the
idle GPUs), and the section's runs (packings and the variable-length case) with a fake
`nvidia-smi` and fake searches."""

from __future__ import annotations

import csv
import json
import math
import os
import stat
import time
from pathlib import Path

import pytest
from searchtest_util import wait_for

import search.bench.gpu as bench_gpu
from search.bench import main as bench
from search.bench.gpu import (
    GpuSample,
    GpuSampler,
    TrialSpan,
    gpu_indices,
    parse_smi_rows,
    trial_spans,
    window_stats,
)
from search.bench.runner import QUICK, Runner

SMI = """\
0, GPU-aaaa-0000, 3, 500, 81559
1, GPU-bbbb-1111, 87, 30512, 81559
2, GPU-cccc-2222, [N/A], [N/A], 81559
"""


def test_parse_every_gpu_row() -> None:
    rows = parse_smi_rows(SMI, t=12.5)
    assert rows == [
        GpuSample(12.5, 0, "GPU-aaaa-0000", 3.0, 500.0, 81559.0),
        GpuSample(12.5, 1, "GPU-bbbb-1111", 87.0, 30512.0, 81559.0),
    ]
    assert parse_smi_rows("NVIDIA-SMI has failed because it couldn't communicate", 0) == []
    assert parse_smi_rows("", 0) == []


def test_ray_gpu_ids_to_nvidia_smi_indices() -> None:
    rows = parse_smi_rows(SMI, 0)
    assert gpu_indices(["1"], rows) == {1}
    assert gpu_indices(["GPU-bbbb-1111"], rows) == {1}  # CUDA_VISIBLE_DEVICES held UUIDs
    assert gpu_indices(["0", "1"], rows) == {0, 1}
    assert gpu_indices(["7", "GPU-zzzz", "MIG-x"], rows) == set()  # not sampled: left out
    assert gpu_indices([], rows) == set()


def _samples(gpu: int, util: float, times: list[float]) -> list[GpuSample]:
    return [GpuSample(t, gpu, f"GPU-{gpu}", util, 1000.0 + t, 81559.0) for t in times]


def test_utilisation_inside_the_trials_windows_on_their_gpu() -> None:
    # Ray starts (t < 10, GPU idle), a trial runs on GPU 1 from 10 to 20, Ray stops (t > 20);
    # GPU 0 is someone else's, busy all along
    samples = (
        _samples(1, 0.0, [2, 5, 8])
        + _samples(1, 90.0, [10, 12, 15, 20])
        + _samples(1, 0.0, [22, 25])
        + _samples(0, 100.0, list(range(0, 26)))
    )
    stats = window_stats(samples, [TrialSpan(10.0, 20.0, frozenset({1}))])
    assert stats["util_mean"] == 90.0 and stats["util_max"] == 90.0
    assert stats["memory_max_mib"] == 1020.0 and stats["samples"] == 4.0
    # over the whole run and on GPU 0, as before, the figure was wrong both ways
    assert sum(s.util for s in samples if s.index == 1) / 9 < 50
    # two trials on two GPUs, each read on its own GPU in its own window
    two = window_stats(
        samples, [TrialSpan(10, 20, frozenset({1})), TrialSpan(0, 1, frozenset({0}))]
    )
    assert two["samples"] == 4 + 2 and two["util_max"] == 100.0
    empty = window_stats(samples, [])
    assert math.isnan(empty["util_mean"]) and math.isnan(empty["memory_max_mib"])


def _fake_search(out: Path, trials: list[tuple[str, float, float, str]]) -> None:
    """trials.csv and each trial's result.json (with `gpu_ids`) as a search writes them."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "trials.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["trial_id", "state", "epochs", "started", "finished"])
        w.writeheader()
        for tid, start, end, _ in trials:
            w.writerow(
                {
                    "trial_id": tid,
                    "state": "COMPLETE",
                    "epochs": 2,
                    "started": start,
                    "finished": end,
                }
            )
    for tid, _, end, ids in trials:
        folder = out / "tune" / f"mosi_{tid}"
        folder.mkdir(parents=True, exist_ok=True)
        row = {"epoch": 1, "score": 1.0, "wall_time": end, "gpu_ids": ids}
        (folder / "result.json").write_text(json.dumps(row) + "\n")


def test_trial_spans_from_a_search(tmp_path: Path) -> None:
    _fake_search(tmp_path, [("a", 10, 20, "1"), ("b", 11, 21, ""), ("c", 12, 30, "GPU-0")])
    samples = _samples(0, 1, [0]) + _samples(1, 1, [0])
    spans = trial_spans(tmp_path, samples)
    assert spans == [TrialSpan(10, 20, frozenset({1})), TrialSpan(12, 30, frozenset({0}))]


def _fake_smi(folder: Path) -> Path:
    """An `nvidia-smi` that prints two GPUs (GPU 1 busy, GPU 0 idle) and counts its calls in
    the file it returns (a line each, written as the call begins)."""
    script, calls = folder / "nvidia-smi", folder / "smi_calls"
    script.write_text(
        f"#!/bin/sh\necho call >> '{calls}'\n"
        "echo '0, GPU-0, 0, 10, 81559'\necho '1, GPU-1, 80, 2000, 81559'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return calls


def _calls(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.is_file() else 0


def test_sampler_with_a_fake_nvidia_smi(tmp_path: Path, monkeypatch) -> None:
    _fake_smi(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    before = time.time()
    with GpuSampler(every_s=0.05) as sampler:
        assert wait_for(lambda: len(sampler.samples) >= 4, 60)  # two calls, however slow
    assert {s.index for s in sampler.samples} == {0, 1}
    assert all(before <= s.t <= time.time() for s in sampler.samples)


class _FakeGpuRunner(Runner):
    """Writes each search's outputs instead of running it: trials on GPU 1 during the run."""

    def __init__(self, work: Path, smi_calls: Path):
        super().__init__(work)
        self.specs: list[dict] = []
        self.smi_calls = smi_calls

    def synth(self, dataset, scale):
        return {}

    def run(self, name, spec, **_):
        self.specs.append(spec)
        if spec["kind"] != "search":
            return {}, None
        s = spec["settings"]
        time.sleep(0.2)  # Ray's start: the GPU samples here fall outside the trials' windows
        start = time.time()
        before = _calls(self.smi_calls)
        time.sleep(0.3)
        # a sample inside the window on a machine of any speed: the sampler calls one at a time,
        # so the second call begun after `before` began after `start` and, once a third has
        # begun, has been stamped
        assert wait_for(lambda: _calls(self.smi_calls) >= before + 3, 60)
        end = time.time()
        n = s["concurrency"]
        trials = [(f"t{i}", start + 0.01 * i, end, "1") for i in range(s["num_samples"])]
        _fake_search(Path(s["out"]), trials)
        time.sleep(0.1 * n)  # faster at higher packings, measured by the windows
        return {"code": 0}, None


def test_gpu_section_packings_and_variable_lengths(tmp_path: Path, monkeypatch) -> None:
    smi_calls = _fake_smi(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(bench_gpu, "cuda_device", lambda: "H200")
    monkeypatch.setattr(bench_gpu, "SAMPLE_EVERY_S", 0.03)
    runner = _FakeGpuRunner(tmp_path / "work", smi_calls)
    runner.work.mkdir()
    out = bench_gpu.gpu_section(QUICK, runner)
    assert set(out["gpu_trials_per_hour"]) == {1, 2, 4, 8}
    # read on GPU 1 (the one "Ray assigned"), never the idle GPU 0
    assert all(u == 80.0 for u in out["gpu_utilisation_mean"].values()), out
    assert out["gpu_varlen_utilisation_mean"] == 80.0
    assert out["gpu_varlen_packing"] == out["gpu_best_packing"]
    searches = [s["settings"] for s in runner.specs if s["kind"] == "search"]
    assert searches[-1]["sets"] == ["patience=0", "data.aligned=false"]
    assert any(s.get("aligned") is False for s in runner.specs if s["kind"] == "synth")
    text = bench.report({**out, "holds": {}}, "quick")
    assert "variable lengths (MOSI unaligned)" in text and "utilisation 80.0%" in text


@pytest.mark.parametrize("ids", ["", "9"])
def test_trials_without_a_known_gpu_give_no_figure(tmp_path: Path, ids: str) -> None:
    _fake_search(tmp_path, [("a", 0, 10, ids)])
    samples = _samples(0, 50, [5])
    assert math.isnan(window_stats(samples, trial_spans(tmp_path, samples))["util_mean"])
