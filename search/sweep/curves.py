"""`curves.csv` of a sweep: one row per (dataset, parameter, value, seed), written from the
trials' outcomes and read back by the figures and the report; and the saved plan.
Tested in `tests/search/sweep/test_sensitivity.py`.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from search import layout
from search.runtime.records import write_rows
from search.sweep.plan import Plan


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def curve_rows(
    plan: Plan,
    outcomes: dict[str, dict[str, Any]],
    tests: dict[str, dict[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """One row per (dataset, parameter, value, seed) from the trials' outcomes by label.

    An outcome: {'state', 'epochs', 'best_epoch', 'valid': {metric: value}, 'trial_id'}.
    Points whose trial never reported are left out (an interrupted sweep).
    """
    tests = tests or {}
    valid_names = sorted({k for o in outcomes.values() for k in (o.get("valid") or {})})
    test_names = sorted({k for t in tests.values() for k in t if k != "error"})
    test_names = test_names if plan.with_test else []
    rows = []
    for point in plan.points:
        outcome = outcomes.get(point["trial"])
        if not outcome or outcome.get("state") in (None, "PENDING"):
            continue
        row: dict[str, Any] = {
            "dataset": point["dataset"],
            "parameter": point["parameter"],
            "value": point["value"],
            "seed": point["seed"],
            "anchor": int(point["anchor"]),
            "state": outcome.get("state", ""),
            "epochs": outcome.get("epochs", ""),
            "best_epoch": outcome.get("best_epoch", ""),
        }
        valid = outcome.get("valid") or {}
        for name in valid_names:
            row[f"valid/{name}"] = valid.get(name, "")
        test = tests.get(point["trial"], {})
        for name in test_names:
            row[f"test/{name}"] = test.get(name, "")
        if plan.with_test and "error" in test:
            row["test_error"] = test["error"]  # the scoring task failed (retried on rerun)
        row["trial_id"] = outcome.get("trial_id", "")
        rows.append(row)
    return rows


def write_curves(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write `curves.csv` atomically; the header is the union of every row's columns."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header: list[str] = ["dataset", "parameter", "value", "seed", "anchor", "state"]
    for row in rows:
        header += [k for k in row if k not in header]
    write_rows(path, rows, header)
    return path


def read_curves(path: str | Path) -> list[dict[str, Any]]:
    """`curves.csv` back as dicts; metric columns as floats (NaN where empty)."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in list(row):
            if key.startswith(("valid/", "test/")):
                v = _finite(row[key])
                row[key] = v if v is not None else math.nan
        row["seed"] = int(row["seed"]) if row.get("seed") else 0
        row["anchor"] = row.get("anchor") in ("1", "True", "true")
    return rows


def read_plan(out: str | Path) -> dict[str, Any] | None:
    path = Path(out) / layout.SENS_DIR / layout.SENS_PLAN
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def complete(folder: Path, plan: Plan) -> bool:
    """Whether `curves.csv` already holds every point in a final state (nothing to run)."""
    path = folder / layout.SENS_CURVES
    if not path.is_file():
        return False
    rows = read_curves(path)
    done = {
        (r["dataset"], r["parameter"], r["value"], r["seed"])
        for r in rows
        if r["state"] in ("COMPLETE", "ERROR")
        and (not plan.with_test or r["state"] == "ERROR" or _has_test(r))
    }
    want = {(p["dataset"], p["parameter"], p["value"], p["seed"]) for p in plan.points}
    return want <= done


def _has_test(row: dict[str, Any]) -> bool:
    """Whether a `curves.csv` row holds test scores (its scoring did not fail)."""
    scores = [v for k, v in row.items() if k.startswith("test/")]
    return not row.get("test_error") and any(math.isfinite(v) for v in scores)
