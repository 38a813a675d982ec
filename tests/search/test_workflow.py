"""`search/run.py` dispatch: a search or a sensitivity sweep (several datasets), then the report."""

from __future__ import annotations

import csv

import pytest
from searchtest_util import TINY_SPACE, run


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "mosi,mosei", "--synthetic"], "a search takes one dataset"),
        (["--dataset", "mosi", "--seeds", "3"], "--seeds belongs to a sensitivity sweep"),
        (["--dataset", "mosi,imdb", "--sensitivity", "tau_mod"], "unknown dataset 'imdb'"),
        (["--dataset", "mosi,mosi", "--sensitivity", "tau_mod"], "named twice"),
        (["--sensitivity", "tau_mod"], "--dataset is required"),
        (["--dataset", "mosi", "--sensitivity", "tau_mod", "--sampler", "random"], "--sampler"),
        (["--dataset", "mosi", "--sensitivity", "tau_mod", "--num-samples", "5"], "a search"),
        (["--dataset", "mosi", "--sensitivity", "tau_mod", "--final-seeds", "2"], "a search"),
        (["--dataset", "mosi", "--diagnostics-epochs", "2"], "add --diagnostics"),
        (["--dataset", "mosi", "--sensitivity", "tau_mod", "--resume", "x"], "same --out"),
    ],
)
def test_bad_combinations_exit_2(args, message):
    p = run(*args, timeout=120)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_two_dataset_sweep_from_the_command_line(tmp_path):
    out = tmp_path / "sweep"
    p = run(
        "--dataset", "mosi,mosei", "--smoke-test", "--space", str(TINY_SPACE),
        "--sensitivity", "tau_mod", "--points", "2", "--seeds", "1", "--max-epochs", "1",
        "--out", str(out), timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "sensitivity" / "curves.csv")))
    assert {r["dataset"] for r in rows} == {"mosi", "mosei"}
    assert all(r["parameter"] == "tau_mod" and r["seed"] for r in rows)
    assert len({r["value"] for r in rows}) >= 2
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
