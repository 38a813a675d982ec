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
from ray.tune.search import ConcurrencyLimiter
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
        value, epoch = result.get(self.metric), result.get("epoch")
        if value is None or epoch is None or not math.isfinite(float(value)):
            return
        rerun = self._reruns().get(trial_id)
        if rerun is not None:  # told FAIL already: kept for the trial added when it completes
            rerun.setdefault(int(epoch), float(value))
            return
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        reported = self.__dict__.setdefault("_reported_epochs", {}).setdefault(trial_id, set())
        if int(epoch) not in reported:  # a retried trial repeats no epoch, but be safe
            self._ot_trials[trial_id].report(float(value), int(epoch))
            reported.add(int(epoch))

    def _reruns(self) -> dict[str, dict[int, float]]:
        """Trials told FAIL, any of which `--resume` may run again (those whose worker or node
        was lost): trial id -> the per-epoch values of that rerun (a searcher pickled before
        this kept none)."""
        return self.__dict__.setdefault("_failed_runs", {})

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._reruns():
            if not error and result:
                self._tell_rerun(trial_id, result)
            return
        if trial_id not in self._ot_trials:  # a restored searcher older than the trial list
            return
        if trial_id in self._completed_trials:
            # told already: Tune completes a trial twice only when `--resume` ran it again after
            # it failed, a rerun told above once (or not at all by a searcher pickled before
            # reruns were kept); the parent would only warn of an "additional completion"
            return
        if error:
            self._reruns()[trial_id] = {}
        if result and result.get(STOPPED_EARLY) and not error:
            self._report(trial_id, result)  # the result ASHA stopped on never reached us
            self._tell_ended(trial_id, TrialState.PRUNED)
            return
        super().on_trial_complete(trial_id, result=result, error=error)

    def _tell_ended(self, trial_id: str, state: TrialState) -> None:
        """Tell Optuna that the trial ended in `state` (no value); as the parent, a failure to
        record it is a warning, never the search's end."""
        try:
            self._ot_study.tell(self._ot_trials[trial_id], state=state)
        except Exception as exc:  # noqa: BLE001 - as the parent: never stop the search
            log.warning("could not record trial %s as %s: %s", trial_id, state.name, exc)
        self._completed_trials.add(trial_id)

    def forget_unsaved(self, saved: set[str]) -> list[str]:
        """Tell failed the unfinished trials this searcher made that the restored trial list
        (`saved` ids) lacks (`search.study.restored_search`); returns their ids."""
        lost = sorted(
            t for t in self._ot_trials if t not in saved and t not in self._completed_trials
        )
        for trial_id in lost:
            self._tell_ended(trial_id, TrialState.FAIL)
        return lost

    def _tell_rerun(self, trial_id: str, result: dict[str, Any]) -> None:
        """A trial told FAIL that `--resume` ran again (`search.runtime.errored`) and that has
        now ended: Optuna cannot tell a finished trial twice, so the study gets a new trial with
        the same parameters, COMPLETE or PRUNED with the rerun's values, for TPE to learn from.
        Told from its completion alone (`RerunLimiter` passes it on), which comes once and
        says whether ASHA stopped it (`stopped_early`: PRUNED); its results record the values."""
        values = self._reruns().pop(trial_id, None)
        value = result.get(self.metric)
        if values is None or value is None or not math.isfinite(float(value)):
            return
        values.setdefault(int(result.get("epoch", max(values, default=0))), float(value))
        failed = self._ot_trials[trial_id]
        pruned = bool(result.get(STOPPED_EARLY))
        try:
            self._ot_study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                    value=None if pruned else float(value),
                    params=failed.params,
                    distributions=failed.distributions,
                    intermediate_values=values,
                    user_attrs={**failed.user_attrs, "rerun_of": failed.number},
                )
            )
        except Exception as exc:  # noqa: BLE001 - as the parent: never stop the search
            log.warning("could not record the rerun of trial %s: %s", trial_id, exc)


class RerunLimiter(ConcurrencyLimiter):
    """Tune's concurrency limiter (what `max_concurrent_trials` wraps a searcher in), which
    passes on the completion of a trial no longer live: one it saw fail and that `--resume`
    ran again (`search.runtime.errored`). Tune's own drops it, so the searcher never heard how
    such a rerun ended."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if self._limit_concurrency and not self.batch and trial_id not in self.live_trials:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
            return
        super().on_trial_complete(trial_id, result=result, error=error)
