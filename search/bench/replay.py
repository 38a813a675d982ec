"""Replay: the search's own driver, searcher and schedulers, answered from the curve table.

`replay_trial` is a Tune trainable like `search.runtime.trainable.train_trial`, with the same
per-epoch reports, but instead of training it looks up the recorded configuration nearest to
the one it was given (`curve_table.nearest`) and reports that configuration's recorded curve
epoch by epoch, sleeping each epoch's recorded seconds times `time_scale`, so that trials at
concurrency 2 finish in the same order as they would live. `replay_factory` is what
`search.study.driver.run` takes in place of the training trainable: everything else (Optuna,
ASHA, records, `trials.csv`, `summary.json`) is the search's own code.
Tested in `tests/search/bench/test_replay.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from search.bench.curve_table import nearest
from search.runtime.records import FINAL, METRIC

TIME_SCALE = 0.02  # replayed seconds per recorded second


def replay_trial(config: dict[str, Any], *, table: dict[str, Any], time_scale: float) -> None:
    """Report the nearest recorded trial's curve, epoch by epoch, as a live trial would."""
    from ray import tune

    meta = table["meta"]
    trial = nearest(table, config)
    minimise = meta["mode"] == "min"
    started = time.time()
    best, best_epoch = None, 0
    for epoch, (score, seconds) in enumerate(
        zip(trial["scores"], trial["seconds"], strict=True), 1
    ):
        time.sleep(max(0.0, seconds * time_scale))
        if best is None or (score < best if minimise else score > best):
            best, best_epoch = score, epoch
        valid = {meta["metric"]: score}
        tune.report(
            {
                "epoch": epoch,
                "score": score,
                METRIC: best,
                "best_epoch": best_epoch,
                "valid": valid,
                "best_valid": {meta["metric"]: best},
                "epoch_seconds": seconds,
                "started_at": started,
                "wall_time": time.time(),
                "replayed_trial": trial["trial_id"],
                FINAL: epoch == len(trial["scores"]),
            }
        )


def replay_factory(table: dict[str, Any], time_scale: float = TIME_SCALE) -> Callable[..., type]:
    """A trainable builder with `search.runtime.trainable.make_trainable`'s signature."""

    def make(data: Any, base: dict[str, Any], cpus: float, gpus: float) -> type:
        from ray import tune

        from search.runtime.trainable import as_trainable

        fn = tune.with_parameters(replay_trial, table=table, time_scale=time_scale)
        return as_trainable(fn, base["data"]["dataset"], cpus, gpus)

    return make


def trial_order_best(scores_by_trial: list[list[float]], mode: str) -> list[float]:
    """Best score so far after each trial, trials in the order the search made them."""
    out, best = [], None
    for scores in scores_by_trial:
        top = min(scores) if mode == "min" else max(scores)
        best = top if best is None else (min(best, top) if mode == "min" else max(best, top))
        out.append(best)
    return out
