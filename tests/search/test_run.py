"""`search/run.py`: --help, and every bad input ends with status 2 and one message (no Ray)."""

from __future__ import annotations

import json

import pytest
from searchtest_util import TINY_SPACE, run

from atsuko.cli import run_cli
from search import run as cli
from search import settings as settings_mod

OK = ["--dataset", "mosei", "--synthetic", "--space", str(TINY_SPACE)]


def fail(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        run_cli(cli.main, argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1, err
    return err


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    flags = (
        "--dataset --synthetic --data --num-samples --max-epochs --concurrency --cpus-per-trial "
        "--gpus-per-trial --address --out --resume --space --sampler --scheduler --seed "
        "--time-budget --smoke-test --final-seeds --max-failures --dashboard-host --set --config "
        "--final-top-k --final-margin --final-cv --reduction-factor --brackets --epoch-budget "
        "--onset-epoch"
    )
    for flag in flags.split():
        assert flag in text, flag
    for output in ("best_config.yaml", "trials.csv", "study.db", "summary.json", "TensorBoard"):
        assert output in text


BAD_FLAGS = {
    "unknown flag": (["--dataset", "mosei", "--num-trials", "3"], "--num-trials"),
    "zero samples": (OK + ["--num-samples", "0"], "--num-samples"),
    "negative gpus": (OK + ["--gpus-per-trial", "-1"], "--gpus-per-trial"),
    "zero cpus": (OK + ["--cpus-per-trial", "0"], "--cpus-per-trial"),
    "word for a number": (OK + ["--max-epochs", "ten"], "--max-epochs"),
    "unknown sampler": (OK + ["--sampler", "grid"], "--sampler"),
    "unknown scheduler": (OK + ["--scheduler", "pbt"], "--scheduler"),
    "two data sources": (["--dataset", "mosei", "--synthetic", "--data", "x.pkl"], "--data"),
    "no dataset": (["--synthetic"], "--dataset"),
    "unknown dataset": (["--dataset", "iemocap", "--synthetic"], "--dataset"),
    "bad time budget": (OK + ["--time-budget", "-5"], "--time-budget"),
    "grace after the last epoch": (OK + ["--max-epochs", "2", "--grace-period", "3"], "--grace"),
    "resume with search flags": (["--resume", "x", "--num-samples", "3"], "--num-samples"),
    "resume of nothing": (["--resume", "no/such/search"], "search.json"),
    "no top trial": (OK + ["--final-top-k", "0"], "--final-top-k"),
    "negative margin": (OK + ["--final-margin", "-1"], "--final-margin"),
    "margin without re-runs": (
        OK + ["--final-seeds", "0", "--final-margin", "2"],
        "--final-margin",
    ),
    "cv without re-runs": (OK + ["--final-seeds", "0", "--final-cv"], "--final-cv"),
    "cv with one fold": (OK + ["--final-seeds", "1", "--final-cv"], "--final-seeds 2 or more"),
    "cv beside data.folds": (OK + ["--final-cv", "--set", "data.folds=3"], "data.folds 3"),
    "reduction factor 1": (OK + ["--reduction-factor", "1"], "--reduction-factor"),
    "zero brackets": (OK + ["--brackets", "0"], "--brackets"),
    "unknown --set key": (OK + ["--set", "tau_bands=1"], "tau_bands"),
    "wrong --set type": (OK + ["--set", "lr=fast"], "train.lr"),
    "--set without =": (OK + ["--set", "lr"], "key=value"),
    "missing --config": (OK + ["--config", "no/such.yaml"], "no/such.yaml"),
    "missing --space": (["--dataset", "mosei", "--synthetic", "--space", "no/such.yaml"], "such"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLAGS))
def test_bad_flags_exit_2_with_one_message(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default --out stays out of the repository
    argv, expected = BAD_FLAGS[case]
    assert expected in fail(argv, capsys)


def test_a_bad_space_names_the_key(capsys, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  tau_band: {type: float, low: 2.0, high: 1.0}\n")
    err = fail(["--dataset", "mosei", "--synthetic", "--space", str(space)], capsys)
    assert "params.tau_band" in err and "low (2.0) is above high (1.0)" in err


def test_missing_dataset_suggests_synthetic(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATSUKO_DATA", raising=False)
    err = fail(["--dataset", "mosi", "--out", str(tmp_path / "out")], capsys)
    assert "--synthetic" in err
    assert not (tmp_path / "out").exists()  # nothing written for a search that never started


def test_an_existing_search_is_not_overwritten(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "search.json").write_text("{}")
    err = fail(OK + ["--out", str(out)], capsys)
    assert "--resume" in err


def test_smoke_test_fills_a_tiny_budget_and_explicit_flags_win():
    ns = cli.parser().parse_args(["--dataset", "mosei", "--smoke-test", "--num-samples", "5"])
    s = settings_mod.from_args(ns)
    assert s.synthetic and s.num_samples == 5 and s.max_epochs == 2 and s.scale == 0.02
    base, pinned = settings_mod.base_config(s)
    assert base.train.epochs == 2 and base.data.scale == 0.02 and base.train.threads == 1
    assert base.train.device == "cpu" and pinned == {}
    s.gpus_per_trial = 0.25
    assert settings_mod.base_config(s)[0].train.device == "cuda"


def test_a_config_files_device_and_threads_replaced_by_the_trials_are_named(capsys, tmp_path):
    asks = tmp_path / "asks.yaml"
    asks.write_text("train:\n  device: cuda\n  threads: 4\n")
    s = settings_mod.from_args(cli.parser().parse_args(OK + ["--config", str(asks)]))
    base, _ = settings_mod.base_config(s)
    out = capsys.readouterr().out
    assert base.train.device == "cpu" and base.train.threads == 1
    assert "train.device cuda is replaced by each trial's cpu, from --gpus-per-trial" in out
    assert "train.threads 4 is replaced by each trial's 1, from --cpus-per-trial" in out
    auto = tmp_path / "auto.yaml"
    auto.write_text("train:\n  device: auto\n  threads: 1\n")
    settings_mod.base_config(
        settings_mod.from_args(cli.parser().parse_args(OK + ["--config", str(auto)]))
    )
    assert "replaced" not in capsys.readouterr().out


def test_top_k_and_asha_flags_reach_the_settings():
    argv = OK + ["--final-top-k", "5", "--reduction-factor", "3", "--brackets", "2"]
    s = settings_mod.from_args(cli.parser().parse_args([*argv, "--final-margin", "0"]))
    assert (s.final_top_k, s.reduction_factor, s.brackets, s.final_margin) == (5, 3, 2, 0.0)
    plain = settings_mod.from_args(cli.parser().parse_args(OK))
    assert (plain.final_top_k, plain.reduction_factor, plain.brackets) == (3, 4, 1)
    assert plain.final_margin == 1.0


def test_resume_reads_the_saved_settings(tmp_path):
    ns = cli.parser().parse_args(OK + ["--num-samples", "7", "--out", str(tmp_path / "o")])
    s = settings_mod.from_args(ns)
    settings_mod.save(s, settings_mod.base_config(s)[0])
    back = settings_mod.from_args(cli.parser().parse_args(["--resume", str(tmp_path / "o")]))
    assert back.num_samples == 7 and back.space == str(TINY_SPACE)
    # what to add once the search ends may come with --resume (it is not a search setting)
    after = ["--resume", str(tmp_path / "o"), "--diagnostics", "--importance", "fanova"]
    assert settings_mod.from_args(cli.parser().parse_args(after)).num_samples == 7
    assert json.loads((tmp_path / "o" / "search.json").read_text())["num_samples"] == 7


def test_the_real_cli_prints_no_traceback(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  nope: {type: int, low: 1, high: 2}\n")
    out = str(tmp_path / "out")
    done = run("--dataset", "mosei", "--synthetic", "--space", str(space), "--out", out)
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and "nope" in done.stderr
    assert "Traceback" not in done.stderr
