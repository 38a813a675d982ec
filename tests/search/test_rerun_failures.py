"""A failed Ray task after the search costs only its own result: a seed re-run that raises is
recorded as failed while `summary.json`, the console report and `report.md` are written from
the others; a sweep's test scoring that raises leaves that point's test columns empty (said in
`curves.csv`, `plan.json` and on the console) and is retried by the next run.

The failures are injected inside the Ray tasks with `ATSUKO_INJECT_FAILURE` (search.fault_hook);
each run starts its own local Ray so that the variable reaches its workers."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml
from searchtest_util import FAST, REPO, TINY_SPACE, env, run

from search import export, fault_hook
from search.fault_hook import ENV, InjectedFailure
from search.sensitivity import read_curves

# ----------------------------------------------------------------------------- without Ray


def test_fault_hook_matches_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    fault_hook.maybe_fail("final_run", 1112)  # unset: nothing happens
    monkeypatch.setenv(ENV, "final_run:1112, score_test:mosi|anchor|*")
    with pytest.raises(InjectedFailure, match="final_run 1112"):
        fault_hook.maybe_fail("final_run", 1112)
    fault_hook.maybe_fail("final_run", 1111)
    with pytest.raises(InjectedFailure):
        fault_hook.maybe_fail("score_test", "mosi|anchor|seed=0")
    fault_hook.maybe_fail("score_test", "mosi|tau_mod=10|seed=0")


def test_task_error_is_one_line_from_the_cause() -> None:
    class Wrapped(Exception):
        cause = ValueError("line one\nCUDA out of memory")

    assert export.task_error(Wrapped("traceback...")) == "ValueError: CUDA out of memory"
    assert export.task_error(RuntimeError("")) == "RuntimeError: "
    assert export.task_error(KeyError("x")).startswith("KeyError")


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
    doc = json.loads((out / "summary.json").read_text())
    final = doc["final"]
    assert final["seeds"] == [1111, 1112] and final["failed"] == [1112]
    failed = [run for run in final["runs"] if "error" in run]
    assert len(failed) == 1 and "InjectedFailure" in failed[0]["error"]
    assert all(v["n"] == 1 for v in final["test"].values()) and final["test"]
    assert "the re-run with seed 1112 failed" in log and "seed 1112 FAILED" in log
    report = (out / "report.md").read_text()
    assert "seed 1112 failed" in report
    # the written file re-trains anywhere: CUDA where there is one, else the CPU
    assert yaml.safe_load((out / "best_config.yaml").read_text())["train"]["device"] == "auto"


SWEEP = """
import json, sys
from search.sensitivity import run_sensitivity
from search.settings import Settings
args = json.loads(sys.argv[1])
settings = Settings(**args.pop("settings"))
run_sensitivity(**args, settings=settings)
"""


def _sweep(out, inject: str | None) -> str:
    args = dict(
        datasets=["mosi"],
        params=["tau_mod"],
        seeds=1,
        points=2,
        with_test=True,
        out=str(out),
        settings=dict(
            synthetic=True,
            scale=0.05,
            max_epochs=1,
            space=str(TINY_SPACE),
            sets=["hidden=16", "batch_size=64"],
        ),
    )
    extra = {ENV: inject} if inject else {}
    proc = subprocess.run(
        [sys.executable, "-c", SWEEP, json.dumps(args)],
        cwd=REPO,
        env=env(extra),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_failed_test_scoring_keeps_the_sweep(tmp_path) -> None:
    log = _sweep(tmp_path, "score_test:mosi|anchor|*")
    folder = tmp_path / "sensitivity"
    rows = read_curves(folder / "curves.csv")
    anchor = [r for r in rows if r["anchor"]]
    others = [r for r in rows if not r["anchor"]]
    assert anchor and others
    assert all("InjectedFailure" in r["test_error"] for r in anchor)
    assert all(math.isnan(r["test/Mult_acc_7"]) for r in anchor)
    assert all(math.isfinite(r["test/Mult_acc_7"]) and not r["test_error"] for r in others)
    plan = json.loads((folder / "plan.json").read_text())
    assert [k.split("|")[:2] for k in plan["test_failures"]] == [["mosi", "anchor"]]
    assert "scoring the test split of mosi|anchor" in log
    from search.report import build_report

    build_report(tmp_path)
    assert "test scoring of mosi|anchor" in (tmp_path / "report.md").read_text()
    # the next run of the same command retries the failed scoring, and only it
    log = _sweep(tmp_path, None)
    assert "Scoring the test split once for 1 finished point(s)" in log
    rows = read_curves(folder / "curves.csv")
    assert all(math.isfinite(r["test/Mult_acc_7"]) for r in rows)
    assert "test_error" not in rows[0]
    assert json.loads((folder / "plan.json").read_text())["test_failures"] == {}
