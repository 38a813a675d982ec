"""`--scheduler onset` (`search.study.onset`) and `--scheduler rung` (`search.study.asha.
SingleRung`): their decisions, on trials as Tune hands them to a scheduler."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ray.tune.schedulers import TrialScheduler

from search.runtime.records import METRIC
from search.settings import Settings, default_onset
from search.study.asha import SingleRung
from search.study.driver import make_scheduler
from search.study.onset import OnsetStop, label_median_score

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


def _onset(mode: str = "min", epoch: int = 3, baseline: float = 1.0) -> OnsetStop:
    scheduler = OnsetStop(epoch=epoch, baseline=baseline)
    scheduler.set_search_properties(METRIC, mode)
    return scheduler


def _decisions(scheduler, trial_id: str, bests: list[float]) -> list[str]:
    """The scheduler's answer to each epoch's result of one trial (best score so far)."""
    trial = SimpleNamespace(trial_id=trial_id)
    scheduler.on_trial_add(None, trial)
    return [
        scheduler.on_trial_result(None, trial, {"epoch": e, METRIC: b})
        for e, b in enumerate(bests, 1)
    ]


def test_onset_stops_at_its_epoch_a_trial_no_better_than_the_baseline():
    scheduler = _onset(mode="min", epoch=3, baseline=1.0)
    assert _decisions(scheduler, "a", [1.2, 1.1, 1.0]) == [CONTINUE, CONTINUE, STOP]  # tie: stop
    assert _decisions(scheduler, "b", [1.2, 1.1, 0.99, 1.5]) == [CONTINUE] * 4  # learnt: kept
    assert _decisions(scheduler, "c", [1.2, 1.1, float("nan")]) == [CONTINUE, CONTINUE, STOP]


def test_onset_reads_the_mode_and_judges_once():
    scheduler = _onset(mode="max", epoch=2, baseline=0.5)
    assert _decisions(scheduler, "a", [0.4, 0.5]) == [CONTINUE, STOP]
    assert _decisions(scheduler, "b", [0.4, 0.6, 0.1]) == [CONTINUE] * 3  # only epoch 2 counts


def test_onset_refuses_an_unknown_baseline():
    with pytest.raises(ValueError, match="baseline"):
        OnsetStop(epoch=2, baseline=float("nan"))


def _dataset(name: str, task: str, train: list, valid: list) -> SimpleNamespace:
    splits = {k: SimpleNamespace(labels=torch.tensor(v)) for k, v in
              (("train", train), ("valid", valid))}  # fmt: skip
    return SimpleNamespace(spec=SimpleNamespace(name=name, task=task), splits=splits)


def test_label_median_score_is_a_constant_prediction_scored_by_the_datasets_metrics():
    regression = _dataset("mosi", "regression", [-1.0, 0.5, 2.0], [0.0, 1.0])
    assert label_median_score(regression, "MAE") == pytest.approx(0.5)  # |0-.5|, |1-.5|
    assert label_median_score(regression, "Corr") == 0.0
    intents = _dataset("mintrec", "classification", [2, 2, 1], [2, 1, 2, 2])
    assert label_median_score(intents, "acc") == pytest.approx(0.75)  # the majority class, 2


def test_the_default_onset_epoch_is_a_fifth_of_the_epochs_at_least_two():
    assert [default_onset(e) for e in (1, 4, 10, 32, 100)] == [1, 2, 2, 6, 20]
    scheduler = make_scheduler(Settings(scheduler="onset"), 32, onset_score=1.0)
    assert isinstance(scheduler, OnsetStop) and scheduler._epoch == 6
    with pytest.raises(ValueError, match="label-median"):
        make_scheduler(Settings(scheduler="onset"), 32, onset_score=None)


def _rung(grace: int = 2, rf: int = 4, max_t: int = 16) -> SingleRung:
    scheduler = SingleRung(
        seed=0, time_attr="epoch", max_t=max_t, grace_period=grace, reduction_factor=rf
    )
    scheduler.set_search_properties(METRIC, "min")
    return scheduler


def test_single_rung_keeps_the_top_fraction_at_its_one_rung_and_never_cuts_again():
    scheduler = _rung(grace=2, rf=4, max_t=16)
    # ASHA would have rungs at 2 and 8: one is left, at the grace period
    assert [m for m, _ in scheduler._brackets[0]._rungs] == [2]
    scores = np.linspace(0.1, 0.8, 8)  # ascending MAE: each newcomer is the worst so far
    kept = [_decisions(scheduler, f"t{i}", [s + 1, s])[-1] == CONTINUE
            for i, s in enumerate(scores)]  # fmt: skip
    assert kept == [True] + [False] * 7  # only the first (the best) is in the top quarter
    best = _decisions(scheduler, "best", [1.0, 0.05, *[0.9] * 14])  # poor after the rung
    assert best[:15] == [CONTINUE] * 15  # passed the rung: runs to the end (ASHA ends it at 16)


def test_single_rung_keeps_exactly_one_in_rf_of_a_shuffled_stream():
    scheduler = _rung(grace=1, rf=4, max_t=8)
    rng = np.random.default_rng(0)
    scores = rng.permutation(400) / 400.0
    kept = [_decisions(scheduler, f"t{i}", [s])[-1] == CONTINUE for i, s in enumerate(scores)]
    # asynchronous: the early trials meet few rivals, so a little above a quarter pass
    assert 0.25 <= np.mean(kept) <= 0.3
    built = make_scheduler(Settings(scheduler="rung", grace_period=3), 16, None)
    assert [m for m, _ in built._brackets[0]._rungs] == [3]
