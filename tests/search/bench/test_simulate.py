"""The simulated replay drives the search's own searcher and scheduler as Ray Tune does."""

from __future__ import annotations

import numpy as np
import pytest
from tune_replay import tune_replay

from search.bench.curve_table import TABLE, distance, load_table, nearest, read_curves
from search.bench.replay import trial_order_best
from search.bench.simulate import simulate, simulate_search, table_onset_score, table_space
from search.settings import Settings
from search.study import driver


@pytest.fixture(scope="module")
def table():
    return load_table(TABLE)


@pytest.fixture(scope="module")
def space(table):
    return table_space(table)


def _watched(table, space, **change):
    """A simulated search whose trials (configuration, epochs run) are recorded, in order."""
    meta = table["meta"]
    settings = Settings(dataset=meta["dataset"], synthetic=True, scale=meta["scale"], **change)
    onset = table_onset_score(table) if settings.scheduler == "onset" else None
    searcher, scheduler = driver.search_algorithms(
        settings, space, meta["mode"], int(meta["max_epochs"]), onset_score=onset
    )
    seen: dict[str, dict] = {}
    suggest, complete = searcher.suggest, searcher.on_trial_complete

    def watch_suggest(trial_id):
        config = suggest(trial_id)
        seen[trial_id] = {"config": config, "epochs": 0}
        return config

    def watch_complete(trial_id, result=None, error=False):
        seen[trial_id]["epochs"] = result["epoch"]
        return complete(trial_id, result=result, error=error)

    searcher.suggest, searcher.on_trial_complete = watch_suggest, watch_complete
    path = simulate(
        table,
        searcher,
        scheduler,
        num_samples=settings.num_samples,
        budget=10**6,
        concurrency=settings.concurrency,
        seed=settings.seed,
    )
    return path, [seen[k] for k in sorted(seen)]


def test_random_search_with_the_recording_seed_replays_the_table(table, space):
    """The recording's sampler and seed draw exactly the recorded configurations (each at
    distance 0 from its own curve); each runs its recorded epochs; the best is the table's."""
    meta = table["meta"]
    n = len(table["trials"])
    path, trials = _watched(
        table, space, sampler="random", scheduler="none", seed=meta["seed"], num_samples=n,
        concurrency=meta["concurrency"], max_epochs=meta["max_epochs"],
    )  # fmt: skip
    answered = [nearest(table, t["config"]) for t in trials]
    assert all(distance(meta["space"], t["config"], a["params"]) == (0, 0.0)
               for t, a in zip(trials, answered, strict=True))  # fmt: skip
    assert sorted(a["trial_id"] for a in answered) == sorted(t["trial_id"] for t in table["trials"])
    assert [t["epochs"] for t in trials] == [len(a["scores"]) for a in answered]
    recorded = trial_order_best([t["scores"] for t in table["trials"]], meta["mode"])
    assert path[-1][1] == recorded[-1] and len(path) == sum(t["epochs"] for t in trials)
    assert [spent for spent, _ in path] == list(range(1, len(path) + 1))


def test_asha_stops_trials_and_the_budget_stops_the_search(table, space):
    _, trials = _watched(
        table, space, sampler="tpe", scheduler="asha", seed=3, num_samples=40, concurrency=2,
        max_epochs=table["meta"]["max_epochs"],
    )  # fmt: skip
    recorded = [len(nearest(table, t["config"])["scores"]) for t in trials]
    ran = [t["epochs"] for t in trials]
    assert all(1 <= r <= n for r, n in zip(ran, recorded, strict=True))
    assert any(r < n for r, n in zip(ran, recorded, strict=True))  # ASHA stopped some early
    path = simulate_search(table, space, _settings(table), budget=50)
    assert len(path) == 50 and path == sorted(path, key=lambda p: (p[0], -p[1]))


def test_the_onset_stop_ends_at_its_epoch_exactly_the_trials_that_learnt_nothing(table, space):
    _, trials = _watched(
        table, space, sampler="random", scheduler="onset", onset_epoch=2, seed=8, num_samples=8,
        concurrency=1, max_epochs=table["meta"]["max_epochs"],
    )  # fmt: skip
    baseline = table_onset_score(table)
    assert baseline == pytest.approx(1.2174, abs=1e-4)  # MAE of predicting the median, 0
    for t in trials:
        scores = nearest(table, t["config"])["scores"]
        learnt = min(scores[:2]) < baseline
        assert t["epochs"] == (len(scores) if learnt else 2)
    assert sum(t["epochs"] == 2 for t in trials) >= 2  # some stopped: the test can fail


def _settings(table, **change):
    meta = table["meta"]
    return {"dataset": meta["dataset"], "synthetic": True, "scale": meta["scale"],
            "max_epochs": meta["max_epochs"], "num_samples": 40, "concurrency": 2, "seed": 3,
            **change}  # fmt: skip


def test_a_search_with_brackets_repeats_and_leaves_numpys_generator_alone(table, space):
    """ASHA draws brackets from numpy's global generator: seeded per search, then restored."""
    np.random.seed(123)
    expected = np.random.random_sample(3)
    np.random.seed(123)
    first = simulate_search(table, space, _settings(table, brackets=3), budget=80)
    assert np.array_equal(np.random.random_sample(3), expected)
    assert simulate_search(table, space, _settings(table, brackets=3), budget=80) == first


@pytest.mark.slow
@pytest.mark.parametrize(
    "scheduler", [{"scheduler": "asha", "seed": 5}, {"scheduler": "rung", "seed": 5},
                  {"scheduler": "onset", "onset_epoch": 2, "seed": 8}],
    ids=["asha", "rung", "onset"],
)  # fmt: skip
def test_scheduler_decisions_match_the_tune_replay(table, space, shared_ray, tmp_path, scheduler):
    """One trial at a time (no timing in play): Ray Tune running the replay trainable through
    the driver (which computes the onset score from the loaded data) and the simulation stop
    the same trials after the same epochs."""
    change = {"sampler": "random", "num_samples": 8, "concurrency": 1, "max_epochs": 32,
              **scheduler}  # fmt: skip
    _, simulated = _watched(table, space, **change)
    meta = table["meta"]
    settings = {"dataset": meta["dataset"], "synthetic": True, "scale": meta["scale"],
                "final_seeds": 0, "cpus_per_trial": 1, "out": str(tmp_path / "tune"),
                "address": shared_ray["address"], **change}  # fmt: skip
    done = tune_replay(settings, TABLE, time_scale=0.001)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    live = read_curves(tmp_path / "tune")
    assert [len(t["scores"]) for t in live] == [t["epochs"] for t in simulated]
    assert any(t["epochs"] < len(nearest(table, t["config"])["scores"]) for t in simulated)
    assert [nearest(table, t["params"])["trial_id"] for t in live] == [
        nearest(table, t["config"])["trial_id"] for t in simulated
    ]


def test_without_patience_every_trial_runs_all_its_epochs(table, space, monkeypatch):
    """`random_full` (`--set train.patience=0`): a recorded curve cut by patience runs on to
    max epochs, charged at its last epoch time, repeating its last score."""
    from search.bench import simulate as sim
    from search.bench.replay_bench import NO_PATIENCE, methods, num_samples

    assert sim.without_patience([NO_PATIENCE]) and not sim.without_patience(["train.patience=5"])
    assert not sim.without_patience([])
    short = {"scores": [0.9, 0.7, 0.8, 0.85], "seconds": [1.0, 1.0, 1.0, 2.0]}
    answered = []
    monkeypatch.setattr(sim, "nearest", lambda t, config: answered.append(config) or short)
    max_t = int(table["meta"]["max_epochs"])
    change = methods(table)["random_full"]
    assert num_samples(table, change, 4 * max_t) == 6  # 4 full trials, with the margin
    full = simulate_search(table, space, _settings(table, concurrency=1, **change), 2 * max_t)
    assert len(answered) == 3  # two trials spent the budget; the third had just been drawn
    assert len(full) == 2 * max_t and full[-1][1] == 0.7
    answered.clear()
    cut = simulate_search(
        table, space, _settings(table, concurrency=1, sampler="random", scheduler="none"), 2 * max_t
    )
    assert len(answered) == 2 * max_t // 4 + 1 and len(cut) == 2 * max_t
    pad = sim._full_length(lambda config: short, 6)({})
    assert pad == {"scores": [0.9, 0.7, 0.8, 0.85, 0.85, 0.85], "seconds": [1.0] * 3 + [2.0] * 3}


class _ListSearcher:
    """Suggests the given configurations in order, then none; learns nothing."""

    def __init__(self, configs):
        self.configs = list(configs)

    def suggest(self, trial_id):
        return self.configs.pop(0) if self.configs else None

    def on_trial_result(self, trial_id, result):
        pass

    def on_trial_complete(self, trial_id, result=None, error=False):
        pass


def test_the_path_carries_the_quality_of_the_trial_that_holds_the_best_score():
    """A lucky first epoch makes a poor configuration the incumbent: the best score improves
    while the exported configuration's noiseless quality gets worse; a later, truly better
    configuration that does not beat that epoch never becomes the incumbent."""
    curves = {
        "a": {"scores": [0.5, 0.5], "seconds": [1, 1], "quality": 0.5},
        "b": {"scores": [0.3, 0.9], "seconds": [1, 1], "quality": 0.8},  # one lucky epoch
        "c": {"scores": [0.4, 0.4], "seconds": [1, 1], "quality": 0.4},
    }
    table = {"meta": {"mode": "min", "metric": "MAE", "max_epochs": 2}, "trials": []}
    searcher = _ListSearcher({"name": k} for k in curves)
    path = simulate(table, searcher, None, num_samples=3, budget=100, concurrency=1,
                    answer=lambda config: curves[config["name"]])  # fmt: skip
    assert [p[1] for p in path] == [0.5, 0.5, 0.3, 0.3, 0.3, 0.3]
    assert [p[2] for p in path] == [0.5, 0.5, 0.8, 0.8, 0.8, 0.8]
    plain = {k: {"scores": v["scores"], "seconds": v["seconds"]} for k, v in curves.items()}
    searcher = _ListSearcher({"name": k} for k in curves)
    path = simulate(table, searcher, None, num_samples=3, budget=100, concurrency=1,
                    answer=lambda config: plain[config["name"]])  # fmt: skip
    assert all(len(p) == 2 for p in path)  # an answer without qualities: (epochs, best) only
