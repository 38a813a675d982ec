"""`search.runtime.tuner`: results as records, trial names, the monitoring block (no Ray)."""

from __future__ import annotations

from types import SimpleNamespace

from search.runtime.records import FINAL, METRIC
from search.runtime.tuner import collect, describe, trial_name


def test_a_trial_whose_last_result_is_final_counts_complete_without_done(tmp_path):
    """A killed driver's snapshot can hold a trial's last epoch without Tune's `done`."""

    def tune_result(name, **last):
        metrics = {"trial_id": name, "epoch": 3, METRIC: 0.5, **last}
        return SimpleNamespace(metrics=metrics, config={}, path=str(tmp_path), error=None)

    results = [
        tune_result("patience", **{FINAL: True}),  # stopped by patience at epoch 3 of 8
        tune_result("cut"),  # interrupted mid-way: --resume continues it
        tune_result("all", epoch=8),  # all epochs, from a run before the marker existed
    ]
    records = collect(results, "mosi", finished=False, max_epochs=8)
    assert [r.state for r in records] == ["COMPLETE", "RUNNING", "COMPLETE"]


def test_a_trial_that_ran_on_after_the_snapshot_is_read_from_its_own_log(tmp_path, monkeypatch):
    """A resume whose budget was spent at the kill ends its restored trials at once, before
    they report again: Tune then knows a trial as the killed run's snapshot had it, while
    the trial's own result.json holds the epochs it ran after that snapshot."""
    import json

    def trial(name, epochs, final):
        folder = tmp_path / f"mosi_{name}"
        folder.mkdir()
        rows = [{"trial_id": name, "epoch": e, METRIC: 1.0 / e, "done": False} for e in epochs]
        rows[-1][FINAL] = final
        (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{cut")
        snapshot = {"trial_id": name, "epoch": 2, METRIC: 0.5}  # what Tune restored
        return SimpleNamespace(metrics=snapshot, config={"lr": 1}, path=str(folder), error=None)

    from pathlib import Path

    reads, read_text = [], Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda p, *a, **k: reads.append(p) or read_text(p))
    ended, cut = collect(
        [trial("ended", [1, 2, 3, 4], True), trial("cut", [1, 2, 3], False)],
        "mosi",
        finished=True,
        max_epochs=8,
    )
    assert (ended.state, ended.epochs, ended.score) == ("COMPLETE", 4, 0.25)
    assert (cut.state, cut.epochs, cut.score) == ("STOPPED", 3, 1 / 3)
    assert ended.scores == {1: 1.0, 2: 0.5, 3: 1 / 3, 4: 0.25}
    assert sorted(p.parent.name for p in reads) == ["mosi_cut", "mosi_ended"]  # once a trial


def test_a_trial_that_never_reported_is_itself_not_its_reused_actors_last_trial(tmp_path):
    """Tune fills a never-reported trial's metrics in from its actor, which a reused actor
    answers with the trial it ran before (its id and config): the record keeps its own."""
    folder = tmp_path / "mosi_mine"
    folder.mkdir()
    (folder / "params.json").write_text('{"lr": 0.001}')
    actor_defaults = {"trial_id": "other", "config": {"lr": 0.5}, "pid": 1}
    never = SimpleNamespace(
        metrics=actor_defaults, config={"lr": 0.5}, path=str(folder), error=None
    )
    (record,) = collect([never], "mosi", finished=True, max_epochs=8)
    assert record.trial_id == "mine" and record.params == {"lr": 0.001}
    assert record.state == "STOPPED" and record.epochs == 0


def test_a_grid_reads_its_records_with_checkpoints_and_no_epoch_limit(tmp_path):
    """A sweep's trials (no `max_epochs`): done is COMPLETE, the rest stays open for the next
    round; each record keeps its last checkpoint for the test scoring."""
    ckpt = SimpleNamespace(path=str(tmp_path / "checkpoint_000001"))
    done = SimpleNamespace(
        metrics={"trial_id": "a", "epoch": 40, METRIC: 0.4, "done": True},
        config={"point": "mosi|anchor|seed=1111"},
        path=str(tmp_path),
        error=None,
        checkpoint=ckpt,
    )
    open_ = SimpleNamespace(
        metrics={"trial_id": "b", "epoch": 40, METRIC: 0.4},
        config={"point": "p"},
        path=str(tmp_path),
        error=None,
    )
    first, second = collect([done, open_], "sens", finished=False, max_epochs=None)
    assert first.state == "COMPLETE" and first.checkpoint == ckpt.path
    assert first.params == {"point": "mosi|anchor|seed=1111"}
    assert second.state == "RUNNING" and second.checkpoint == ""


def test_trial_names_and_the_monitoring_block(tmp_path):
    assert trial_name("mosei", SimpleNamespace(trial_id="ab12_00003")) == "mosei_ab12_00003"
    session = SimpleNamespace(
        dashboard_url="http://127.0.0.1:8265", metrics_port=None, node_ip="", started_local=True
    )
    text = describe(session, tmp_path / "tune", "  Curves          c.csv")
    lines = text.strip().splitlines()
    assert lines[0] == "Monitoring" and "Ray dashboard" in lines[1]
    assert f"tensorboard --logdir {tmp_path / 'tune'} --host 127.0.0.1" in text
    assert lines[-1] == "  Curves          c.csv" and "Ray metrics" not in text
