"""A sweep's test scoring that raises leaves that point's test columns empty (said in
`curves.csv`, `plan.json`, the console and the report) and is retried by the next run of the
same command. The failure is injected inside the Ray task with `ATSUKO_INJECT_FAILURE`
(`search.runtime.faults`); each run starts its own local Ray so that the variable reaches its
workers."""

from __future__ import annotations

import json
import math

import pytest
from searchtest_util import TINY_SPACE
from sweep_child import run_sweep

from search import layout
from search.runtime.faults import ENV
from search.sweep.curves import read_curves


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
    return run_sweep(args, {ENV: inject} if inject else None)


@pytest.mark.slow
def test_failed_test_scoring_keeps_the_sweep(tmp_path) -> None:
    log = _sweep(tmp_path, "score_test:mosi|anchor|*")
    folder = layout.sweep_dir(tmp_path)
    rows = read_curves(folder / layout.SENS_CURVES)
    anchor = [r for r in rows if r["anchor"]]
    others = [r for r in rows if not r["anchor"]]
    assert anchor and others
    assert all("InjectedFailure" in r["test_error"] for r in anchor)
    assert all(math.isnan(r["test/Mult_acc_7"]) for r in anchor)
    assert all(math.isfinite(r["test/Mult_acc_7"]) and not r["test_error"] for r in others)
    plan = json.loads((folder / layout.SENS_PLAN).read_text())
    assert [k.split("|")[:2] for k in plan["test_failures"]] == [["mosi", "anchor"]]
    assert "scoring the test split of mosi|anchor" in log
    from search.report import build_report

    build_report(tmp_path)
    assert "test scoring of mosi|anchor" in (tmp_path / layout.REPORT_MD).read_text()
    # the next run of the same command retries the failed scoring, and only it
    log = _sweep(tmp_path, None)
    assert "Scoring the test split once for 1 finished point(s)" in log
    rows = read_curves(folder / layout.SENS_CURVES)
    assert all(math.isfinite(r["test/Mult_acc_7"]) for r in rows)
    assert "test_error" not in rows[0]
    assert json.loads((folder / layout.SENS_PLAN).read_text())["test_failures"] == {}
