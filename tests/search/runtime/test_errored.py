"""`search.runtime.errored`: --resume runs again only the errored trials whose worker or node
was lost; one that failed by itself stays ERROR (the whole path:
tests/search/study/test_driver_resume.py)."""

from __future__ import annotations

import json

from ray import cloudpickle
from ray.exceptions import ActorDiedError, NodeDiedError, RayTaskError, WorkerCrashedError

from search.runtime import errored


def _trial(tune_dir, trial_id: str, status: str, error: BaseException | None) -> list[str]:
    folder = tune_dir / f"mosei_{trial_id}"
    folder.mkdir()
    metadata = {"num_failures": 2, "error_filename": None, "pickled_error_filename": None}
    if error is not None:
        (folder / "error.pkl").write_bytes(cloudpickle.dumps(error))
        metadata.update(error_filename="error.txt", pickled_error_filename="error.pkl")
    state = {"trial_id": trial_id, "status": status, "relative_logdir": folder.name}
    return [json.dumps(state), json.dumps(metadata)]


def _statuses(path) -> dict[str, tuple[str, int]]:
    state = json.loads(path.read_text())
    out = {}
    for trial, metadata in state["trial_data"]:
        trial, metadata = json.loads(trial), json.loads(metadata)
        out[trial["trial_id"]] = (trial["status"], metadata["num_failures"])
    return out


def test_only_trials_whose_worker_or_node_was_lost_are_requeued(tmp_path):
    nan = RayTaskError("train", "Traceback ...", ValueError("non-finite loss"))
    lost_in_task = RayTaskError("train", "Traceback ...", ActorDiedError())
    trials = [
        _trial(tmp_path, "nan", "ERROR", nan),
        _trial(tmp_path, "actor", "ERROR", ActorDiedError()),
        _trial(tmp_path, "worker", "ERROR", WorkerCrashedError()),
        _trial(tmp_path, "node", "ERROR", NodeDiedError("node gone")),
        _trial(tmp_path, "task", "ERROR", lost_in_task),
        _trial(tmp_path, "nofile", "ERROR", None),  # no pickled error: kept as it is
        _trial(tmp_path, "done", "TERMINATED", None),
    ]
    older = tmp_path / "experiment_state-2026-01-01_00-00-00.json"
    newest = tmp_path / "experiment_state-2026-01-02_00-00-00.json"
    older.write_text(json.dumps({"trial_data": trials}))
    newest.write_text(json.dumps({"trial_data": trials, "runner_data": {"x": 1}}))
    assert sorted(errored.requeue_lost(str(tmp_path))) == ["actor", "node", "task", "worker"]
    assert _statuses(newest) == {
        "nan": ("ERROR", 2),
        "actor": ("PENDING", 0),
        "worker": ("PENDING", 0),
        "node": ("PENDING", 0),
        "task": ("PENDING", 0),
        "nofile": ("ERROR", 2),
        "done": ("TERMINATED", 2),
    }
    assert json.loads(newest.read_text())["runner_data"] == {"x": 1}
    assert _statuses(older)["actor"] == ("ERROR", 2)  # Tune restores the newest only
    assert errored.requeue_lost(str(tmp_path)) == []  # nothing errored is left to requeue


def test_an_experiment_without_a_snapshot_requeues_nothing(tmp_path):
    assert errored.requeue_lost(str(tmp_path)) == []
