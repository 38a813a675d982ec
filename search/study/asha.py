"""ASHA whose brackets and rungs survive `--resume`.

Tune saves neither a scheduler's state nor the bracket ASHA drew for each trial: a restored
search would start with empty rungs (the first trial to reach a rung after a resume always
passes it) and draw the restored trials' brackets again. `ResumableASHA` draws a trial's bracket
from the trial's id and the search's seed, with the probabilities of Ray's ASHA (a bracket with
more rungs is likelier), so a restored trial is back in its bracket; and it records each
restored trial's scores at the rungs it had reached (its `result.json`, up to the result the
restored snapshot holds), as the first run recorded them. Imported only after
`search.runtime.session` has set Ray's environment (it imports Ray).
`SingleRung` (`--scheduler rung`) is the same with one cut only, at the first rung.
Tested in `tests/search/study/test_asha.py`, `tests/search/study/test_driver_resume.py` and
`tests/search/study/test_schedulers.py`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from ray.tune.schedulers import ASHAScheduler

from search.runtime.records import METRIC, read_scores


class ResumableASHA(ASHAScheduler):
    def __init__(self, *, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._seed = seed

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(tune_controller, trial)  # checks metric and mode; draws (replaced)
        bracket = self._brackets[self.bracket_of(trial.trial_id)]
        self._trial_info[trial.trial_id] = bracket
        self._replay(bracket, trial)

    def bracket_of(self, trial_id: str) -> int:
        """The trial's bracket: a draw fixed by its id and the seed (Ray's probabilities)."""
        sizes = np.array([len(b._rungs) for b in self._brackets])
        probs = np.exp(sizes - sizes.max())
        digest = hashlib.sha256(f"{self._seed}:{trial_id}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        index = int(np.searchsorted(np.cumsum(probs / probs.sum()), u, side="right"))
        return min(index, len(self._brackets) - 1)

    def _replay(self, bracket: Any, trial: Any) -> None:
        """Record a restored trial's score at each rung it had reached (a new trial has none)."""
        last = getattr(trial, "last_result", None) or {}
        reached = int(last.get(self._time_attr) or 0)
        if not reached or self._metric != METRIC or self._time_attr != "epoch":
            return
        scores = read_scores(getattr(trial, "local_path", None))
        if METRIC in last:
            scores[reached] = float(last[METRIC])
        for milestone, recorded in bracket._rungs:
            if milestone <= reached and milestone in scores and trial.trial_id not in recorded:
                recorded[trial.trial_id] = self._metric_op * scores[milestone]


class SingleRung(ResumableASHA):
    """One cut at `grace_period`: a trial reaching it continues if its score is in the top
    1/`reduction_factor` of those recorded there so far (ASHA's asynchronous rule); every
    trial that passes runs to its end. ASHA with one bracket would cut again at grace x rf,
    grace x rf^2, ... below `max_t`: only its first rung is kept."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(brackets=1, **kwargs)
        for bracket in self._brackets:
            bracket._rungs = bracket._rungs[-1:]  # Ray lists the rungs largest first
