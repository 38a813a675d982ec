"""Live outputs of a running search, as a Tune callback in the driver.

- Marks a result on which the scheduler stopped a trial early (`stopped_early`), before the
  searcher and the loggers see the trial end, so it is recorded as PRUNED, never COMPLETE.
- Rewrites `trials.csv` and adds finished trials to `study.db` (idempotently) each time a trial
  ends, so nothing is lost if the driver is killed; exports trial counts as a Ray gauge.
A failure here is logged and never stops the search.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray.tune import Callback

from search import layout
from search.runtime import trial_metrics
from search.runtime.records import STOPPED_EARLY, TrialRecord, build, counts, write_csv
from search.runtime.storage import Storage
from search.study.study_mirror import StudyMirror

log = logging.getLogger(__name__)


def trial_record(trial: Any, finishing: bool = False) -> TrialRecord:
    """A record from a live Tune `Trial` (`finishing`: inside its on_trial_complete)."""
    status = str(trial.status)
    if finishing and status not in ("ERROR", "TERMINATED"):
        status = "TERMINATED"
    error = ""
    if status == "ERROR" and trial.error_file and Path(trial.error_file).is_file():
        error = Path(trial.error_file).read_text()
    return build(
        trial.trial_id,
        trial.config,
        trial.last_result,
        status=status,
        error=error,
        path=trial.local_path or "",
    )


class SearchOutputs(Callback):
    """Marks scheduler stops; keeps `trials.csv` and `study.db` current.

    It is pickled with the Tuner: restored by `--resume`, it writes to that run's folder (the
    `--out` location re-opened where it is unpickled; a URI's working folder may differ)."""

    def __init__(
        self,
        storage: Storage,
        dataset: str,
        param_names: tuple[str, ...],
        max_epochs: int,
        mirror: StudyMirror,
    ):
        self.storage = storage
        self.dataset = dataset
        self.param_names = param_names
        self.max_epochs = max_epochs
        self.mirror = mirror

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.mirror.path = self.out / self.mirror.path.name

    @property
    def out(self) -> Path:
        return self.storage.local_dir

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info):
        # `done` on a fresh result means the scheduler stopped the trial on it (a trial that
        # ends by itself reports without `done`; Tune adds it to a duplicate afterwards)
        if result.get("done") and int(result.get("epoch", 0) or 0) < self.max_epochs:
            result[STOPPED_EARLY] = True

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info):
        self.write(trials, trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info):
        self.write(trials, trial)

    def on_experiment_end(self, trials: list, **info):
        self.write(trials)

    def write(self, trials: list, finishing: Any = None) -> list[TrialRecord]:
        try:
            records = [trial_record(t, t is finishing) for t in trials]
            write_csv(records, self.out / layout.TRIALS, self.param_names)
            self.mirror.add(records)
            trial_metrics.publish_search(self.dataset, counts(records))
            return records
        except Exception as exc:  # noqa: BLE001 - outputs must never stop the search
            log.warning("could not update trials.csv/study.db: %s", exc)
            return []
