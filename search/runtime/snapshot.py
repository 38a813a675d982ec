"""Tune's newest experiment snapshot of a search, read and rewritten (Ray 2.60's layout).

The snapshot (`experiment_state-<time>.json`, the newest name the latest) is what
`Tuner.restore` brings back: one entry per trial, its state and its run metadata as JSON.
`--resume` drops the trials that started after it (`drop_unsaved`) and edits it to run again the
trials whose worker was lost (`search.runtime.errored`).
Tested in `tests/search/runtime/test_snapshot.py` and `tests/search/runtime/test_errored.py`.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow.fs as pafs

PATTERN = "experiment_state-*.json"


def _newest(fs: pafs.FileSystem, folder: str) -> str | None:
    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    names = fnmatch.filter([i.base_name for i in infos], PATTERN)
    return f"{folder}/{max(names)}" if names else None


def _read(fs: pafs.FileSystem, path: str) -> dict[str, Any]:
    with fs.open_input_stream(path) as f:
        return json.loads(f.readall())


def open_experiment(experiment: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and folder of a Tune experiment (a local folder or a URI)."""
    fs, folder = pafs.FileSystem.from_uri(experiment)
    return fs, folder.rstrip("/")


def statuses(experiment: str) -> dict[str, str] | None:
    """Trial id -> Tune status (RUNNING, ERROR, ...) in the newest snapshot; None where there
    is no snapshot."""
    fs, folder = open_experiment(experiment)
    path = _newest(fs, folder)
    if path is None:
        return None
    trials = [json.loads(entry[0]) for entry in _read(fs, path).get("trial_data", [])]
    return {str(t.get("trial_id")): str(t.get("status")) for t in trials}


def drop_unsaved(experiment: str, prefix: str) -> list[str]:
    """Remove the folders of trials (`<prefix><trial id>`) that the newest snapshot does not
    hold; returns their ids. Tune snapshots every ten seconds or more: a trial that started
    after the last one is unknown to the restore, and the searcher, restored from the same
    snapshot, draws its place again as a new trial; its half-run folder would only mislead
    (TensorBoard, the trial folders beside trials.csv)."""
    saved = statuses(experiment)
    if saved is None:
        return []
    fs, folder = open_experiment(experiment)
    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    dropped = []
    for info in infos:
        trial_id = info.base_name.removeprefix(prefix)
        is_trial = info.base_name.startswith(prefix) and info.type == pafs.FileType.Directory
        if is_trial and trial_id not in saved:
            fs.delete_dir(info.path)
            dropped.append(trial_id)
    return sorted(dropped)


@contextmanager
def edited(experiment: str) -> Iterator[list[tuple[dict[str, Any], dict[str, Any]]]]:
    """The newest snapshot's (trial, metadata) pairs, to change in place: written back when the
    block ends (beside, then moved over: a crash mid-write keeps the old snapshot)."""
    fs, folder = open_experiment(experiment)
    path = _newest(fs, folder)
    if path is None:
        yield []
        return
    state = _read(fs, path)
    pairs = [(json.loads(e[0]), json.loads(e[1])) for e in state.get("trial_data", [])]
    before = json.dumps(pairs)
    yield pairs
    if json.dumps(pairs) == before:
        return
    state["trial_data"] = [[json.dumps(t), json.dumps(m)] for t, m in pairs]
    with fs.open_output_stream(f"{path}.part") as f:
        f.write(json.dumps(state).encode())
    fs.move(f"{path}.part", path)
