"""The warm-start figure of `search.bench` from recorded trial logs (nothing trains here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search.bench import main as bench
from search.bench.runner import QUICK, Runner
from search.bench.warmstart import compare_arms, warmstart_section


def test_compare_arms_counts_epochs_to_the_better_final_score():
    cold = [(1, 1.0), (2, 0.8), (3, 0.8), (4, 0.52), (5, 0.5)]
    warm = [(1, 0.6), (2, 0.503), (3, 0.503)]
    out = compare_arms({"cold": cold, "warm": warm}, "min")
    assert out["reference_score"] == 0.5  # cold's final: the better of the two
    assert out["epochs_cold"] == 5 and out["epochs_warm"] == 2  # 0.503 <= 0.505
    assert out["ratio"] == pytest.approx(2.5)
    assert out["reached_cold"] and out["reached_warm"]
    # an arm that never comes within 1% counts every epoch it spent, flagged
    out = compare_arms({"cold": [(1, 0.9), (7, 0.9)], "warm": [(1, 0.5)]}, "min")
    assert out["epochs_cold"] == 7 and not out["reached_cold"] and out["ratio"] == 7
    # max mode: accuracy
    out = compare_arms({"cold": [(1, 0.5), (4, 0.8)], "warm": [(1, 0.795)]}, "max")
    assert out["epochs_warm"] == 1 and out["ratio"] == 4


class _RecordedSearches(Runner):
    """Writes each search's Tune logs instead of running it: the warm arm's first trial
    (a seed) scores 0.5 at once; the cold arm gets there on its third trial."""

    def __init__(self, work: Path):
        super().__init__(work)
        self.specs: dict[str, dict] = {}

    def synth(self, dataset, scale):
        return {}

    def run(self, name, spec, **_):
        settings = spec["settings"]
        self.specs[name] = settings
        warm = bool(settings.get("warm_start"))
        for t in range(settings["num_samples"]):
            folder = Path(settings["out"]) / "tune" / f"mosei_{t:04d}"
            folder.mkdir(parents=True)
            best = 0.5 if (warm and t == 0) or t == 2 else 1.0 - 0.1 * t
            rows = [
                {"epoch": e, "score": best + 0.1 * (2 - e), "wall_time": 10.0 * t + e}
                for e in (1, 2)
            ]
            (folder / "result.json").write_text("\n".join(map(json.dumps, rows)))
        return {"code": 0}, None


def test_warmstart_section_figures_from_the_searches_logs(tmp_path):
    plan = QUICK.__class__(**{**QUICK.__dict__, "ws_trials": 4, "ws_repeats": 3})
    runner = _RecordedSearches(tmp_path)
    out = warmstart_section(plan, runner)
    source = runner.specs["warmstart-source"]
    assert source["dataset"] == "mosi" and source["num_samples"] == plan.ws_source_trials
    assert source["seed"] == 0 and out["warmstart_seeds"] == [1, 2, 3]
    for seed in (1, 2, 3):  # never the MOSI search's: its first random draws would repeat
        warm, cold = (
            runner.specs[f"warmstart-warm-seed{seed}"],
            runner.specs[f"warmstart-cold-seed{seed}"],
        )
        assert warm["warm_start"] == [source["out"]] and warm["warm_start_k"] == plan.ws_k
        assert "warm_start" not in cold
        same = ("dataset", "num_samples", "max_epochs", "seed", "sampler", "scheduler")
        assert {k: warm[k] for k in same} == {k: cold[k] for k in same}
        assert warm["dataset"] == "mosei" and warm["seed"] == seed
    # both reach 0.5: warm after its 2nd epoch, cold after its 6th (trial 3, epoch 2)
    assert out["warmstart_epochs_warm"] == [2, 2, 2]
    assert out["warmstart_epochs_cold"] == [6, 6, 6]
    assert out["warmstart_epochs_ratio"] == pytest.approx(3.0)
    assert out["warmstart_replayed"] is False
    text = bench.report({**out, "holds": bench.verdicts(out)}, "quick")
    assert "cold / warm start" in text and "3.00x" in text and "holds" in text
    assert "all live, none replayed" in text
