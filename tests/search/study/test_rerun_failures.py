"""A failed seed re-run costs only its own result: a re-run that raises is recorded as failed
while `summary.json`, the console report and `report.md` are written from the others; and
`best_config.yaml` says `device: auto`. A sweep's failed test scoring:
tests/search/sweep/test_scoring_failures.py.

The failure is injected inside the Ray task with `ATSUKO_INJECT_FAILURE`
(`search.runtime.faults`); the run starts its own local Ray so that the variable reaches its
workers."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from searchtest_util import FAST, run

from search import layout
from search.runtime.faults import ENV
from search.study import export

# ----------------------------------------------------------------------------- without Ray


def test_summary_lists_failed_runs() -> None:
    runs = [
        {"seed": 1111, "valid": {"MAE": 0.5}, "test": {"MAE": 0.6}},
        {"seed": 1112, "error": "InjectedFailure: boom"},
    ]
    doc = export.summary(
        dataset="mosi",
        metric="MAE",
        mode="min",
        requested=1,
        records=[],
        best=None,
        best_config=None,
        runs=runs,
        ended="complete",
    )
    assert doc["final"]["seeds"] == [1111, 1112] and doc["final"]["failed"] == [1112]
    assert doc["final"]["test"]["MAE"] == {"mean": 0.6, "std": 0.0, "n": 1}


# ----------------------------------------------------------------------------- on Ray


@pytest.mark.slow
def test_failed_seed_rerun_keeps_the_others(tmp_path) -> None:
    out = tmp_path / "out"
    r = run(
        *FAST,
        "--final-seeds",
        "2",
        "--out",
        str(out),
        timeout=400,
        extra_env={ENV: "final_run:1112"},
    )
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    doc = json.loads((out / layout.SUMMARY).read_text())
    final = doc["final"]
    assert final["seeds"] == [1111, 1112] and final["failed"] == [1112]
    failed = [run for run in final["runs"] if "error" in run]
    assert len(failed) == 1 and "InjectedFailure" in failed[0]["error"]
    assert all(v["n"] == 1 for v in final["test"].values()) and final["test"]
    assert "seed 1112 failed" in log and "seed 1112 FAILED" in log  # the winner's, a trial or not
    ended = re.findall(r"final re-runs \(best trials and the default\): (\d+)/(\d+) done", log)
    assert [int(n) for n, _ in ended] == list(range(1, len(ended) + 1))  # a line as each ends
    assert ended[-1][0] == ended[-1][1] and len(ended) >= 4  # 2 seeds of the default and a trial
    assert doc["default"]["failed"] == [1112]  # the default's run failed too: said and left out
    assert "Default configuration's run with seed 1112 FAILED: InjectedFailure" in log
    report = (out / layout.REPORT_MD).read_text()
    assert "seed 1112 failed" in report
    # the written file re-trains anywhere: CUDA where there is one, else the CPU
    assert yaml.safe_load((out / layout.BEST_CONFIG).read_text())["train"]["device"] == "auto"
