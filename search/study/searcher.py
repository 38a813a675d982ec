"""Optuna inside Ray Tune: the sampler, and trials stopped by ASHA recorded as pruned.

Ray's `OptunaSearch` tells Optuna that a trial ASHA stopped early is COMPLETE, with its partial
score as the value; TPE then models those partial scores as finished ones. Here such a trial
(its last result carries `stopped_early`, set by `callbacks.SearchOutputs`) is told as PRUNED
with its intermediate values, the way Optuna's own pruners record it. Intermediate values are
keyed by epoch, so a trial resumed from a checkpoint keeps a consistent history. The study stays
in memory (it is pickled with the experiment state for `--resume`).

A warm-started search (`search.study.warm_start`) puts its seeded configurations in the study's
queue (`enqueue_trial`) before the first trial: Optuna hands them out first, as ordinary trials
of this search, and no earlier score is told to the sampler. The queue is part of the pickled
study, so `--resume` runs each seeded configuration once. A seeded trial's Tune config carries
its origin (`warm_start`) beside the parameters.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from search.runtime.records import STOPPED_EARLY, WARM_START

SAMPLERS = ("tpe", "tpe_rungs", "random", "cmaes")
TPE_STARTUP = 10  # TPE's first trials are random draws (Optuna's default), seeded as `random`'s
log = logging.getLogger(__name__)


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, grouped for conditional spaces; `tpe_rungs`: fitted on the trials at
    one epoch, `search.study.rung_tpe`), random, or CMA-ES; all seeded."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if name in ("tpe", "tpe_rungs"):
        from search.study.rung_tpe import RungTPESampler

        tpe = RungTPESampler if name == "tpe_rungs" else optuna.samplers.TPESampler
        return tpe(
            seed=seed,
            n_startup_trials=TPE_STARTUP,
            multivariate=True,
            group=True,
            constant_liar=True,
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        # CMA-ES handles the numeric parameters jointly; categorical and conditional ones fall
        # back to the (seeded) random sampler
        return optuna.samplers.CmaEsSampler(
            seed=seed,
            independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False,
        )
    raise ValueError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


class PrunedAwareOptunaSearch(OptunaSearch):
    """`OptunaSearch` whose scheduler-stopped trials are PRUNED, with per-epoch values, and
    which runs `seeds` ((parameters, origin) pairs) first."""

    def __init__(self, *args: Any, seeds: list[tuple[dict[str, Any], str]] = (), **kw: Any):
        self._seeds = [(dict(params), origin) for params, origin in seeds]
        super().__init__(*args, **kw)

    def _setup_study(self, mode: str | list) -> None:
        super()._setup_study(mode)
        for params, origin in self._seeds:  # only when the search starts: never on restore
            self._ot_study.enqueue_trial(params, user_attrs={WARM_START: origin})

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        trial = self._ot_trials.get(trial_id)
        origin = trial.user_attrs.get(WARM_START) if trial is not None else None
        if isinstance(config, dict) and origin:
            config[WARM_START] = origin
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._report(trial_id, result)

    def _report(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        value, epoch = result.get(self.metric), result.get("epoch")
        if value is None or epoch is None or not math.isfinite(float(value)):
            return
        reported = self.__dict__.setdefault("_reported_epochs", {}).setdefault(trial_id, set())
        if int(epoch) not in reported:  # a retried trial repeats no epoch, but be safe
            self._ot_trials[trial_id].report(float(value), int(epoch))
            reported.add(int(epoch))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if result and result.get(STOPPED_EARLY) and not error:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            self._report(trial_id, result)  # the result ASHA stopped on never reached us
            try:
                self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
            except Exception as exc:  # noqa: BLE001 - as the parent: never stop the search
                log.warning("could not record trial %s as pruned: %s", trial_id, exc)
            self._completed_trials.add(trial_id)
            return
        super().on_trial_complete(trial_id, result=result, error=error)
