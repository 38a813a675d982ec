"""Each trial's progress as Ray custom metrics, for the dashboard's metrics view.

Ray has had no Tune view in its dashboard since 2.0; these gauges fill the gap wherever
Prometheus and Grafana are set up. Each node exports them at
`http://<node>:<metrics export port>/metrics` as `ray_atsuko_trial_epoch{trial=..., dataset=...}`
(and `..._valid_score`, `..._best_valid_score`); the driver exports `ray_atsuko_search_trials`.
"""

from __future__ import annotations

from typing import Any

TAGS = ("trial", "dataset")
_gauges: dict[str, Any] = {}


def _gauge(name: str, description: str, tag_keys: tuple[str, ...] = TAGS) -> Any:
    """One Gauge per name and process (Ray registers metrics per worker process)."""
    if name not in _gauges:
        from ray.util.metrics import Gauge

        _gauges[name] = Gauge(name, description=description, tag_keys=tag_keys)
    return _gauges[name]


def publish_trial(dataset: str, trial_id: str, epoch: int, score: float, best: float) -> None:
    """Set the trial's latest epoch and validation scores (called before each report)."""
    tags = {"trial": trial_id, "dataset": dataset}
    _gauge("atsuko_trial_epoch", "epochs completed by the trial").set(epoch, tags=tags)
    _gauge("atsuko_trial_valid_score", "latest validation selection score").set(score, tags=tags)
    _gauge("atsuko_trial_best_valid_score", "best validation selection score so far").set(
        best, tags=tags
    )


def publish_search(dataset: str, counts: dict[str, int]) -> None:
    """Trials per state, from the driver (COMPLETE, PRUNED, ERROR, RUNNING, ...)."""
    gauge = _gauge("atsuko_search_trials", "trials of the search by state", ("dataset", "state"))
    for state, n in counts.items():
        gauge.set(n, tags={"dataset": dataset, "state": state})
