"""After the search: the best configuration, `summary.json`, and checkpoints pruned.

Trials are compared on the validation split only, among those that ran their full budget
(COMPLETE); `search.study.final` re-trains the best few with every `--final-seeds` seed (1111,
1112, ...) as Ray tasks with the trials' resources and picks the winner. `best_config.yaml` is
the winner's complete `atsuko.config` file: `python -m atsuko.train --config best_config.yaml
--seed S` re-trains it; with the trial's seed (`train.seed`) it reproduces the trial's
validation score. `summary.json` holds the winner's validation and test metrics as mean and std
over the seeds (test scored once per seed). A re-run whose task fails (a CUDA out-of-memory
error, a lost node) is recorded as failed, with its error, in `summary.json` (`final.failed`),
on the console and in the report; the others are summarised as usual.

`best_config.yaml` says `train.device: auto` even when the trials ran on GPUs (`cuda`): its
Reproduce command then runs on CUDA where there is one and on the CPU elsewhere.
Tested in `tests/search/study/test_export.py` and `test_rerun_failures.py`.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
from pathlib import Path
from typing import Any

from atsuko import config as cfg
from atsuko.config import Config
from search import layout
from search.runtime.records import TrialRecord, counts
from search.study.space import Space


def best_record(records: list[TrialRecord], mode: str) -> TrialRecord | None:
    """The COMPLETE trial with the best validation score (ties: the earlier trial)."""
    done = [r for r in records if r.state == "COMPLETE" and math.isfinite(r.score)]
    if not done:
        return None
    sign = 1.0 if mode == "min" else -1.0
    return min(done, key=lambda r: sign * r.score)


def prune_checkpoints(tune_dir: Path, keep: str | None) -> int:
    """After a finished search, delete every trial's checkpoints but those of `keep` (a trial
    folder name, the best trial's).

    They exist for retries and --resume; a finished search needs neither, and with wide models
    they add up to gigabytes. Returns how many checkpoint folders were removed.
    """
    removed = 0
    for folder in Path(tune_dir).glob("*/checkpoint_*"):
        if folder.parent.name != keep and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def write_best_config(base: Config, space: Space, record: TrialRecord, path: Path) -> Config:
    """Write the best trial's complete configuration with `train.device: auto` (portable: the
    same file re-trains on a CPU machine); returns it as the trials ran (their device)."""
    return write_config(space.apply(base, record.params), path)


def write_config(config: Config, path: Path) -> Config:
    """Write `config` with `train.device: auto` (also the default configuration, where it won
    the final choice); returns it as given."""
    cfg.write(config.replace(**{"train.device": "auto"}), path)
    return config


def mean_std(runs: list[dict[str, Any]], split: str) -> dict[str, dict[str, float]]:
    """Per metric: mean and sample standard deviation (ddof=1; 0 for one run) over runs."""
    table: dict[str, list[float]] = {}
    for run in runs:
        for key, value in (run.get(split) or {}).items():
            table.setdefault(key, []).append(float(value))
    return {
        k: {
            "mean": statistics.fmean(v),
            "std": statistics.stdev(v) if len(v) > 1 else 0.0,
            "n": len(v),
        }
        for k, v in table.items()
    }


def summary(
    *,
    dataset: str,
    metric: str,
    mode: str,
    requested: int,
    records: list[TrialRecord],
    best: TrialRecord | None,
    best_config: Config | None,
    runs: list[dict[str, Any]],
    ended: str,
) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    doc: dict[str, Any] = {
        "dataset": dataset,
        "select": {"metric": metric, "mode": mode},
        "ended": ended,
        "trials": {"requested": requested, "total": len(records), **counts(records)},
        "best_trial": None,
        "final": {
            "seeds": [r.get("seed") for r in runs],
            "failed": [r.get("seed") for r in runs if "error" in r],
            "valid": mean_std(ok, "valid"),
            "test": mean_std(ok, "test"),
            "runs": runs,
        },
        "outputs": {
            "best_config": layout.BEST_CONFIG if best is not None else None,
            "trials": layout.TRIALS,
            "study": layout.STUDY,
            "tensorboard": layout.TUNE_DIR,
        },
    }
    if best is not None and best_config is not None:
        doc["best_trial"] = {
            "trial_id": best.trial_id,
            "score": best.score,
            "epochs": best.epochs,
            "best_epoch": best.best_epoch,
            "seed": best_config.train.seed,
            "params": best.params,
            "valid": best.valid,
            "node_ip": best.node_ip,
            "node_id": best.node_id,
        }
    return doc


def write_summary(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
