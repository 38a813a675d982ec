"""The replay comparison end to end on a small crafted curve table, and its report lines."""

from __future__ import annotations

import math

import optuna
import pytest

from search.bench.curve_table import space_doc, write_table
from search.bench.replay_bench import default_method, methods, replay_section
from search.bench.replay_report import replay_details
from search.bench.replay_stats import FRACTIONS
from search.settings import default_grace

pytestmark = pytest.mark.slow


def _table(path, space) -> dict:
    """12 configurations of the default space with curves of 2 to 6 epochs."""
    sampler = optuna.samplers.RandomSampler(seed=7)
    study = optuna.create_study(sampler=sampler)
    trials = []
    for k in range(12):
        trial = study.ask()
        space(trial)
        floor = 0.3 + 0.05 * ((k * 5) % 12)
        length = 2 + k % 5
        scores = [round(1.2 - (1.2 - floor) * (e + 1) / length, 4) for e in range(length)]
        trials.append(
            {"trial_id": f"r{k}", "params": dict(trial.params), "scores": scores,
             "seconds": [0.5] * length}
        )  # fmt: skip
    meta = {
        "dataset": "mosi", "scale": 0.02, "metric": "MAE", "mode": "min", "max_epochs": 6,
        "space": space_doc(space), "label_median_score": 0.9,
    }  # fmt: skip
    write_table(path, meta, trials)
    return {"meta": meta, "trials": trials}


def test_replay_comparison_runs_every_method_on_the_simulated_clock(tmp_path):
    from atsuko.config import resolve
    from search.study.space import load_space

    space = load_space(None, resolve(None, {"data.synthetic": True}, dataset="mosi"))
    table = _table(tmp_path / "table.json.gz", space)
    r = replay_section(tmp_path / "table.json.gz", tmp_path / "work", seeds=2, budgets=(2,))
    names = list(methods(table))
    assert {"tpe_rung", "tpe_onset", "tpe_rungs_asha"} <= set(names)  # options of the search
    assert r["table_configs"] == 12 and r["replay_seeds"] == 2
    assert r["default_method"] == default_method(methods(table), 6) != "default"
    assert set(r["replay_regret"]) == set(names)
    assert set(r["replay_regret"]["random"]) == {str(f) for f in FRACTIONS}
    budget = r["replay_by_budget"]["2"]
    assert budget["random"]["speedup"][1] == 1.0  # random search against itself
    for name in names:
        regrets = [q[1] for q in budget[name]["regret"].values()]
        finite = [x for x in regrets if math.isfinite(x)]
        assert finite and min(finite) >= 0.0  # nothing beats the table's best
        assert finite == sorted(finite, reverse=True)  # best so far never gets worse
        assert len(budget[name]["speedups"]) == 2  # one a seed
    assert sorted(b["mean_rank"] for b in budget.values())[0] >= 1.0
    tpe = {m: sum(q[1] for q in b["regret"].values()) for m, b in budget.items() if "tpe" in m}
    assert r["replay_best_scheduler"] == min(tpe, key=tpe.get)
    assert (tmp_path / "work" / "replay_regret.png").stat().st_size > 5000
    text = "\n".join(replay_details(r))
    assert "12 recorded configurations" in text and "tpe_asha_brackets2" in text


def test_searches_in_worker_processes_give_the_paths_one_process_gives(tmp_path):
    from atsuko.config import resolve
    from search.bench.replay_bench import jobs, trajectories
    from search.bench.surrogate import Surrogate
    from search.study.space import load_space

    space = load_space(None, resolve(None, {"data.synthetic": True}, dataset="mosi"))
    table = _table(tmp_path / "table.json.gz", space)
    specs = [j for j in jobs(table, 2, (2,)) if j["method"] in ("random", "tpe_asha")]
    for answer in (None, Surrogate(table)):  # nearest curves, then the surrogate's
        alone = trajectories(table, specs, answer)
        assert trajectories(table, specs, answer, workers=2) == alone
        assert len(alone[2]["tpe_asha"]) == 2 and alone[2]["tpe_asha"][0]  # a path a seed


def test_the_default_method_is_found_by_its_settings_not_its_name():
    from search.bench.replay_bench import defaults

    mine = defaults(32)
    assert mine["grace_period"] == default_grace(32) and mine["scheduler"] == "asha"
    assert default_method({"a": {**mine, "brackets": 9}, "b": dict(mine)}, 32) == "b"
    assert default_method({"a": {**mine, "reduction_factor": 9}}, 32) == "default"


def test_a_table_recorded_on_real_data_replays_and_is_named_by_its_file(tmp_path):
    """A real-data table (scale null, its file's name, a --set pin): the replay rebuilds the
    space without the pinned key, runs, and the report names the file, not a scale."""
    from atsuko.config import resolve
    from search.study.space import load_space

    base = resolve(None, {"data.synthetic": True}, dataset="mosi")
    space = load_space(None, base, pinned={"lr": 0.002})
    path = tmp_path / "table.json.gz"
    table = _table(path, space)
    meta = dict(table["meta"], synthetic=False, scale=None, data_file="aligned_50.pkl")
    write_table(path, {**meta, "sets": ["lr=0.002", "train.seed=1112"]}, table["trials"])
    r = replay_section(path, tmp_path / "work", seeds=1, budgets=(2,))
    assert r["table_scale"] is None and r["table_data"] == "MOSI aligned_50.pkl"
    assert "(MOSI aligned_50.pkl)" in "\n".join(replay_details(r))
