"""`search.runtime.trial_metrics`: the gauges each trial and the driver set (Ray's Gauge
replaced by a recorder: no Ray)."""

from __future__ import annotations

import pytest

from search.runtime import trial_metrics


class Recorder:
    def __init__(self, name, description="", tag_keys=()):
        self.name, self.tag_keys, self.values = name, tag_keys, []

    def set(self, value, tags):
        assert set(tags) == set(self.tag_keys)
        self.values.append((value, tags))


@pytest.fixture
def gauges(monkeypatch):
    made: dict[str, Recorder] = {}

    def gauge(name, description, tag_keys=trial_metrics.TAGS):
        return made.setdefault(name, Recorder(name, description, tag_keys))

    monkeypatch.setattr(trial_metrics, "_gauge", gauge)
    return made


def test_a_trial_publishes_its_epoch_and_scores(gauges):
    trial_metrics.publish_trial("mosi", "ab12_00001", 3, 0.8, 0.7)
    tags = {"trial": "ab12_00001", "dataset": "mosi"}
    assert gauges["atsuko_trial_epoch"].values == [(3, tags)]
    assert gauges["atsuko_trial_valid_score"].values == [(0.8, tags)]
    assert gauges["atsuko_trial_best_valid_score"].values == [(0.7, tags)]


def test_the_driver_publishes_trials_per_state(gauges):
    trial_metrics.publish_search("mosei", {"COMPLETE": 2, "PRUNED": 1})
    assert gauges["atsuko_search_trials"].values == [
        (2, {"dataset": "mosei", "state": "COMPLETE"}),
        (1, {"dataset": "mosei", "state": "PRUNED"}),
    ]
