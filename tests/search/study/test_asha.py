"""`search.study.asha.ResumableASHA`: a restored search's trials are back in their brackets and
their rung scores count, as before the resume."""

from __future__ import annotations

import json
from types import SimpleNamespace

from ray.tune.schedulers import TrialScheduler

from search.runtime.records import METRIC
from search.study.asha import ResumableASHA


def _asha(brackets: int = 1, seed: int = 0) -> ResumableASHA:
    scheduler = ResumableASHA(
        seed=seed,
        time_attr="epoch",
        max_t=8,
        grace_period=1,
        reduction_factor=2,
        brackets=brackets,
    )
    scheduler.set_search_properties(METRIC, "min")
    return scheduler


def _trial(trial_id: str, folder=None, curve: list[float] = ()) -> SimpleNamespace:
    """A trial as Tune restores it: its last result and the folder with its result.json."""
    last = {"epoch": len(curve), METRIC: curve[-1]} if curve else {}
    if folder is not None and curve:
        folder.mkdir()
        lines = [json.dumps({"epoch": e + 1, METRIC: v}) for e, v in enumerate(curve)]
        (folder / "result.json").write_text("\n".join(lines) + "\n")
    return SimpleNamespace(trial_id=trial_id, last_result=last, local_path=folder)


def test_a_trials_bracket_is_fixed_by_its_id_and_the_seed_with_rays_odds():
    first, again = _asha(brackets=2), _asha(brackets=2)
    ids = [f"{i:08x}" for i in range(2000)]
    assert [first.bracket_of(t) for t in ids] == [again.bracket_of(t) for t in ids]
    share = sum(first.bracket_of(t) == 0 for t in ids) / len(ids)
    assert 0.68 < share < 0.78  # e / (e + 1): the bracket with one more rung is likelier
    assert [first.bracket_of(t) for t in ids] != [_asha(2, seed=1).bracket_of(t) for t in ids]


def test_restored_trials_rung_scores_count_after_a_resume(tmp_path):
    resumed = _asha()  # a resumed search's fresh scheduler: Tune saved none of its state
    for name, curve in {"a": [0.30, 0.25], "b": [0.35], "c": [0.40, 0.30, 0.28]}.items():
        resumed.on_trial_add(None, _trial(name, tmp_path / name, curve))
    rung_1 = dict(resumed._brackets[0]._rungs)[1]
    assert rung_1 == {"a": -0.30, "b": -0.35, "c": -0.40}
    assert dict(resumed._brackets[0]._rungs)[2] == {"a": -0.25, "c": -0.30}
    late = _trial("d")
    resumed.on_trial_add(None, late)
    result = {"epoch": 1, METRIC: 0.45, "training_iteration": 1}
    assert resumed.on_trial_result(None, late, result) == TrialScheduler.STOP
