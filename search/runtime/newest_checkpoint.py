"""A restored trial continues from its newest checkpoint on storage, not the snapshot's.

Tune saves its experiment snapshot (which checkpoint each trial is at) every ten seconds or
more, and copies it to storage in the background; trials write a checkpoint every epoch and
Tune deletes the older ones (`num_to_keep`). A driver killed between two snapshots leaves
trials that are further on than the snapshot says: their snapshot checkpoint may already be
deleted (Tune would fail the trial: "does not exist on storage anymore"), they may have ended,
or they may have checkpoints where the snapshot has none. `newest` points Tune's restore at the
trial's newest intact checkpoint instead, and `on_storage` finds one for a trial that Tune
starts afresh; so such a trial goes on from where it really was (with none left, afresh). The
trainable reports the result of the epoch it restored first, again (`search.runtime.trainable`),
so that the scheduler judges the epoch the snapshot missed (with its rungs as the snapshot had
them) and an ended trial ends on its own scores. `forget_deleted` takes the deleted
checkpoints out of the snapshot's lists, which Tune would otherwise try to delete again.
Tested in `tests/search/runtime/test_newest_checkpoint.py`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow.fs as pafs

NAME = re.compile(r"checkpoint_(\d+)$")  # Tune's checkpoint folders in a trial folder


def _epoch(fs: pafs.FileSystem, folder: str, state: str, progress: str) -> int | None:
    """The epoch a checkpoint folder holds (its progress file's last result); None where it
    is not intact: a file missing or empty, the progress unreadable (a copy cut short)."""
    info = fs.get_file_info(f"{folder}/{state}")
    if info.type != pafs.FileType.File or not info.size:
        return None
    try:
        with fs.open_input_stream(f"{folder}/{progress}") as f:
            return int(json.loads(f.readall())["last"]["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def candidates(fs: pafs.FileSystem, trial_dir: str, state: str, progress: str) -> list[str]:
    """The trial's intact checkpoint folders, the latest epoch first. By epoch, not by folder
    number: a trial restored from an older snapshot numbers its next checkpoints from there,
    over folders that a killed run had already written."""
    infos = fs.get_file_info(pafs.FileSelector(trial_dir, allow_not_found=True))
    found = []
    for info in infos:
        if info.type == pafs.FileType.Directory and NAME.search(info.base_name):
            epoch = _epoch(fs, info.path, state, progress)
            if epoch is not None:
                found.append((epoch, info.mtime_ns or 0, info.path))
    return [path for *_, path in sorted(found, reverse=True)]


def newest(result: Any, state: str, progress: str) -> Any | None:
    """`result` (Tune's `_TrainingResult` to restore from) moved to the newest intact
    checkpoint in the same trial folder (`state` and `progress`: the trainable's two files);
    None where the trial has none left."""
    from ray.tune import Checkpoint

    checkpoint = result.checkpoint
    fs, path = checkpoint.filesystem, checkpoint.path.rstrip("/")
    found = candidates(fs, path.rsplit("/", 1)[0], state, progress)
    if not found:
        return None
    if found[0] != path:
        result = type(result)(
            checkpoint=Checkpoint(found[0], filesystem=fs), metrics=result.metrics
        )
    return result


def on_storage(storage: Any, state: str, progress: str) -> Any | None:
    """The newest intact checkpoint in a trial's folder on storage (Tune's `StorageContext`
    of the trial), as a `Checkpoint`; None where it has none (a trial's first start)."""
    from ray.tune import Checkpoint

    if storage is None or not getattr(storage, "trial_dir_name", None):
        return None
    fs = storage.storage_filesystem
    found = candidates(fs, storage.trial_fs_path.rstrip("/"), state, progress)
    return Checkpoint(found[0], filesystem=fs) if found else None


def forget_deleted(experiment: str) -> int:
    """Take the checkpoints that are no longer on storage out of each trial's checkpoint list
    in Tune's newest snapshot; returns how many. A killed run's trials went on past the
    snapshot and Tune deleted the older checkpoints it lists; restored, Tune would delete them
    again at the trial's next checkpoint and log an error with a traceback for each."""
    from ray import cloudpickle

    from search.runtime import snapshot

    forgotten = 0
    with snapshot.edited(experiment) as pairs:
        for _, metadata in pairs:
            packed = metadata.get("checkpoint_manager")
            if not isinstance(packed, dict) or packed.get("_type") != "CLOUDPICKLE_FALLBACK":
                continue
            manager = cloudpickle.loads(bytes.fromhex(packed["value"]))
            listed = manager._checkpoint_results
            kept = [r for r in listed if _exists(r.checkpoint)]
            if len(kept) < len(listed):
                forgotten += len(listed) - len(kept)
                manager._checkpoint_results = kept
                packed["value"] = cloudpickle.dumps(manager).hex()
    return forgotten


def _exists(checkpoint: Any) -> bool:
    info = checkpoint.filesystem.get_file_info(checkpoint.path)
    return info.type != pafs.FileType.NotFound
