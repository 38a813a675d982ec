"""One trial: `atsuko.train.fit` with per-epoch reports and checkpoints (no second loop).

Each epoch reports the validation metrics, the training loss terms and the router statistics,
with a checkpoint (`Trainer.state_dict()`: model, optimiser, epoch, best state, RNG) so ASHA and
failure retries resume from the last epoch (the newest on storage, which a killed driver's
snapshot may not know: `search.runtime.newest_checkpoint`). A NaN or infinite loss or
validation score raises `atsuko.train.NonFiniteLoss`, which ends the trial as errored with that
reason (never a trial complete with a score of +-inf).
The dataset arrives once per node through the object store (`search.runtime.shared_data`).
Tune reuses a trial's actor (its worker process) for the next trial, so each trial labels the
worker's log lines with its own id when it starts.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
import torch
from ray import tune
from ray.tune.trainable import wrap_function

from atsuko import checkpoint as trainer_checkpoint
from search.runtime import freed_memory, trial_metrics
from search.runtime.faults import maybe_exit
from search.runtime.newest_checkpoint import newest, on_storage
from search.runtime.records import FINAL, METRIC, WARM_START
from search.runtime.worker_exit import exit_outside_callbacks

if TYPE_CHECKING:
    from search.runtime.shared_data import SharedData

STATE_FILE = "trainer.pt"
PROGRESS_FILE = "progress.json"


def _restore(checkpoint: tune.Checkpoint | None) -> tuple[dict | None, dict[str, Any]]:
    if checkpoint is None:
        return None, {}
    with checkpoint.as_directory() as folder:
        state = trainer_checkpoint.load(Path(folder) / STATE_FILE)
        progress = json.loads((Path(folder) / PROGRESS_FILE).read_text())
    return state, progress


def label_logs(label: str) -> None:
    """Prefix this worker's log lines in the driver's console with `label` from now on (Ray's
    log monitor reads this marker line; an actor's own name is fixed when it is created)."""
    from ray._private.ray_constants import LOG_PREFIX_ACTOR_NAME

    for stream in (sys.stdout, sys.stderr):
        print(f"{LOG_PREFIX_ACTOR_NAME}{label}", file=stream, flush=True)


def train_trial(
    config: dict[str, Any], *, data: SharedData, base: dict[str, Any], cpus: float
) -> None:
    """The Tune trainable: `config` holds the sampled parameters, `base` everything else."""
    from atsuko.config import from_dict
    from atsuko.train import fit, training_ends

    torch.set_num_threads(max(1, int(cpus)))  # this trial's CPU share
    freed_memory.release()  # what the actor's previous trial freed (code after fit may not run)
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)  # per-epoch noise
    params = {k: v for k, v in config.items() if k != WARM_START}  # a seeded trial's origin
    maybe_exit(params)  # the test hook of a lost worker (search.runtime.faults)
    run_config = from_dict(base).replace(**params)
    name = run_config.data.dataset
    trial_id = tune.get_context().get_trial_id()
    label_logs(f"atsuko_{name}_{trial_id}")
    node_id = ray.get_runtime_context().get_node_id()
    gpu_ids = ",".join(str(i) for i in ray.get_gpu_ids())
    state, progress = _restore(tune.get_checkpoint())
    progress.setdefault("started_at", time.time())
    if "last" in progress:
        # restored: the result of the epoch the checkpoint holds comes first, again, so that
        # the scheduler judges that epoch (a killed driver's snapshot may predate it; a result
        # seen before counts once) and a trial with nothing left to train ends on its scores
        tune.report({**progress["last"], "wall_time": time.time()})

    def on_epoch(record: Any, trainer: Any) -> None:
        if record.best_epoch == record.epoch:
            progress["best_valid"] = dict(record.valid)
        metrics = {
            "epoch": record.epoch,
            "score": record.score,
            METRIC: record.best_score,
            "best_epoch": record.best_epoch,
            "valid": dict(record.valid),
            "best_valid": dict(progress.get("best_valid", {})),
            "train": dict(record.train),
            "router": dict(record.router),
            "epoch_seconds": record.seconds,
            "node_id": node_id,
            "gpu_ids": gpu_ids,  # the GPUs Ray assigned (search.bench.gpu reads them)
            "started_at": progress["started_at"],
            "wall_time": time.time(),
            # the training ends after this epoch (all epochs, or patience): a resumed search
            # counts the trial complete even if the driver died before Tune saw it return
            FINAL: training_ends(record.epoch, record.best_epoch, run_config),
        }
        progress["last"] = metrics
        # gauges first: code after a trial's last report may never run under ASHA
        trial_metrics.publish_trial(name, trial_id, record.epoch, record.score, record.best_score)
        with tempfile.TemporaryDirectory() as folder:
            torch.save(trainer.state_dict(), Path(folder) / STATE_FILE)
            (Path(folder) / PROGRESS_FILE).write_text(json.dumps(progress))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    fit(run_config, data.get(), state=state, on_epoch=on_epoch, score_test=False, log=None)


def point_trial(
    config: dict[str, Any],
    *,
    datasets: dict[str, SharedData],
    bases: dict[str, dict[str, Any]],
    points: dict[str, tuple[str, dict[str, Any]]],
    cpus: float,
) -> None:
    """The trainable of a grid (a sweep): `config['point']` labels a (dataset, overrides) pair,
    trained as the search's own trial on that dataset."""
    name, changes = points[config["point"]]
    train_trial(dict(changes), data=datasets[name], base=bases[name], cpus=cpus)


def _actor_repr(self: Any) -> str:
    return f"atsuko_{self.dataset_name}"


def as_trainable(fn: Any, name: str, cpus: float, gpus: float) -> type:
    """`fn` (with its parameters bound) as a Tune trainable class with resources; its actors
    show in the Ray dashboard as `atsuko_<name>` (the actor's repr), its trials as
    `<name>_<trial id>` (see `search.runtime.tuner.trial_name`), and leave without a
    traceback when Ray ends them. Every trainable is built here: the search's, the sweep's
    and the benchmark's replay (`search.bench.replay`)."""
    fn = tune.with_resources(fn, {"cpu": cpus, "gpu": gpus})
    wrapped = wrap_function(fn)

    def go_on(self: Any) -> None:
        """A trial that Tune starts without a checkpoint but that has some on storage (a
        killed driver's snapshot had none for it yet) goes on from its newest."""
        found = on_storage(self._storage, STATE_FILE, PROGRESS_FILE)
        if found is not None:
            wrapped.restore(self, found)

    def setup(self: Any, config: dict[str, Any]) -> None:  # on the actor's main thread
        exit_outside_callbacks()
        wrapped.setup(self, config)
        go_on(self)

    def reset(self: Any, new_config: dict[str, Any], storage: Any = None) -> bool:
        done = wrapped.reset(self, new_config, storage)  # a reused actor, the next trial
        if done:
            go_on(self)
        return done

    def restore(self: Any, checkpoint_result: Any) -> None:
        """From the trial's newest checkpoint on storage (`search.runtime.newest_checkpoint`):
        a killed driver's snapshot may name one that is older, or already deleted."""
        if hasattr(checkpoint_result, "checkpoint"):  # what Tune passes: a _TrainingResult
            checkpoint_result = newest(checkpoint_result, STATE_FILE, PROGRESS_FILE)
            if checkpoint_result is None:
                return  # nothing left to restore: the trial starts afresh
        wrapped.restore(self, checkpoint_result)

    attributes = {
        "dataset_name": name,
        "__repr__": _actor_repr,
        "setup": setup,
        "reset": reset,
        "restore": restore,
    }
    return type("AtsukoTrial", (wrapped,), attributes)


def make_trainable(data: SharedData, base: dict[str, Any], cpus: float, gpus: float) -> type:
    """The trainable class of a search: data in the object store, resources, readable actors.

    Its actors show in the Ray dashboard as `atsuko_<dataset>` (the actor's repr; an actor
    runs one trial after another), their log lines as `atsuko_<dataset>_<trial id>`.
    """
    fn = tune.with_parameters(train_trial, data=data, base=base, cpus=cpus)
    return as_trainable(fn, base["data"]["dataset"], cpus, gpus)


def make_grid_trainable(
    datasets: dict[str, SharedData],
    bases: dict[str, dict[str, Any]],
    points: dict[str, tuple[str, dict[str, Any]]],
    cpus: float,
    gpus: float,
    name: str = "sens",
) -> type:
    """The trainable class of a sweep: as `make_trainable`, for several datasets and labelled
    grid points (trials `sens_<trial id>`)."""
    fn = tune.with_parameters(point_trial, datasets=datasets, bases=bases, points=points, cpus=cpus)
    return as_trainable(fn, name, cpus, gpus)
