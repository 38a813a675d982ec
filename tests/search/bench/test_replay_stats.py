"""`search.bench.replay_stats`: speedup, normalised regret, ranks, the table's first rung."""

from __future__ import annotations

import math

import pytest

from search.bench.replay_stats import (
    best_at,
    grace_candidates,
    mean_ranks,
    quartiles,
    ranks,
    regret,
    regret_scale,
    speedup,
)


def test_speedup_counts_epochs_to_random_searchs_own_best():
    random = [(1, 1.0), (2, 0.8), (3, 0.8), (4, 0.5), (5, 0.5), (6, 0.5)]  # 0.5 after 4
    fast = [(1, 0.9), (2, 0.5), (3, 0.4)]  # 0.5 after 2
    never = [(1, 0.9), (2, 0.9)]
    assert speedup(random, fast, "min", budget=6) == 2.0
    assert speedup(random, never, "min", budget=8) == 0.5  # never reached: the whole budget
    assert speedup(random, random, "min", budget=6) == 1.0


def test_regret_is_normalised_by_the_tables_best_and_median():
    table = {
        "meta": {"mode": "min"},
        "trials": [{"scores": [1.0, 0.2]}, {"scores": [0.6]}, {"scores": [1.0, 0.9, 1.0]}],
    }
    best, median = regret_scale(table)
    assert (best, median) == (0.2, 0.6)
    assert regret(0.2, best, median) == 0.0
    assert regret(0.6, best, median) == pytest.approx(1.0)
    assert regret(0.4, best, median) == pytest.approx(0.5)
    assert math.isnan(regret(math.nan, best, median))
    assert best_at([(1, 0.9), (3, 0.4)], 2) == 0.9 and math.isnan(best_at([(2, 0.9)], 1))


def test_ranks_share_ties_and_average_over_seeds():
    assert ranks([0.3, 0.1, 0.3]) == [2.5, 1.0, 2.5]
    got = mean_ranks({"a": [0.0, 0.5], "b": [0.1, 0.2], "c": [math.nan, 0.3]})
    assert got == {"a": 2.0, "b": 1.5, "c": 2.5}  # a nan regret ranks last
    assert quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 3.0, 4.0)


def test_first_rung_is_the_earliest_epoch_that_ranks_like_the_end():
    # scores at epoch 1 are unrelated to the final ranking; from epoch 2 on they agree
    finals = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    noise = [0.9, 0.75, 0.95, 0.8, 0.85, 0.7]
    trials = [
        {"scores": [n, f + 0.05, f + 0.01, f, f] + [f] * 11}
        for n, f in zip(noise, finals, strict=False)
    ]
    table = {"meta": {"mode": "min", "max_epochs": 16}, "trials": trials}
    grace, corr = grace_candidates(table)
    assert grace == 2 and corr[2] == pytest.approx(1.0) and corr[1] < 0.7
