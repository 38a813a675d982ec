"""A Tune callback that copies the driver's files to an `--out` URI while the search runs.

`SearchOutputs` rewrites `trials.csv` and `study.db` when a trial ends; this callback, placed
after it, uploads them, at most once every `every_s` seconds, so a killed driver loses little
and `--resume URI` works from another machine. The driver uploads once more at the end (also
after Ctrl-C or a time budget). A failed upload is logged and never stops the search.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ray.tune import Callback

from search.runtime.storage import Storage

log = logging.getLogger(__name__)

UPLOAD_EVERY_S = 30.0


class StorageSync(Callback):
    def __init__(self, storage: Storage, every_s: float = UPLOAD_EVERY_S):
        self.storage = storage
        self.every_s = every_s
        self.last = time.monotonic()  # the driver uploaded just before the search began

    def __setstate__(self, state: dict) -> None:  # restored with the Tuner: a fresh clock
        self.__dict__.update(state)
        self.last = time.monotonic()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.maybe_upload()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.maybe_upload()

    def maybe_upload(self) -> bool:
        if time.monotonic() - self.last < self.every_s:
            return False
        self.last = time.monotonic()
        try:
            self.storage.upload()
        except OSError as exc:
            log.warning("could not copy the search's files to %s: %s", self.storage.uri, exc)
            return False
        return True
