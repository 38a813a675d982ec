"""`search.study.export`: the best record, checkpoints pruned to the best trial's."""

from __future__ import annotations

import math

from searchtest_util import sample_records

from search.study.export import best_record, prune_checkpoints


def test_finished_searches_keep_only_the_best_trials_checkpoints(tmp_path):
    for trial in ("mosei_a", "mosei_b", "mosei_orphan"):
        for k in range(2):
            (tmp_path / trial / f"checkpoint_00000{k}").mkdir(parents=True)
        (tmp_path / trial / "result.json").write_text("{}")
    assert prune_checkpoints(tmp_path, keep="mosei_b") == 4
    assert sorted(p.name for p in (tmp_path / "mosei_b").iterdir())[:2] == [
        "checkpoint_000000", "checkpoint_000001"
    ]  # fmt: skip
    assert not list((tmp_path / "mosei_a").glob("checkpoint_*"))
    assert (tmp_path / "mosei_a" / "result.json").is_file()


def test_the_best_record_is_the_best_complete_one():
    records = sample_records()  # t1 COMPLETE 0.4, t2 PRUNED 0.9, t3 ERROR, t4 RUNNING 0.8
    assert best_record(records, "min").trial_id == "t1"
    assert best_record(records, "max").trial_id == "t1"  # PRUNED and RUNNING never win
    assert math.isfinite(best_record(records, "min").score)
    assert best_record([r for r in records if r.state != "COMPLETE"], "min") is None
