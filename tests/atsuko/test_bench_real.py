"""`python -m atsuko.bench_real`: its inputs are checked before anything is written."""

from __future__ import annotations

import pytest

from atsuko import bench_real
from atsuko.cli import run_cli


def test_a_folder_without_the_real_pieces_exits_2(tmp_path, capsys):
    (tmp_path / "mosi").mkdir()
    (tmp_path / "mosi" / "label.csv").write_text("id,text,label,mode\n")
    with pytest.raises(SystemExit) as exit_:
        run_cli(bench_real.main, [str(tmp_path), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "mintrec/train.tsv: not found" in err
    assert not (tmp_path / "out").exists()


def test_a_bad_set_exits_2_before_writing(real_data, minilm, tmp_path, capsys):
    argv = [str(real_data), "--out", str(tmp_path / "out"), "--set", "model.hidden=0"]
    with pytest.raises(SystemExit) as exit_:
        run_cli(bench_real.main, argv)
    assert exit_.value.code == 2
    assert "model.hidden: expected a positive value" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_runs_use_the_frozen_encoder(tmp_path, minilm):
    config = bench_real.frozen_config("mintrec", tmp_path, minilm, ["train.seed=1112"])
    assert config.model.bert_freeze and config.model.text_encoder == "bert"
    assert config.model.bert_path == str(minilm) and config.train.seed == 1112
    assert config.train.lr == 0.0005  # MIntRec's defaults, as any run of the dataset
    stats = bench_real.mean_std([{"acc": 0.5}, {"acc": 0.7}], ["acc"])
    assert stats["acc"] == pytest.approx((0.6, 0.1))
