"""The surrogate replay (a fitted learning-curve family per configuration), the compute-ratio
measures with their censoring, and the `tables` objects of `--json`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from search.bench.curve_table import TABLE, load_table, write_table
from search.bench.replay_bench import BASELINES
from search.bench.replay_compute import (
    CAP,
    censored_quartiles,
    compute_ratio,
    epochs_to_quality,
    quality_targets,
)
from search.bench.surrogate import (
    Surrogate,
    family,
    fit_curve,
    heldout_rank_corr,
    noiseless_table,
    patience_stop,
    seed_spread,
)

SPACE = [
    {"name": "x", "kind": "float", "low": 0.001, "high": 1.0, "log": True, "choices": []},
    {"name": "act", "kind": "categorical", "low": None, "high": None, "log": False,
     "choices": ["relu", "gelu"]},
]  # fmt: skip


def _family_table(n: int = 60, noise: float = 0.01) -> dict:
    """Curves of the family: start 1.2, rate 2, final 0.3 + 0.5 * (position of log x) (+0.2
    with gelu), plus Gaussian noise, cut by patience 3 over 20 epochs."""
    rng = np.random.default_rng(0)
    trials = []
    for k in range(n):
        u = rng.uniform()
        params = {"x": float(10 ** (-3 + 3 * u)), "act": ["relu", "gelu"][k % 2]}
        final = 0.3 + 0.5 * u + 0.2 * (k % 2)
        scores = family(1.2, final, 2.0, 20) + noise * rng.standard_normal(20)
        scores = patience_stop(scores, 3, "min")
        scores = [float(s) for s in scores]
        trials.append(
            {
                "trial_id": f"t{k}",
                "params": params,
                "scores": scores,
                "seconds": [0.5] * len(scores),
            }
        )
    meta = {"space": SPACE, "mode": "min", "max_epochs": 20, "patience": 3}
    return {"meta": meta, "trials": trials}


def test_the_seed_spread_is_pooled_over_the_repeated_configurations():
    def trial(*bests):
        first, *others = [{"seed": 1111 + k, "scores": [b + 1, b], "seconds": [1, 1]}
                          for k, b in enumerate(bests)]  # fmt: skip
        return {"params": {}, "scores": first["scores"], "repeats": others}

    table = {"meta": {"mode": "min"}, "trials": [trial(1.0, 1.2), trial(0.5, 0.7), trial(3.0)]}
    assert seed_spread(table) == pytest.approx(math.sqrt(0.04 / 2))
    assert seed_spread({"meta": {"mode": "min"}, "trials": [trial(1.0), trial(2.0)]}) is None


def test_a_second_seed_moves_whole_generated_curves_by_the_measured_spread():
    """Repeats offset by +-0.05 from curves with almost no noise within them: the generated
    curves' best scores spread over replay seeds as the repeats did between training seeds."""
    table = _family_table(noise=0.001)
    rng = np.random.default_rng(1)
    for t in table["trials"][:30]:
        shift = 0.05 * rng.choice([-1.0, 1.0])
        t["repeats"] = [{"seed": 1112, "scores": [s + shift for s in t["scores"]],
                         "seconds": t["seconds"]}]  # fmt: skip
    surrogate = Surrogate(table)
    assert surrogate.seed_noise == pytest.approx(seed_spread(table)) and surrogate.seed_noise > 0.02
    params = table["trials"][0]["params"]
    bests = [min(surrogate.curve(params, seed)["scores"]) for seed in range(300)]
    assert np.std(bests) == pytest.approx(surrogate.seed_noise, rel=0.25)
    plain = Surrogate(_family_table(noise=0.001))
    assert plain.seed_noise == 0.0
    assert np.std([min(plain.curve(params, seed)["scores"]) for seed in range(300)]) < 0.01


def test_a_curve_of_the_family_is_fitted_back():
    start, final, rate, residual = fit_curve(list(family(1.0, 0.4, 3.0, 25)))
    assert start == pytest.approx(1.0, abs=0.02) and final == pytest.approx(0.4, abs=0.02)
    assert rate == pytest.approx(3.0, rel=0.1) and residual < 0.01


def test_patience_ends_a_curve_patience_epochs_after_its_last_improvement():
    scores = np.array([1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.8, 0.9, 0.6])
    assert list(patience_stop(scores, 3, "min")) == [1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.8, 0.9]
    assert len(patience_stop(scores, 3, "max")) == 4  # 1.0 is never beaten when maximising
    assert len(patience_stop(scores, 9, "min")) == len(scores)  # no stop: the whole curve


def test_the_surrogate_reproduces_the_family_it_was_given():
    table = _family_table()
    surrogate = Surrogate(table)
    for u, act, extra in ((0.5, "relu", 0.0), (0.2, "gelu", 0.2)):
        mean, noise, seconds = surrogate.mean({"x": 10 ** (-3 + 3 * u), "act": act})
        assert np.abs(mean - family(1.2, 0.3 + 0.5 * u + extra, 2.0, 20)).max() < 0.08
        assert noise < 0.03 and seconds == pytest.approx(0.5)
    assert surrogate.noise == pytest.approx(0.01, rel=0.5)  # measured from the residuals
    params = {"x": 0.03, "act": "relu"}
    a, b = surrogate.curve(params, seed=1), surrogate.curve(params, seed=2)
    assert a == surrogate.curve(params, seed=1) and a["scores"] != b["scores"]
    scores = a["scores"]
    best = scores.index(min(scores))
    assert len(scores) == 20 or len(scores) == best + 1 + 3  # the patience stop, as recorded
    full = surrogate.curve(params, seed=1, patience=False)["scores"]  # random_full's trials
    assert len(full) == 20 and full[: len(scores)] == scores


def test_a_generated_curve_carries_its_configurations_noiseless_quality():
    """The quality is the best of the mean curve: the same for every replay seed while the
    noisy bests spread, close to the family's own final value, and what the noiseless table
    scores each recorded configuration by."""
    table = _family_table(noise=0.02)
    surrogate = Surrogate(table)
    params = table["trials"][4]["params"]
    draws = [surrogate.curve(params, seed) for seed in range(20)]
    assert len({d["quality"] for d in draws}) == 1
    assert len({min(d["scores"]) for d in draws}) == 20
    assert np.mean([min(d["scores"]) for d in draws]) < draws[0]["quality"]  # luck lowers it
    assert draws[0]["quality"] == pytest.approx(min(surrogate.mean(params)[0]))
    quiet = noiseless_table(table, surrogate)
    assert quiet["trials"][4]["scores"] == [draws[0]["quality"]]
    truth = [0.3 + 0.5 * (math.log10(t["params"]["x"]) + 3) / 3 + 0.2 * (k % 2)
             for k, t in enumerate(table["trials"])]  # fmt: skip
    got = [t["scores"][0] for t in quiet["trials"]]
    assert np.corrcoef(got, truth)[0, 1] > 0.9


def test_the_held_out_rank_correlation_tells_a_learnable_table_from_noise():
    table = _family_table()
    assert heldout_rank_corr(table) > 0.8
    rng = np.random.default_rng(1)
    for t in table["trials"]:  # the configuration no longer tells the score
        t["params"] = {"x": float(10 ** rng.uniform(-3, 0)), "act": "relu"}
    assert abs(heldout_rank_corr(table)) < 0.5


def test_compute_ratio_is_censored_beyond_cap_times_the_budget():
    reference = [(e, 1.0 - 0.01 * e) for e in range(1, 101)]  # reaches 0.5 at epoch 50
    assert compute_ratio(reference, 0.5, 10, "min") == pytest.approx(5.0)
    assert compute_ratio(reference, 0.5, 5, "min") == math.inf  # 50 > CAP x 5 epochs
    assert compute_ratio(reference, -0.5, 100, "min") == math.inf  # never reached
    assert compute_ratio(reference, math.nan, 10, "min") == math.inf
    assert epochs_to_quality(reference, 0.5, 49, "min") == math.inf
    assert epochs_to_quality(reference, 0.5, 50, "min") == 50.0


def test_censored_quartiles_mark_what_is_only_a_lower_bound():
    out = censored_quartiles([1.0, 2.0, math.inf, math.inf], CAP)
    assert out["q"] == pytest.approx([1.75, 5.0, 8.0])
    assert out["censored"] == [False, True, True]
    assert censored_quartiles([3.0, 1.0, 2.0], CAP) == {"q": [1.5, 2.0, 2.5],
                                                       "censored": [False] * 3}  # fmt: skip


def test_quality_targets_are_the_tables_top_scores():
    table = {"meta": {"mode": "max"}, "trials": [{"scores": [0, s]} for s in range(101)]}
    assert quality_targets(table) == {"top1": pytest.approx(99.0), "top5": pytest.approx(95.0)}


@pytest.mark.slow
def test_both_replays_give_the_tables_json_and_report(tmp_path):
    from search.bench.replay_bench import replay_section
    from search.bench.replay_report import replay_details

    full = load_table(TABLE)
    path, other = tmp_path / "slice.json.gz", tmp_path / "other.json.gz"
    write_table(path, full["meta"], full["trials"][:20])
    write_table(other, full["meta"], full["trials"][20:40])
    r = replay_section(
        path, tmp_path / "work", 1, (1,), compute_seeds=1, compute_budgets=(1,), held_out=other
    )
    assert r["default_method"] in r["replay_compute"]["surrogate"]["1"]
    assert set(r["replay_compute"]) == {"nearest", "surrogate", "surrogate_noiseless"}
    for replay in r["replay_compute"].values():  # the onset score: from the regenerated data
        assert {"tpe_rung", "tpe_onset", "tpe_rungs_asha", "random"} <= set(replay["1"])
        assert len(replay["1"]["random"]["final_regrets"]) == 1  # one per seed, for pairing
    entry, held = r["tables"]
    assert entry["name"] == "slice" and entry["role"] == "tuning"
    assert held["name"] == "other" and held["role"] == "held_out"
    assert set(r["held_out_compute"]) == {"nearest", "surrogate", "surrogate_noiseless"}
    assert held["seed_spread"] is None and held["repeated_configs"] == 0  # one seed each
    for e in (entry, held):  # no 64-trial budget here: the ratio target is not measured
        assert e["target"]["compute_ratio"] is None and isinstance(e["target"]["regret"], bool)
        assert set(e["regret_median"]["1"]) == {"0.1", "0.25", "0.5", "1.0"}
        assert set(e["random_regret_median"]) == {"1"}
        mine, random = e["regret_median"]["1"], e["random_regret_median"]["1"]
        assert e["target"]["regret"] == all(mine[f] <= random[f] for f in mine)
        quiet = e["noiseless"]
        assert set(quiet["regret_median"]) == set(quiet["random_regret_median"]) == {"1"}
        assert set(quiet["regret_median"]["1"]) == {"0.1", "0.25", "0.5", "1.0"}
    quiet = r["replay_compute"]["surrogate_noiseless"]["1"]["random"]
    assert "compute_ratio" not in quiet and len(quiet["final_regrets"]) == 1  # regret only
    assert set(entry) >= {"compute_ratio_median", "compute_ratio_iqr", "surrogate_rank_corr"}
    assert set(entry["compute_ratio_median"]) == set(entry["compute_ratio_iqr"]) == {"1"}
    ratio = entry["compute_ratio_median"]["1"]
    assert 0 < ratio <= CAP and len(entry["compute_ratio_iqr"]["1"]) == 2
    assert -1.0 <= entry["surrogate_rank_corr"] <= 1.0
    text = "\n".join(replay_details(r))
    assert "surrogate replay, budget 1 full trials" in text and "nearest replay" in text
    assert "surrogate_noiseless replay, budget 1 full trials" in text
    assert "noiseless final regret by budget" in text
    assert "held_out table other" in text and "at 64 trials not measured" in text
    assert "one seed per configuration" in text


def test_one_table_replays_alone_from_the_command_line(tmp_path, capsys):
    from search.bench import replay_one

    full = load_table(TABLE)
    path = tmp_path / "slice.json.gz"
    write_table(path, full["meta"], full["trials"][:20])
    with pytest.raises(SystemExit) as done:
        replay_one.run_cli(replay_one.main, [str(path), "--seeds", "1", "--budgets", "1", "--json"])
    assert done.value.code == 0
    out = json.loads(capsys.readouterr().out)
    (entry,) = out["tables"]
    assert entry["name"] == "slice" and entry["role"] == "held_out"
    assert entry["method"] == out["default_method"]
    assert set(out["replay_compute"]) == {"nearest", "surrogate", "surrogate_noiseless"}
    assert set(entry["compute_ratio_median"]) == {"1"}
    with pytest.raises(SystemExit) as done:  # the report's section 5s
        replay_one.run_cli(replay_one.main, [str(path), "--seeds", "1", "--budgets", "1"])
    assert done.value.code == 0 and "held_out table slice" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        replay_one.run_cli(replay_one.main, [str(tmp_path / "none.json.gz")])
    assert done.value.code == 2 and "no curve table" in capsys.readouterr().err


def test_one_table_replays_chosen_methods_on_the_surrogate_alone(tmp_path, capsys):
    from search.bench import replay_one

    full = load_table(TABLE)
    path = tmp_path / "slice.json.gz"
    write_table(path, full["meta"], full["trials"][:20])
    argv = [str(path), "--seeds", "1", "--budgets", "1", "--json", "--surrogate-only"]
    with pytest.raises(SystemExit) as done:
        replay_one.run_cli(replay_one.main, [*argv, "--methods", "tpe"])
    assert done.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["replay_compute"]) == {"surrogate", "surrogate_noiseless"}  # no nearest
    ran = set(out["replay_compute"]["surrogate"]["1"])
    assert ran == {"tpe", out["default_method"], "random", "random_full"}  # + default, baselines
    assert out["tables"][0]["method"] == out["default_method"]
    with pytest.raises(SystemExit) as done:
        replay_one.run_cli(replay_one.main, [*argv, "--methods", "tpe", "bogus"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "--methods: unknown bogus" in err and "tpe_asha" in err


def test_one_table_replays_on_the_nearest_curves_alone(tmp_path, capsys):
    from search.bench import replay_one

    full = load_table(TABLE)
    path = tmp_path / "slice.json.gz"
    write_table(path, full["meta"], full["trials"][:20])
    argv = [str(path), "--seeds", "1", "--budgets", "1", "--methods", "tpe", "--nearest-only"]
    with pytest.raises(SystemExit) as done:
        replay_one.run_cli(replay_one.main, [*argv, "--json"])
    assert done.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["replay_compute"]) == {"nearest"} and out["tables"] == []
    assert set(out["replay_compute"]["nearest"]["1"]) == {"tpe", out["default_method"], *BASELINES}
    with pytest.raises(SystemExit) as done:  # the report: the nearest replay's rows, no verdict
        replay_one.run_cli(replay_one.main, argv)
    text = capsys.readouterr().out
    assert (
        done.value.code == 0
        and "5s. replays nearest," in text
        and "nearest replay, budget 1" in text
    )
    assert "held_out table" not in text
    with pytest.raises(SystemExit) as done:
        replay_one.run_cli(replay_one.main, [*argv, "--surrogate-only"])
    assert done.value.code == 2 and "not allowed with" in capsys.readouterr().err
