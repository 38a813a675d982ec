"""`search.runtime.snapshot`: --resume drops the folders of trials that started after Tune's
last snapshot (the restore does not know them; the searcher draws their places again), and
keeps every other file (the whole path: tests/search/study/test_driver_resume.py)."""

from __future__ import annotations

import json

from search.runtime import snapshot


def _snapshot(folder, name: str, ids: list[str]) -> None:
    data = [[json.dumps({"trial_id": i, "status": "RUNNING"}), json.dumps({})] for i in ids]
    (folder / f"experiment_state-{name}.json").write_text(json.dumps({"trial_data": data}))


def test_trials_missing_from_the_newest_snapshot_are_dropped(tmp_path):
    for name in ("mosei_a", "mosei_b", "mosei_c", "mosei_d", "sens_x"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "progress.csv").write_text("epoch\n1\n")
    (tmp_path / "mosei_e").write_text("a file, not a trial folder")
    _snapshot(tmp_path, "2026-01-01_00-00-00", ["a", "b", "c", "d"])
    _snapshot(tmp_path, "2026-01-02_00-00-00", ["a", "b"])  # the newest: what Tune restores
    assert snapshot.statuses(str(tmp_path)) == {"a": "RUNNING", "b": "RUNNING"}
    assert snapshot.drop_unsaved(str(tmp_path), "mosei_") == ["c", "d"]
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("experiment"))
    assert left == ["mosei_a", "mosei_b", "mosei_e", "sens_x"]
    assert snapshot.drop_unsaved(str(tmp_path), "mosei_") == []


def test_without_a_snapshot_nothing_is_dropped(tmp_path):
    (tmp_path / "mosei_a").mkdir()
    assert snapshot.statuses(str(tmp_path)) is None
    assert snapshot.drop_unsaved(str(tmp_path), "mosei_") == []
    assert (tmp_path / "mosei_a").is_dir()


def test_an_unchanged_edit_leaves_the_file_as_it_was(tmp_path):
    _snapshot(tmp_path, "2026-01-01_00-00-00", ["a"])
    path = next(tmp_path.glob("experiment_state-*.json"))
    before = path.read_text()
    with snapshot.edited(str(tmp_path)) as pairs:
        assert [t["trial_id"] for t, _ in pairs] == ["a"]
    assert path.read_text() == before
    with snapshot.edited(str(tmp_path)) as pairs:
        pairs[0][0]["status"] = "PENDING"
    assert '\\"PENDING\\"' in path.read_text() and not list(tmp_path.glob("*.part"))
