"""One row per trial: what `trials.csv`, `study.db` and the summary say about it.

States: COMPLETE (ran its full budget or stopped by its own early stopping), PRUNED (stopped
early by the scheduler, ASHA), ERROR (failed after its retries, e.g. a NaN loss), STOPPED (ended
by `--time-budget`), RUNNING / PENDING (interrupted; `--resume` continues them).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METRIC = "best_score"  # what the searcher and the scheduler optimise: best validation score
STOPPED_EARLY = "stopped_early"  # set on a result by the scheduler-stop marker callback
FINAL = "final"  # set by the trainable on the result of a trial's last epoch
FINAL_STATES = ("COMPLETE", "PRUNED", "ERROR", "STOPPED")
# a seeded trial's origin, `SOURCE:TRIAL_ID` (see `search.study.warm_start`): a key of the Tune
# trial's config beside the sampled parameters, a trials.csv column and a study.db attribute
WARM_START = "warm_start"


@dataclass
class TrialRecord:
    trial_id: str
    state: str
    params: dict[str, Any]
    epochs: int = 0  # epochs run
    best_epoch: int = 0
    score: float = math.nan  # best validation selection score
    valid: dict[str, float] = field(default_factory=dict)  # validation metrics at best epoch
    node_ip: str = ""
    node_id: str = ""
    started: float = math.nan  # wall-clock time the trial's training began (first attempt)
    finished: float = math.nan  # wall-clock time of its last report
    error: str = ""
    path: str = ""  # the trial's folder under --out/tune
    scores: dict[int, float] = field(default_factory=dict)  # epoch -> best score so far
    checkpoint: str = ""  # the trial's last checkpoint (not in trials.csv)
    warm_start: str = ""  # SOURCE:TRIAL_ID of the earlier search's trial it re-runs, if seeded

    def row(self, param_names: Iterable[str], metric_names: Iterable[str]) -> dict[str, Any]:
        out = {
            "trial_id": self.trial_id,
            "state": self.state,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "score": self.score,
        }
        out.update({f"param/{k}": self.params.get(k, "") for k in param_names})
        out[WARM_START] = self.warm_start
        out.update({f"valid/{k}": self.valid.get(k, "") for k in metric_names})
        out.update(
            node_ip=self.node_ip,
            node_id=self.node_id,
            started=self.started,
            finished=self.finished,
            error=self.error,
        )
        return out


def short_error(text: str | None) -> str:
    """The exception line of a traceback (e.g. 'NonFiniteLoss: non-finite loss at epoch 2 ...')."""
    if not text:
        return ""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    pattern = re.compile(r"^([\w.]+\.)?\w*(Error|Exception|Loss|Interrupt|Died)\b.*")
    hits = [ln for ln in lines if pattern.match(ln) and not ln.startswith("ray.exceptions")]
    return (hits[-1] if hits else lines[-1] if lines else "")[:500]


def logged_results(path: str | Path | None) -> list[dict[str, Any]]:
    """The results in a trial folder's `result.json` (Tune's JSON-lines log) that carry an
    epoch, in order; none where there is no such file."""
    log = Path(path) / "result.json" if path else None
    if log is None or not log.is_file():
        return []
    rows = []
    for line in log.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed driver
        if isinstance(row, dict) and "epoch" in row:
            rows.append(row)
    return rows


def read_scores(path: str | Path | None) -> dict[int, float]:
    """Epoch -> best score so far, from the trial's `result.json`."""
    return _scores(logged_results(path))


def _scores(results: list[dict[str, Any]]) -> dict[int, float]:
    return {int(r["epoch"]): float(r[METRIC]) for r in results if METRIC in r}


def newest_result(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The result of the highest epoch among a trial's logged `results` (None: none)."""
    return max(reversed(results), key=lambda r: int(r["epoch"]), default=None)


def build(
    trial_id: str,
    config: dict[str, Any],
    last: dict[str, Any] | None,
    *,
    status: str,
    error: str = "",
    path: str = "",
    logged: list[dict[str, Any]] | None = None,
) -> TrialRecord:
    """A record from Tune's view of one trial.

    `status` is Tune's (TERMINATED, ERROR, RUNNING, PENDING, PAUSED) or 'STOPPED' for trials that
    a time budget ended; TERMINATED becomes COMPLETE or PRUNED from the last result. `logged`:
    the results of its `result.json` in `path`, where the caller has read them already.
    """
    last = dict(last or {})
    params = dict(config)
    warm_start = str(params.pop(WARM_START, "") or "")
    if status == "ERROR":
        state = "ERROR"
    elif status == "TERMINATED":
        if last.get(STOPPED_EARLY):
            state = "PRUNED"
        elif last.get("done"):
            state = "COMPLETE"
        else:
            state = "STOPPED"
    elif status == "STOPPED":
        state = "STOPPED"
    elif status in ("RUNNING", "PAUSED"):
        state = "RUNNING" if last.get("epoch") else "PENDING"
    else:
        state = "PENDING"
    valid = last.get("best_valid") or {}
    if not isinstance(valid, dict):
        valid = {}
    valid = {**valid, **_prefixed(last, "best_valid/")}
    scores = _scores(logged_results(path) if logged is None else logged)
    if "epoch" in last and METRIC in last:
        scores.setdefault(int(last["epoch"]), float(last[METRIC]))
    return TrialRecord(
        trial_id=trial_id,
        state=state,
        params=params,
        epochs=int(last.get("epoch", 0) or 0),
        best_epoch=int(last.get("best_epoch", 0) or 0),
        score=float(last.get(METRIC, math.nan)),
        valid={k: float(v) for k, v in valid.items()},
        node_ip=str(last.get("node_ip", "") or ""),
        node_id=str(last.get("node_id", "") or ""),
        started=float(last.get("started_at", math.nan)),
        finished=float(last.get("wall_time", math.nan)),
        error=short_error(error) if state == "ERROR" else "",
        path=str(path or ""),
        scores=dict(sorted(scores.items())),
        warm_start=warm_start,
    )


def _prefixed(flat: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}


def write_csv(
    records: list[TrialRecord], path: str | Path, param_names: Iterable[str]
) -> list[dict[str, Any]]:
    """Write `trials.csv` atomically (a reader never sees half a file); returns the rows.
    Trials the file already lists keep their rows' order, new ones follow: the file stays in
    the order the search made its trials, although a resumed search's results come back in
    another."""
    param_names = list(param_names)
    records = _in_file_order(records, Path(path))
    metric_names = sorted({k for r in records for k in r.valid})
    rows = [r.row(param_names, metric_names) for r in records]
    write_rows(Path(path), rows, list(rows[0]) if rows else ["trial_id", "state"])
    return rows


def _in_file_order(records: list[TrialRecord], path: Path) -> list[TrialRecord]:
    try:
        with path.open(newline="") as f:
            listed = [row["trial_id"] for row in csv.DictReader(f)]
    except (OSError, KeyError, csv.Error):  # no file yet, or not ours: the order given
        return records
    rank = {trial_id: k for k, trial_id in enumerate(listed)}
    return sorted(records, key=lambda r: rank.get(r.trial_id, len(rank)))  # stable: new in order


def write_rows(path: Path, rows: list[dict[str, Any]], header: list[str]) -> None:
    """Write `rows` as CSV atomically (a reader never sees half a file); absent cells empty."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def counts(records: Iterable[TrialRecord]) -> dict[str, int]:
    """How many records are in each state (in order of first appearance)."""
    return dict(Counter(r.state for r in records))
