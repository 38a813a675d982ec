"""Warm start without Ray: reading earlier searches, choosing and fitting their best
configurations, the marks they leave, and the bad inputs (exit status 2 before anything)."""

from __future__ import annotations

import math

import optuna
import pytest
from report_fixtures import SETTINGS, TINY_SPACE, make_records, write_search
from searchtest_util import FAST, run

from atsuko.errors import ConfigError
from search import layout
from search.runtime.records import WARM_START, build, write_csv
from search.settings import base_config
from search.study import warm_start as ws
from search.study.space import load_space
from search.study.study_mirror import StudyMirror, objective_name


@pytest.fixture(scope="module")
def base():
    return base_config(SETTINGS)[0]


@pytest.fixture(scope="module")
def tiny(base):
    return load_space(TINY_SPACE, base)


def _space(tmp_path, base, text: str):
    path = tmp_path / "space.yaml"
    path.write_text("params:\n" + text)
    return load_space(path, base)


def _ranked_complete():
    done = [r for r in make_records(12) if r.state == "COMPLETE"]
    return sorted(done, key=lambda r: r.score)


def test_seeds_are_the_sources_best_complete_trials_in_order(tmp_path, tiny):
    source = write_search(tmp_path / "src")
    warm = ws.plan([str(source)], 3, tiny, num_samples=10)
    best = _ranked_complete()
    assert len(warm.seeds) == 3
    assert warm.seeds[0].origin == f"{source.resolve()}:{best[0].trial_id}"
    assert warm.seeds[0].params == pytest.approx(best[0].params)
    scores = [s.score for s in warm.seeds]
    assert scores == sorted(scores) and scores[0] == pytest.approx(best[0].score)
    by_id = {r.trial_id: r for r in best}
    for seed in warm.seeds:
        trial = by_id[seed.origin.rsplit(":", 1)[1]]  # a COMPLETE trial of the source
        assert seed.params == pytest.approx(trial.params) and seed.metric == "MAE"
    text = ws.describe(warm)
    assert text.startswith("Warm start: 3 configuration(s)") and best[0].trial_id in text


def test_values_outside_the_new_space_are_clipped_or_dropped_and_said(tmp_path, base):
    source = write_search(tmp_path / "src")
    space = _space(
        tmp_path,
        base,
        "  num_bands: {type: int, low: 2, high: 3}\n"
        "  lr: {type: float, low: 1.0e-3, high: 2.0e-3, log: true}\n"
        "  hidden: {type: categorical, choices: [32]}\n"
        "  dropout: {type: float, low: 0.0, high: 0.5}\n",
    )
    warm = ws.plan([str(source)], 4, space, num_samples=10)
    assert warm.seeds
    for seed in warm.seeds:
        assert set(seed.params) <= {"num_bands", "lr"}  # hidden 16 is not offered: dropped
        assert 2 <= seed.params["num_bands"] <= 3 and 1e-3 <= seed.params["lr"] <= 2e-3
    text = ws.describe(warm)
    assert "clipped to 0.002" in text
    assert "hidden=16 dropped (this space offers 32)" in text
    assert "not in this space: batch_size, tau_band, tau_mod" in text
    assert "left to the sampler): dropout" in text


def test_near_identical_configurations_are_taken_once(tiny):
    a = {"num_bands": 2, "tau_band": 1.0, "tau_mod": 1.0, "lr": 3e-3, "hidden": 16}
    close = {**a, "lr": 3.05e-3}  # 0.7% of lr's log range away
    other = {**a, "num_bands": 3}
    source = ws.Source(
        "src",
        "MAE",
        "min",
        tuple(a),
        [ws.Candidate("src", f"t{i}", 0.1 * i, p) for i, p in enumerate((a, close, other))],
    )
    seeds, notes = ws.choose([source], 3, tiny)
    assert [s.origin for s in seeds] == ["src:t0", "src:t2"]
    assert "1 more trial(s) skipped" in notes[-1]
    assert ws.near(a, close, tiny) and not ws.near(a, other, tiny)
    assert not ws.near(a, {**a, "tau_mod": 3.0}, tiny)  # 24% of the log range


def test_several_sources_take_turns(tiny):
    def source(name, scores, tau_mod):
        cands = [
            ws.Candidate(
                name, f"t{i}", s, {"num_bands": 1, "lr": 1e-3 * (1 + i), "tau_mod": tau_mod}
            )
            for i, s in enumerate(scores)
        ]
        return ws.Source(name, "MAE", "min", ("num_bands", "lr", "tau_mod"), cands)

    mosi, sims = source("mosi", [0.5, 0.6], 1.0), source("sims", [0.1, 0.2], 5.0)
    seeds, _ = ws.choose([mosi, sims], 3, tiny)
    # turns, not scores: sims's 0.1 is not comparable with mosi's 0.5
    assert [s.origin for s in seeds] == ["mosi:t0", "sims:t0", "mosi:t1"]
    twin = source("twin", [0.1], 1.0)  # mosi's best again: near it, skipped
    seeds, _ = ws.choose([mosi, twin], 3, tiny)
    assert [s.origin for s in seeds] == ["mosi:t0", "mosi:t1"]


def test_fit_value_snaps_to_steps_and_matches_choices(base, tmp_path):
    space = _space(
        tmp_path,
        base,
        "  layers: {type: int, low: 1, high: 5, step: 2}\n"
        "  hidden: {type: categorical, choices: [32, 64]}\n",
    )
    layers, hidden = space.params
    assert ws.fit_value(layers, 2) == (3, "clipped") or ws.fit_value(layers, 2) == (1, "clipped")
    assert ws.fit_value(layers, 9) == (5, "clipped")
    assert ws.fit_value(layers, 3) == (3, None)
    assert ws.fit_value(hidden, 64) == (64, None)
    assert ws.fit_value(hidden, 64.0) == (64, None)
    assert ws.fit_value(hidden, 128) == (None, "dropped")
    assert ws.fit_value(layers, math.nan) == (None, "dropped")


def test_k_above_the_trials_seeds_only_as_many_as_run(tmp_path, tiny):
    warm = ws.plan([str(write_search(tmp_path / "src"))], 5, tiny, num_samples=2)
    assert len(warm.seeds) == 2
    assert "--warm-start-k 5 is above --num-samples 2" in ws.describe(warm)


def test_bad_sources_are_config_errors(tmp_path, base, tiny):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no search there"):
        ws.plan([str(empty)], 5, tiny, 10)
    unfinished = write_search(tmp_path / "unfinished", n=0, finished=False, running=2)
    with pytest.raises(ConfigError, match="no finished"):
        ws.plan([str(unfinished)], 5, tiny, 10)
    apart = _space(tmp_path, base, "  dropout: {type: float, low: 0.0, high: 0.5}\n")
    source = write_search(tmp_path / "src")
    with pytest.raises(ConfigError, match="no key in common"):
        ws.plan([str(source)], 5, apart, 10)


def test_a_seeded_trial_is_marked_in_trials_csv_and_study_db(tmp_path, tiny):
    params = {"num_bands": 1, "tau_mod": 1.0, "lr": 3e-3, "hidden": 16, "batch_size": 64}
    last = {"epoch": 2, "best_score": 0.5, "best_epoch": 2, "best_valid/MAE": 0.5, "done": True}
    seeded = build("a", {**params, WARM_START: "/runs/mosi:x_00001"}, last, status="TERMINATED")
    plain = build("b", params, last, status="TERMINATED")
    assert WARM_START not in seeded.params and seeded.warm_start == "/runs/mosi:x_00001"
    rows = write_csv([seeded, plain], tmp_path / layout.TRIALS, tiny.names)
    assert [r[WARM_START] for r in rows] == ["/runs/mosi:x_00001", ""]
    db = tmp_path / layout.STUDY
    StudyMirror(db, "atsuko-mosei", "min", tiny.distributions(), "MAE").sync([seeded, plain])
    study = optuna.load_study(study_name="atsuko-mosei", storage=f"sqlite:///{db}")
    attrs = {t.user_attrs["tune_trial_id"]: t.user_attrs.get(WARM_START) for t in study.trials}
    assert attrs == {"a": "/runs/mosi:x_00001", "b": None}
    assert study.metric_names == [objective_name("MAE")] == ["valid MAE"]


@pytest.mark.parametrize("case", ["empty", "unfinished", "apart"])
def test_bad_warm_start_exits_2_before_anything_starts(case, tmp_path):
    if case == "empty":
        source, extra, said = tmp_path / "empty", [], "no search there"
        source.mkdir()
    elif case == "unfinished":
        source = write_search(tmp_path / "src", n=0, finished=False, running=1)
        extra, said = [], "no finished (COMPLETE) trial"
    else:
        source = write_search(tmp_path / "src")
        space = tmp_path / "apart.yaml"
        space.write_text("params:\n  dropout: {type: float, low: 0.0, high: 0.5}\n")
        extra, said = ["--space", str(space)], "no key in common"
    out = tmp_path / "out"
    done = run(*FAST, *extra, "--warm-start", str(source), "--out", str(out), timeout=120)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert said in done.stderr and "error: --warm-start" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()  # nothing started


def test_warm_start_k_alone_and_with_a_sweep_are_refused(tmp_path):
    alone = run(*FAST, "--warm-start-k", "3", "--out", str(tmp_path / "a"), timeout=120)
    assert alone.returncode == 2 and "add it" in alone.stderr
    sweep = run(
        "--dataset", "mosi", "--synthetic", "--sensitivity", "lr",
        "--warm-start", str(tmp_path), "--out", str(tmp_path / "b"), timeout=120,
    )  # fmt: skip
    assert sweep.returncode == 2 and "--warm-start belongs to a search" in sweep.stderr


def test_the_report_history_draws_and_names_warm_started_trials(tmp_path, tiny):
    from search.analysis.importance import history
    from search.report import build_report
    from search.study.trials import load

    out = write_search(tmp_path / "warm")
    records = make_records(12)
    records[0].warm_start = "/runs/mosi:x_00003"
    write_csv(records, out / layout.TRIALS, tiny.names)
    (out / layout.STUDY).unlink()
    StudyMirror(out / layout.STUDY, "atsuko-mosei", "min", tiny.distributions()).sync(records)
    hist = history(load(out))
    assert sum(map(bool, hist["warm_start"])) == 1
    assert hist["warm_start"][0] == "/runs/mosi:x_00003"  # t000 finished first
    build_report(out)
    text = (out / layout.REPORT_MD).read_text()
    assert "1 warm-started trial(s) ran first with the best configurations of /runs/mosi" in text


def test_nothing_that_fits_starts_cold_and_says_so(tmp_path, base):
    space = _space(
        tmp_path,
        base,
        "  hidden: {type: categorical, choices: [32]}\n"
        "  dropout: {type: float, low: 0.0, high: 0.5}\n",
    )
    warm = ws.plan([str(write_search(tmp_path / "src"))], 3, space, num_samples=4)
    assert warm.seeds == [] and warm.pairs() == []
    text = ws.describe(warm)
    assert "no earlier configuration fits this space" in text and "hidden=16 dropped" in text
    assert "8 trial(s) skipped: none of their values fits this space" in text


def test_a_source_with_the_same_sampler_and_seed_is_pointed_out(tmp_path, tiny):
    source = write_search(tmp_path / "src")  # searched with tpe, seed 0
    same = ws.describe(ws.plan([str(source)], 2, tiny, 10, sampler=("tpe", 0)))
    assert "same --sampler tpe --seed 0" in same and "another --seed" in same
    other = ws.describe(ws.plan([str(source)], 2, tiny, 10, sampler=("tpe", 3)))
    assert "same --sampler" not in other
