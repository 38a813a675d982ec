"""Mirror the search's trials into an SQLite Optuna study (`study.db`), idempotently.

The searcher keeps its own study in memory (an SQLite-backed OptunaSearch crashes on restore in
Ray 2.60), so this file is a copy for people and tools: `optuna.load_study(study_name=...,
storage="sqlite:///study.db")` and `optuna-dashboard sqlite:///study.db` open it. Each finished
trial is added once, keyed by its Tune trial id (user attribute `tune_trial_id`); `sync` makes
the file match a list of records exactly, rebuilding it atomically if anything disagrees (e.g.
trials re-run after a driver was killed). The study's objective is named after the selection
metric (`valid MAE`: Optuna's metric names, which optuna-dashboard shows), and a warm-started
trial carries its origin as the user attribute `warm_start`.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search.runtime.records import WARM_START, TrialRecord

# trials.csv state -> Optuna state; STOPPED (time budget) is partial, so PRUNED, never COMPLETE
STATE_MAP = {
    "COMPLETE": TrialState.COMPLETE,
    "PRUNED": TrialState.PRUNED,
    "STOPPED": TrialState.PRUNED,
    "ERROR": TrialState.FAIL,
}


def optuna_state(r: TrialRecord) -> TrialState:
    """The Optuna state a record is stored in (a COMPLETE trial without a finite score: FAIL)."""
    state = STATE_MAP[r.state]
    if state == TrialState.COMPLETE and not math.isfinite(r.score):
        return TrialState.FAIL
    return state


def study_name(dataset: str) -> str:
    return f"atsuko-{dataset}"


def objective_name(metric: str) -> str:
    """The study's objective as optuna-dashboard shows it, e.g. `valid MAE`."""
    return f"valid {metric}"


class StudyMirror:
    """Writes records into `path` as study `name` (direction from the selection mode)."""

    def __init__(
        self,
        path: str | Path,
        name: str,
        mode: str,
        distributions: dict[str, optuna.distributions.BaseDistribution],
        metric: str | None = None,
    ):
        self.path = Path(path)
        self.name = name
        self.direction = "minimize" if mode == "min" else "maximize"
        self.distributions = distributions
        self.metric = metric  # the selection metric: names the objective

    def _open(self, path: Path) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
        storage = optuna.storages.RDBStorage(f"sqlite:///{path.resolve()}")
        study = optuna.create_study(
            storage=storage, study_name=self.name, direction=self.direction, load_if_exists=True
        )
        metric = getattr(self, "metric", None)  # absent in a mirror pickled before it existed
        if metric and study.metric_names != [objective_name(metric)]:
            with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([objective_name(metric)])
        return study, storage

    @staticmethod
    def _close(storage: optuna.storages.RDBStorage) -> None:
        storage.engine.dispose()  # release the file (it may be replaced by `sync`)

    def _frozen(self, r: TrialRecord) -> optuna.trial.FrozenTrial:
        state = optuna_state(r)
        params = {k: v for k, v in r.params.items() if k in self.distributions}
        intermediate = {int(e): v for e, v in r.scores.items() if math.isfinite(v)}
        value = None
        if state == TrialState.COMPLETE:
            value = r.score
        elif state == TrialState.PRUNED and intermediate:
            value = intermediate[max(intermediate)]  # as Optuna's tell() does for pruned trials
        attrs = {
            "tune_trial_id": r.trial_id,
            "tune_state": r.state,
            "epochs": r.epochs,
            "best_epoch": r.best_epoch,
            "node_ip": r.node_ip,
            "node_id": r.node_id,
            "valid": {k: v for k, v in r.valid.items() if math.isfinite(v)},
        }
        if r.error:
            attrs["error"] = r.error
        if r.warm_start:
            attrs[WARM_START] = r.warm_start
        return optuna.trial.create_trial(
            state=state,
            value=value,
            params=params,
            distributions={k: self.distributions[k] for k in params},
            user_attrs=attrs,
            intermediate_values=intermediate or None,
        )

    @staticmethod
    def _ids(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
        return {t.user_attrs.get("tune_trial_id"): t for t in study.get_trials(deepcopy=False)}

    def add(self, records: list[TrialRecord]) -> int:
        """Add each finished record not yet in the study; returns how many were added."""
        todo = [r for r in records if r.state in STATE_MAP]
        if not todo:
            return 0
        study, storage = self._open(self.path)
        try:
            known = self._ids(study)
            added = 0
            for r in todo:
                if r.trial_id not in known:
                    study.add_trial(self._frozen(r))
                    added += 1
            return added
        finally:
            self._close(storage)

    def matches(self, records: list[TrialRecord]) -> bool:
        """Whether the file holds exactly the finished records, in the same states."""
        want = {r.trial_id: optuna_state(r) for r in records if r.state in STATE_MAP}
        if not self.path.exists():
            return not want
        study, storage = self._open(self.path)
        try:
            have = {k: t.state for k, t in self._ids(study).items()}
        finally:
            self._close(storage)
        return have == want

    def sync(self, records: list[TrialRecord]) -> None:
        """Make the file match `records`: add what is missing; rebuild if anything disagrees."""
        self.add(records)
        if self.matches(records):
            return
        tmp = self.path.with_suffix(".db.tmp")
        tmp.unlink(missing_ok=True)
        mode = "min" if self.direction == "minimize" else "max"
        rebuilt = StudyMirror(
            tmp, self.name, mode, self.distributions, getattr(self, "metric", None)
        )
        rebuilt.add(records)
        if not tmp.exists():  # nothing finished: an empty study
            _, storage = rebuilt._open(tmp)
            self._close(storage)
        os.replace(tmp, self.path)
