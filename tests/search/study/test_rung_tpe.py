"""`--sampler tpe_rungs` (`search.study.rung_tpe`): TPE ranks the trials at one epoch."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.samplers._tpe.sampler import _split_trials
from optuna.trial import TrialState, create_trial

from search.study.rung_tpe import RungTPESampler, _AtRankingEpoch, at_epoch, ranking_epoch
from search.study.searcher import make_sampler

X = {"x": FloatDistribution(0.0, 1.0)}


def _trial(x: float, curve: list[float], state: TrialState) -> optuna.trial.FrozenTrial:
    """A trial as the search tells it: best score so far at each epoch (1-based)."""
    values = {e: v for e, v in enumerate(curve, 1)}
    value = curve[-1] if state == TrialState.COMPLETE else None
    return create_trial(params={"x": x}, distributions=X, value=value, state=state,
                        intermediate_values=values)  # fmt: skip


def _study() -> optuna.Study:
    """Minimising: two trials ran to the end, poorly; four were stopped at the rung (epoch 2),
    of which two were the best there; one was stopped at epoch 1."""
    study = optuna.create_study(direction="minimize")
    for x, curve, state in (
        (0.9, [1.0, 0.9, 0.8, 0.8], TrialState.COMPLETE),
        (0.8, [1.0, 0.95, 0.85, 0.8], TrialState.COMPLETE),
        (0.1, [0.6, 0.5], TrialState.PRUNED),
        (0.2, [0.7, 0.55], TrialState.PRUNED),
        (0.5, [1.1, 1.0], TrialState.PRUNED),
        (0.6, [1.2, 1.1], TrialState.PRUNED),
        (0.7, [1.3], TrialState.PRUNED),
    ):
        study.add_trial(_trial(x, curve, state))
    return study


def test_the_ranking_epoch_is_the_latest_that_enough_trials_reached():
    trials = _study().trials
    assert ranking_epoch(trials, 2) == 2  # the two complete ones reached it ... and 4 more
    assert ranking_epoch(trials, 6) == 2
    assert ranking_epoch(trials, 7) == 1
    assert ranking_epoch(trials, 8) is None


def test_tpe_sees_every_trial_at_the_ranking_epoch_and_the_best_there_are_good():
    study = _study()
    plain_below, _ = _split_trials(study, study.trials, 2)
    assert sorted(t.params["x"] for t in plain_below) == [0.8, 0.9]  # Optuna: complete first
    view = _AtRankingEpoch(study, 3)
    trials = view._get_trials(deepcopy=False, states=None)
    below, _ = _split_trials(view, trials, 2)
    assert sorted(t.params["x"] for t in below) == [0.1, 0.2]  # the best at epoch 2
    assert at_epoch(study.trials[0], 2).value == 0.9 and study.trials[0].value == 0.8
    assert at_epoch(study.trials[6], 2).state == TrialState.PRUNED  # stopped before it
    assert study.trials[2].state == TrialState.PRUNED  # the study itself is unchanged


def test_the_sampler_suggests_from_the_view_seeded():
    def suggest(seed: int) -> list[float]:
        study = _study()
        study.sampler = make_sampler("tpe_rungs", seed)
        study.sampler._n_startup_trials = 0  # model from the first suggestion
        return [study.ask({"x": X["x"]}).params["x"] for _ in range(3)]

    assert isinstance(make_sampler("tpe_rungs", 0), RungTPESampler)
    assert suggest(1) == suggest(1) and all(0.0 <= x <= 1.0 for x in suggest(1))
