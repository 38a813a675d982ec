"""The pieces of `python -m search.bench`: its measures on tiny inputs, the memory sampler on a
small process tree, the loading child on a tiny synthetic file, and the command's JSON output.

Covers every module of `search/bench/`: `main`, `runner`, `child`, `measures`, `memory`,
`overhead`, `sharing`, `loading`, `efficiency` and `gpu`."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.bench import main as bench
from search.bench.efficiency import compare
from search.bench.measures import (
    asha_mean_epochs,
    asha_rungs,
    best_of,
    epochs_to_within,
    read_results,
    rung_rank_correlation,
    target_score,
    trajectory,
    trial_window,
    truncate,
    winner_position,
)
from search.bench.memory import TreeSampler
from search.bench.runner import QUICK, Runner

REQUIRED = (
    "overhead_ratio",
    "concurrency_speedup",
    "memory_ratio_4_vs_1",
    "load_time_ratio",
    "load_extra_peak_bytes",
    "search_epochs_ratio",
)


def _rows(spans: list[tuple[float, float]], epochs: int = 3) -> list[dict[str, str]]:
    return [{"started": str(a), "finished": str(b), "epochs": str(epochs)} for a, b in spans]


def test_trial_window_sequential_and_concurrent():
    # three trials one after another: 10 s each, 2 s between them
    w = trial_window(_rows([(0, 10), (12, 22), (24, 34)]))
    assert (w.trials, w.seconds, w.gaps, w.durations) == (3, 34, [2, 2], [10, 10, 10])
    assert w.per_minute == pytest.approx(60 * 3 / 36)  # widened by one typical gap
    # four trials two at a time: each later trial waits for the end that freed its slot
    w2 = trial_window(_rows([(0, 10), (0.5, 10.5), (12, 22), (12.5, 22.5)]), concurrency=2)
    assert w2.gaps == pytest.approx([2.0, 2.0])
    assert w2.per_minute == pytest.approx(60 * 4 / 24.5)
    # rows without timestamps (a trial that never ran) are left out
    w3 = trial_window([{"started": "", "finished": "nan"}, *_rows([(0, 5)])])
    assert w3.trials == 1 and w3.gaps == []


def test_trajectory_and_epochs_to_within():
    from search.bench.measures import EpochResult

    results = [
        EpochResult("b", 1, 2.0, wall_time=2.0),
        EpochResult("a", 1, 3.0, wall_time=1.0),
        EpochResult("a", 2, 1.5, wall_time=3.0),
        EpochResult("b", 2, float("nan"), wall_time=4.0),
        EpochResult("b", 3, 1.0, wall_time=5.0),
    ]
    path = trajectory(results, "min")
    assert path == [(1, 3.0), (2, 2.0), (3, 1.5), (4, 1.5), (5, 1.0)]
    assert epochs_to_within(path, 1.0, "min", 0.01) == 5
    assert epochs_to_within(path, 1.0, "min", 0.6) == 3  # 1.5 <= 1.6
    assert epochs_to_within(path, 0.5, "min", 0.01) is None
    assert truncate(path, 2) == [(1, 3.0), (2, 2.0)]
    assert best_of([path, [(1, 0.9)]], "min") == 0.9
    up = trajectory(results, "max")
    assert up[-1] == (5, 3.0) and epochs_to_within(up, 3.0, "max", 0.01) == 1
    assert target_score(80.0, "max", 0.01) == pytest.approx(79.2)
    assert target_score(-2.0, "min", 0.01) == pytest.approx(-1.98)


def test_asha_rungs_and_mean_epochs():
    assert asha_rungs(16, 2, 4) == [2, 8] and asha_rungs(8, 1, 4) == [1, 4]
    # 16 epochs, cuts at 2 and 8 keeping a quarter each: 2 + 6 / 4 + 8 / 16
    assert asha_mean_epochs(16, 2, 4) == pytest.approx(4.0)
    assert asha_mean_epochs(4, 4, 4) == 4  # no rung below the budget: every trial runs it all


def test_rung_rank_correlation_and_winner_position():
    from search.bench.measures import EpochResult

    def trial(name, start, scores):
        return [EpochResult(name, e, v, start + e) for e, v in enumerate(scores, 1)]

    # the first rung (epoch 2) ranks the trials as their best scores do
    ordered = trial("a", 0, [1.0, 0.9, 0.5]) + trial("b", 10, [1.0, 1.0, 0.8])
    ordered += trial("c", 20, [1.1, 1.1, 1.0]) + trial("d", 30, [1.2, 1.2, 1.2])
    assert rung_rank_correlation(ordered, 2, "min") == pytest.approx(1.0)
    assert winner_position(ordered, "min") == 1
    # a late bloomer: worst at the rung, best at the end
    late = trial("a", 0, [1.3, 1.3, 0.2]) + trial("b", 10, [1.0, 0.9, 0.8])
    late += trial("c", 20, [1.1, 1.0, 0.9]) + trial("d", 30, [1.2, 1.1, 1.0])
    assert rung_rank_correlation(late, 2, "min") == pytest.approx(-0.2)
    assert winner_position(late, "max") == 1 and winner_position(ordered, "max") == 4
    # trials stopped at the rung say nothing about their final rank
    assert math.isnan(rung_rank_correlation(trial("a", 0, [1.0, 0.9]) * 3, 2, "min"))


def test_ratio_ceiling_counts_what_asha_spent_before_the_last_shared_trial():
    from search.bench.measures import EpochResult, epochs_by_start, ratio_ceiling

    def trial(name, start, epochs):
        return [EpochResult(name, e, 1.0, start + e) for e in range(1, epochs + 1)]

    # ASHA's trials as started: 16 (the first always runs on), 2, 8, 2, 16
    asha = trial("c", 20, 8) + trial("a", 0, 16) + trial("b", 10, 2)
    asha += trial("e", 40, 16) + trial("d", 30, 2)
    assert epochs_by_start(asha) == [16, 2, 8, 2, 16]
    # 4 random trials of 16, all shared: 64 / (16 + 16 + 2 + 8)
    assert ratio_ceiling(epochs_by_start(asha), 4, 16, shared=10) == pytest.approx(64 / 42)
    # 5 random trials but only 2 shared: TPE's winner comes at its 3rd trial at the earliest
    assert ratio_ceiling(epochs_by_start(asha), 5, 16, shared=2) == pytest.approx(80 / 34)


def test_read_results_dedupes_and_skips_broken_lines(tmp_path):
    trial = tmp_path / "mosi_abc"
    trial.mkdir()
    rows = [
        {"epoch": 1, "score": 1.2, "wall_time": 10.0},
        {"epoch": 2, "score": 1.1, "wall_time": 11.0},
        {"epoch": 2, "score": 1.1, "wall_time": 12.0, "done": True},  # Tune's closing copy
    ]
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"epoch": 3, "sco'  # cut short
    (trial / "result.json").write_text(text)
    results = read_results(tmp_path)
    assert [(r.trial, r.epoch, r.score) for r in results] == [
        ("mosi_abc", 1, 1.2),
        ("mosi_abc", 2, 1.1),
    ]


def test_compare_counts_censored_runs_as_the_whole_budget():
    paths = {
        "random": [(1, 2.0), (2, 1.5), (3, 1.2), (4, 1.0)],
        "tpe_asha": [(1, 1.8), (2, 1.005), (3, 1.005)],
    }
    out = compare(paths, "min", budget=4)
    assert out["reference_score"] == 1.0
    assert (out["epochs_random"], out["epochs_tpe_asha"], out["ratio"]) == (4, 2, 2.0)
    slow = compare({"random": [(1, 2.0), (4, 2.0)], "tpe_asha": [(1, 1.0)]}, "min", budget=4)
    assert slow["reached_random"] is False and slow["epochs_random"] == 4
    # random's own best (2.0) took it 1 epoch, TPE+ASHA 1 too
    assert slow["match_ratio"] == 1.0 and slow["match_epochs_tpe_asha"] == 1


def test_match_ratio_credits_passing_random_search_early():
    # TPE+ASHA passes random's final 1.0 at epoch 2 and keeps improving to 0.5 at epoch 8
    paths = {
        "random": [(1, 2.0), (6, 1.0), (8, 1.0)],
        "tpe_asha": [(1, 2.0), (2, 0.9), (8, 0.5)],
    }
    out = compare(paths, "min", budget=8)
    assert out["ratio"] == 1.0  # random never came near 0.5: the whole budget, as TPE+ASHA's
    assert (out["match_epochs_tpe_asha"], out["match_ratio"]) == (2, 3.0)


def test_tree_sampler_counts_a_child_tree(tmp_path):
    # a child that holds 64 MB and starts a grandchild that holds 32 MB
    code = (
        "import subprocess, sys, time\n"
        "block = bytearray(64 << 20)\n"
        "g = subprocess.Popen([sys.executable, '-c', "
        "'import time; b = bytearray(32 << 20); time.sleep(30)'])\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        sampler = TreeSampler(proc.pid, every=0.1).start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sampler.peak().total < 96 << 20:
            time.sleep(0.2)
        sampler.stop()
        peak = sampler.peak()
        assert peak.total >= 96 << 20
        assert peak.by_role["driver"] >= 64 << 20  # the root of the tree is the driver
        assert sampler.most_trials() == 0 and sampler.steady_trial_private() == 0
    finally:
        for child in __import__("psutil").Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait(timeout=10)


def test_settled_memory_is_taken_while_every_trial_runs():
    from search.bench.memory import Snapshot

    sampler = TreeSampler(0)
    totals = [(8, []), (5, [1]), (6, [1, 1]), (7, [1, 1]), (7, [1, 1]), (9, [1, 1]), (1, [])]
    sampler.snapshots = [Snapshot(i, t, {}, trials, trials) for i, (t, trials) in enumerate(totals)]
    # the put's peak (8) and the ramp-up (5) are left out: the later half of the 2-trial samples
    assert sampler.peak().total == 9 and sampler.settled() == 8
    assert TreeSampler(0).settled() == 0


@pytest.mark.slow
def test_load_children_measure_time_and_peak(tmp_path):
    from atsuko.data.registry import get_spec
    from atsuko.data.synth_write import synthesize

    path = synthesize(get_spec("mosi"), tmp_path / "data", scale=0.02, seed=0)
    runner = Runner(tmp_path)
    out = {}
    for how in ("pickle", "atsuko"):
        out[how], _ = runner.run(how, {"kind": "load", "how": how, "path": str(path)}, timeout=120)
        assert out[how]["seconds"] > 0 and out[how]["extra_peak"] > 0
    largest = out["pickle"]["largest_array"]
    assert 0 < largest < path.stat().st_size
    # the loader holds what the bare load holds, give or take its int64 ids and lengths
    assert out["atsuko"]["held"] > 0.8 * out["pickle"]["held"]


def test_json_output_has_every_figure_with_finite_numbers(monkeypatch, capsys):
    fake = {
        "overhead": lambda plan, runner: {"overhead_ratio": 1.1, "concurrency_speedup": 1.8},
        "memory": lambda plan, runner: {"memory_ratio_4_vs_1": 1.2},
        "loading": lambda plan, runner: {
            "load_time_ratio": 1.2,
            "load_extra_peak_bytes": 10.0,
            "load_largest_array_bytes": 100,
        },
        "efficiency": lambda plan, runner: {"search_epochs_ratio": float("nan")},
    }
    monkeypatch.setattr(bench, "RUNNERS", fake)
    with pytest.raises(SystemExit) as done:
        bench.run_cli(bench.main, ["--quick", "--json"])
    assert done.value.code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    for key in REQUIRED[:-1]:
        assert math.isfinite(doc[key])
    assert doc["search_epochs_ratio"] is None  # NaN is not JSON: not measured
    assert doc["holds"]["overhead_ratio"] is True and doc["holds"]["search_epochs_ratio"] is None
    assert doc["plan"] == "quick"


def test_report_names_each_target_and_verdict():
    results = {
        "overhead_ratio": 1.3,
        "concurrency_speedup": 1.9,
        "memory_ratio_4_vs_1": 2.0,
        "memory_ratio_measured": False,
        "load_time_ratio": 1.1,
        "load_extra_peak_bytes": 5e6,
        "load_largest_array_bytes": 2.5e9,
        "search_epochs_ratio": 3.5,
    }
    results["holds"] = bench.verdicts(results)
    text = bench.report(results, "quick")
    assert text.count("MISSED") == 2 and text.count("holds") == 4
    assert "2.00x*" in text and "<= 2,500 MB" in text


def test_a_failed_section_is_reported_and_the_others_go_on(monkeypatch, tmp_path):
    def broken(plan, runner):
        raise bench.BenchError("the child failed")

    monkeypatch.setattr(
        bench, "RUNNERS", {"overhead": broken, "loading": lambda p, r: {"load_time_ratio": 1.0}}
    )
    results = bench.run(QUICK, ["overhead", "loading"], tmp_path)
    assert results["errors"] == {"overhead": "the child failed"}
    assert results["overhead_ratio"] is None and results["load_time_ratio"] == 1.0


def test_bad_flags_exit_2(capsys):
    with pytest.raises(SystemExit) as done:
        bench.run_cli(bench.main, ["--only", "nonsense"])
    assert done.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_package_root_holds_the_search_package():
    from search.bench.runner import PACKAGE_ROOT

    assert (PACKAGE_ROOT / "search" / "bench" / "child.py").is_file()
    assert Path(bench.__file__).parent == PACKAGE_ROOT / "search" / "bench"


def test_repeat_figures_from_one_repeat():
    from search.bench.overhead import repeat_figures

    plain = {"seconds": 40.0, "load_seconds": 0.0}
    c1 = {"start": 0.0, "end": 52.0, "seconds": 52.0}
    c1["window"] = trial_window(_rows([(5, 15), (17, 27), (29, 39), (41, 51)], epochs=5))
    c2 = {"start": 0.0, "end": 30.0, "seconds": 30.0}
    c2["window"] = trial_window(_rows([(5, 15), (5, 15), (17, 27), (17, 27)], epochs=5), 2)
    out = repeat_figures({"plain": plain, "c1": c1, "c2": c2}, trials=4, epochs=5)
    assert out["overhead_ratio"] == pytest.approx(1.3)
    assert out["overhead_gap_seconds"] == pytest.approx(2.0)
    assert out["overhead_startup_seconds"] == 5 and out["overhead_shutdown_seconds"] == 1
    assert out["concurrency_speedup"] == pytest.approx(48 / 24)  # 4 trials in 46+2 s vs 22+2 s
    c2["window"] = trial_window(_rows([(5, 15), (5, 15), (17, 27)], epochs=5), 2)
    with pytest.raises(bench.BenchError, match="ran 3 trials"):
        repeat_figures({"plain": plain, "c1": c1, "c2": c2}, trials=4, epochs=5)


def test_memory_scale_falls_back_when_memory_is_short():
    from search.bench.sharing import _pick_scale

    gb = 10**9
    assert _pick_scale(4 * gb, 24 * gb) == 1.0
    assert _pick_scale(4 * gb, 12 * gb) == 0.5
    with pytest.raises(bench.BenchError, match="too little free memory"):
        _pick_scale(4 * gb, 2 * gb)


def test_gpu_packing_helpers():
    from search.bench.gpu import packing_settings, parse_smi

    assert parse_smi("87, 30512, 143771\n12, 5, 143771\n") == (87.0, 30512.0, 143771.0)
    assert parse_smi("[N/A], 1, 2") is None and parse_smi("") is None
    assert packing_settings(4, 16) == {
        "concurrency": 4,
        "gpus_per_trial": 0.25,
        "cpus_per_trial": 4,
    }
    assert packing_settings(8, 2)["cpus_per_trial"] == 0.25  # fewer CPUs than trials: shares


def test_gpu_section_is_not_measured_without_cuda(monkeypatch, tmp_path, capsys):
    import search.bench.gpu as bench_gpu

    monkeypatch.setattr(bench_gpu, "cuda_device", lambda: None)
    out = bench_gpu.gpu_section(QUICK, Runner(tmp_path))
    assert out == {"gpu_trials_per_hour": None, "gpu_device": None}
    assert "not measured (no CUDA" in bench.report({**out, "holds": {}}, "quick")
    measured = {
        "gpu_device": "H200",
        "gpu_epochs_per_trial": 5,
        "gpu_trials_per_hour": {"1": 100.0, "2": 180.0},
        "gpu_utilisation_mean": {"1": 40.0, "2": 75.0},
        "gpu_memory_max_mib": {"1": 900.0, "2": 1700.0},
        "gpu_best_packing": "2",
        "gpu_packing_speedup": 1.8,
        "holds": {},
    }
    text = bench.report(measured, "full")
    assert "2 at once: 180.0 trials/hour, utilisation 75.0%" in text and "1.8x" in text


class _LoggedSearches(Runner):
    """Writes each search's Tune logs instead of running it: trials of scores falling from 1.0
    by `step` per epoch (random search's step 0.1, TPE+ASHA's 0.2), 3 epochs each."""

    def synth(self, dataset, scale):
        return {}

    def run(self, name, spec, **_):
        settings = spec["settings"]
        step = 0.2 if settings["sampler"] == "tpe" else 0.1
        for t in range(settings["num_samples"]):
            folder = Path(settings["out"]) / "tune" / f"mosi_{t:04d}"
            folder.mkdir(parents=True)
            rows = [
                {"epoch": e, "score": 1.0 - step * e - 0.01 * t, "wall_time": 10.0 * t + e}
                for e in (1, 2, 3)
            ]
            (folder / "result.json").write_text("\n".join(map(json.dumps, rows)))
        return {"code": 0}, None


def test_efficiency_section_figures_and_report_from_the_searches_logs(tmp_path):
    from search.bench.efficiency import efficiency_section

    plan = QUICK.__class__(
        **{
            **QUICK.__dict__,
            "eff_trials": 2,
            "eff_epochs": 3,
            "replay_seeds": 1,
            "replay_compute_seeds": 0,
        }
    )
    out = efficiency_section(plan, _LoggedSearches(tmp_path))
    # random: 2 trials of 3 epochs, best 0.69 at epoch 6; TPE+ASHA passes 0.69 at its 2nd
    # epoch and reaches 0.39 at its 6th (the reference, which random search never nears)
    assert out["search_reference_score"] == [pytest.approx(0.39)]
    assert out["search_epochs_ratios"] == [pytest.approx(6 / 6)]
    assert out["search_match_epochs_tpe_asha"] == [2]
    assert out["search_match_ratio_median"] == pytest.approx(6 / 2)
    assert out["search_random_winner_position"] == [2]
    text = bench.report({**out, "holds": bench.verdicts(out)}, "quick")
    assert "epochs to within 1% of random search's own best: TPE+ASHA [2]" in text
