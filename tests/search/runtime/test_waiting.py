"""`search.runtime.waiting`: how many trials resources hold, whether one node holds a trial,
and the lines a search prints while its trials wait for resources (the clock is faked). A
search that waits on a cluster: tests/search/study/test_autoscaling.py."""

from __future__ import annotations

from search.runtime import tuner, waiting
from search.runtime.waiting import WaitingForResources


def test_fits_and_node_fits() -> None:
    assert waiting.fits({"CPU": 8, "GPU": 2}, 2, 0.5) == 4
    assert waiting.fits({"CPU": 8, "GPU": 2}, 1, 1) == 2
    assert waiting.fits({"CPU": 0}, 1, 0) == 0
    assert waiting.fits({"CPU": 3}, 1, 0) == 3
    head, worker = {"CPU": 0.0}, {"CPU": 4.0, "GPU": 1.0}
    assert not waiting.node_fits([head], 1, 0)
    assert waiting.node_fits([head, worker], 2, 1)
    # enough CPUs on one node and GPUs on another is not a place for one trial
    assert not waiting.node_fits([{"CPU": 4.0}, {"CPU": 1.0, "GPU": 1.0}], 2, 1)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_waiting_lines_after_a_while_then_every_so_often_then_arrival() -> None:
    clock = Clock()
    w = WaitingForResources(1, 0.5, after_s=20, every_s=60, clock=clock)
    assert w.check(["PENDING", "PENDING"]) is None  # just started
    clock.t = 19
    assert w.check(["PENDING", "PENDING"]) is None
    clock.t = 21
    line = w.check(["PENDING", "PENDING"])
    assert line and line.startswith("Waiting for resources: 2 trial(s) PENDING for 21 s")
    assert "1 CPU and 0.5 GPU" in line and "add-worker" in line
    clock.t = 50
    assert w.check(["PENDING"]) is None  # said 29 s ago
    clock.t = 82
    assert "PENDING for 82 s" in (w.check(["PENDING"]) or "")
    clock.t = 90
    assert w.check(["RUNNING", "PENDING"]) == (
        "Resources arrived: a trial started after 90 s of waiting."
    )
    assert w.check(["RUNNING", "PENDING"]) is None  # said once
    # running trials and some waiting for a slot: not a wait for resources
    clock.t = 500
    assert w.check(["RUNNING", "PENDING"]) is None
    # pickled with the Tuner: no clock or printer of this process goes with it
    state = w.__getstate__()
    assert state["say"] is print and state["since"] is None


def test_every_tuner_says_when_its_trials_wait(tmp_path) -> None:
    from ray import tune

    def trial(config):
        return {"score": 0.0}

    trainable = tune.with_resources(trial, {"cpu": 1})
    trainable.dataset_name = "mosi"
    kw = dict(storage_path=str(tmp_path), concurrency=1, max_failures=0, reporter=None)
    built = tuner.build_tuner(trainable, per_trial=(2.0, 0.5), **kw)
    found = [
        c for c in built._local_tuner._run_config.callbacks if isinstance(c, WaitingForResources)
    ]
    assert [(c.cpus, c.gpus) for c in found] == [(2.0, 0.5)]
    built = tuner.build_tuner(trainable, **kw)
    assert not any(
        isinstance(c, WaitingForResources) for c in built._local_tuner._run_config.callbacks
    )
