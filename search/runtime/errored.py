"""Which ERROR trials `--resume` runs again: only those whose worker or node was lost.

A trial that failed for a reason of its own (a NaN loss, a configuration the model refuses)
would fail the same way again: it stays ERROR with its reason. A trial whose worker process or
node died under it (Ray's actor-died, worker-crashed or node-died errors: a node taken away, a
worker killed) may well finish on the next try. `Tuner.restore` re-queues either every errored
trial or none, so `requeue_lost` marks the lost ones unfinished in the experiment's newest
snapshot first, with their failure count cleared (they get `--max-failures` retries again);
the restore then continues them from their last checkpoint and skips the other errored ones.
Tested in `tests/search/runtime/test_errored.py` and `tests/search/study/test_driver_resume.py`.
"""

from __future__ import annotations

import pyarrow.fs as pafs

from search.runtime import snapshot


def lost_worker(error: BaseException | None) -> bool:
    """Whether a trial's error says its worker or node went away (not its own failure)."""
    from ray.exceptions import (
        LocalRayletDiedError,
        NodeDiedError,
        RayActorError,  # ActorDiedError, ActorUnavailableError: a worker killed or unreachable
        RayTaskError,
        WorkerCrashedError,
    )

    lost = (RayActorError, WorkerCrashedError, NodeDiedError, LocalRayletDiedError)
    if isinstance(error, RayTaskError):
        error = error.cause if isinstance(error.cause, BaseException) else None
    return isinstance(error, lost)


def _read_error(fs: pafs.FileSystem, trial_dir: str, name: str | None) -> BaseException | None:
    """The exception a trial failed with (Tune pickles it beside the trial's error.txt)."""
    from ray import cloudpickle

    if not name:
        return None
    try:
        with fs.open_input_stream(f"{trial_dir}/{name}") as f:
            return cloudpickle.loads(f.readall())
    except Exception:  # noqa: BLE001 - unreadable: not known to be lost, so kept as ERROR
        return None


def requeue_lost(experiment: str) -> list[str]:
    """Mark the ERROR trials of `experiment` (a Tune experiment folder or URI) whose worker or
    node was lost as unfinished in its newest snapshot; returns their trial ids."""
    fs, folder = snapshot.open_experiment(experiment)
    requeued = []
    with snapshot.edited(experiment) as pairs:
        for trial, metadata in pairs:
            if trial.get("status") != "ERROR":
                continue
            trial_dir = f"{folder}/{trial.get('relative_logdir', '')}"
            error = _read_error(fs, trial_dir, metadata.get("pickled_error_filename"))
            if not lost_worker(error):
                continue
            trial["status"] = "PENDING"
            metadata.update(error_filename=None, pickled_error_filename=None, num_failures=0)
            requeued.append(str(trial.get("trial_id")))
    return requeued


def describe(requeued: list[str]) -> str:
    return (
        f"Running again {len(requeued)} errored trial(s) whose worker or node was lost: "
        f"{', '.join(requeued)} (errored trials that failed by themselves are kept)"
    )
