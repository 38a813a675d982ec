"""`search.runtime.newest_checkpoint`: a restored trial goes on from its newest intact
checkpoint on storage, by the epoch it holds, whatever the snapshot named."""

from __future__ import annotations

import json

import pyarrow.fs as pafs
from ray.train._internal.session import _TrainingResult
from ray.tune import Checkpoint

from search.runtime.newest_checkpoint import forget_deleted, newest, on_storage
from search.runtime.trainable import PROGRESS_FILE, STATE_FILE


def _checkpoint(trial, number: int, epoch: int | None, state: bytes = b"weights") -> str:
    folder = trial / f"checkpoint_{number:06d}"
    folder.mkdir(parents=True)
    (folder / STATE_FILE).write_bytes(state)
    if epoch is not None:
        (folder / PROGRESS_FILE).write_text(json.dumps({"last": {"epoch": epoch}}))
    return str(folder)


def _result(path: str) -> _TrainingResult:
    checkpoint = Checkpoint(path, filesystem=pafs.LocalFileSystem())
    return _TrainingResult(checkpoint=checkpoint, metrics={"epoch": 1})


def _restored(result: _TrainingResult | None) -> str | None:
    return None if result is None else result.checkpoint.path


def test_the_newest_intact_epoch_wins_over_the_snapshots_checkpoint(tmp_path):
    trial = tmp_path / "mosei_a"
    named = _checkpoint(trial, 0, 1)  # what the snapshot names
    _checkpoint(trial, 1, 4)  # written by the killed run after the snapshot
    _checkpoint(trial, 2, 3)  # a later run numbered on from the snapshot, over older folders
    _checkpoint(trial, 3, 5, state=b"")  # cut short: no weights
    _checkpoint(trial, 4, None)  # cut short: no progress file
    (trial / "checkpoint_000005").mkdir()
    found = newest(_result(named), STATE_FILE, PROGRESS_FILE)
    assert _restored(found) == str(trial / "checkpoint_000001")
    assert found.metrics == {"epoch": 1}


def test_the_snapshots_checkpoint_stays_when_it_is_the_newest(tmp_path):
    trial = tmp_path / "mosei_a"
    _checkpoint(trial, 0, 1)
    named = _checkpoint(trial, 1, 2)
    result = _result(named)
    assert newest(result, STATE_FILE, PROGRESS_FILE) is result


def test_a_deleted_checkpoint_falls_back_to_what_is_left_or_to_a_fresh_start(tmp_path):
    trial = tmp_path / "mosei_a"
    trial.mkdir()
    gone = str(trial / "checkpoint_000000")  # deleted by Tune's num_to_keep after the snapshot
    assert newest(_result(gone), STATE_FILE, PROGRESS_FILE) is None  # nothing left: afresh
    _checkpoint(trial, 2, 3)
    assert _restored(newest(_result(gone), STATE_FILE, PROGRESS_FILE)) == str(
        trial / "checkpoint_000002"
    )


def test_a_trial_started_afresh_finds_its_own_checkpoints_on_storage(tmp_path):
    from types import SimpleNamespace

    trial = tmp_path / "mosei_a"
    storage = SimpleNamespace(
        storage_filesystem=pafs.LocalFileSystem(), trial_fs_path=str(trial), trial_dir_name="a"
    )
    assert on_storage(storage, STATE_FILE, PROGRESS_FILE) is None  # a first start: none yet
    _checkpoint(trial, 0, 1)
    _checkpoint(trial, 1, 2)
    assert on_storage(storage, STATE_FILE, PROGRESS_FILE).path == str(trial / "checkpoint_000001")
    assert on_storage(None, STATE_FILE, PROGRESS_FILE) is None


def test_deleted_checkpoints_leave_the_snapshots_lists(tmp_path):
    from ray import cloudpickle
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.tune import CheckpointConfig
    from ray.tune.utils.serialization import TuneFunctionEncoder

    trial = tmp_path / "mosei_a"
    gone, kept = _checkpoint(trial, 0, 1), _checkpoint(trial, 1, 2)
    manager = _CheckpointManager(CheckpointConfig(num_to_keep=2))
    for path in (gone, kept):
        manager.register_checkpoint(_result(path))
    metadata = json.dumps({"checkpoint_manager": manager}, cls=TuneFunctionEncoder)
    entry = [json.dumps({"trial_id": "a", "status": "RUNNING"}), metadata]
    state = tmp_path / "experiment_state-2026-01-01_00-00-00.json"
    state.write_text(json.dumps({"trial_data": [entry]}))
    for name in (STATE_FILE, PROGRESS_FILE):  # the killed run went on; Tune deleted the first
        (trial / "checkpoint_000000" / name).unlink()
    (trial / "checkpoint_000000").rmdir()

    assert forget_deleted(str(tmp_path)) == 1
    assert forget_deleted(str(tmp_path)) == 0  # what is left is on storage
    packed = json.loads(json.loads(state.read_text())["trial_data"][0][1])["checkpoint_manager"]
    restored = cloudpickle.loads(bytes.fromhex(packed["value"]))
    assert [r.checkpoint.path for r in restored._checkpoint_results] == [kept]
    for number in (2, 3):  # the third deletes `kept`; none is deleted twice (no error)
        restored.register_checkpoint(_result(_checkpoint(trial, number, number + 1)))
    assert not (trial / "checkpoint_000001").exists()
