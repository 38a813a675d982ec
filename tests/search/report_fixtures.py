"""Crafted search folders for the report, figure and importance tests (no training, no Ray).

Written with the search's own writers (`records.write_csv`, `StudyMirror`, `export.summary`) and
the sweep's own planner, so the files have exactly the shapes a real run leaves.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np

from atsuko import config as cfg
from search import layout
from search.runtime.records import TrialRecord, write_csv
from search.settings import Settings, base_config
from search.study import export, final
from search.study.space import load_space
from search.study.study_mirror import StudyMirror, study_name
from search.sweep import curves
from search.sweep import plan as plans

TINY_SPACE = Path(__file__).with_name("tiny_space.yaml")
SETTINGS = Settings(
    dataset="mosei", synthetic=True, scale=0.05, max_epochs=2, space=str(TINY_SPACE)
)


def make_records(n: int = 12, seed: int = 0, running: int = 0) -> list[TrialRecord]:
    """`n` finished trials (a mix of COMPLETE and PRUNED, one ERROR) and `running` unfinished."""
    rng = random.Random(seed)
    records = []
    t0 = 1_700_000_000.0
    for i in range(n + running):
        nb = rng.randint(1, 3)
        params = {
            "num_bands": nb,
            "tau_mod": 10 ** rng.uniform(-1, 1),
            "lr": 10 ** rng.uniform(-3, -2),
        }
        params.update({"hidden": 16, "batch_size": 64})
        if nb >= 2:
            params["tau_band"] = 10 ** rng.uniform(-1, 1)
        score = (
            0.6 + 40 * params["lr"] + 0.05 * abs(math.log10(params["tau_mod"])) + rng.gauss(0, 0.01)
        )
        if i >= n:
            state = "RUNNING"
        elif i == 3:
            state = "ERROR"
        elif i % 4 == 1:
            state = "PRUNED"
        else:
            state = "COMPLETE"
        epochs = 2 if state == "COMPLETE" else 1
        records.append(
            TrialRecord(
                trial_id=f"t{i:03d}",
                state=state,
                params=params,
                epochs=epochs,
                best_epoch=epochs,
                score=score if state != "ERROR" else math.nan,
                valid={"MAE": score, "Mult_acc_7": 0.4 - score / 10} if state != "ERROR" else {},
                node_ip="127.0.0.1",
                node_id="node0",
                started=t0 + 10 * i,
                finished=t0 + 10 * i + 15,
                error="NonFiniteLoss: non-finite loss at epoch 1" if state == "ERROR" else "",
                scores={1: score + 0.05, 2: score} if epochs == 2 else {1: score},
            )
        )
    return records


def write_search(out: Path, *, n: int = 12, finished: bool = True, running: int = 0) -> Path:
    """A search folder: search.json, base_config.yaml, space.yaml, trials.csv, study.db and,
    when `finished`, best_config.yaml and summary.json."""
    out.mkdir(parents=True, exist_ok=True)
    base, _ = base_config(SETTINGS)
    space = load_space(TINY_SPACE, base)
    (out / layout.SETTINGS).write_text(json.dumps(SETTINGS.to_json(), indent=2))
    cfg.write(base, out / layout.BASE_CONFIG)
    (out / layout.SPACE_COPY).write_text(TINY_SPACE.read_text())
    records = make_records(n, running=running)
    write_csv(records, out / layout.TRIALS, space.names)
    StudyMirror(out / layout.STUDY, study_name("mosei"), "min", space.distributions()).sync(records)
    if finished:
        best = export.best_record(records, "min")
        best_config = export.write_best_config(base, space, best, out / layout.BEST_CONFIG)
        runs = [
            {
                "dataset": "mosei",
                "seed": 1111 + k,
                "best_epoch": 2,
                "valid": {"MAE": 0.7 + 0.01 * k, "Mult_acc_7": 0.3 - 0.01 * k},
                "test": {"MAE": 0.75 + 0.02 * k, "Mult_acc_7": 0.28 + 0.01 * k},
            }
            for k in range(3)
        ]
        doc = export.summary(
            dataset="mosei",
            metric="MAE",
            mode="min",
            requested=n,
            records=records,
            best=best,
            best_config=best_config,
            runs=runs,
            ended="complete",
        )
        default = [
            {**r, "valid": {"MAE": 0.8 + 0.01 * k}, "test": {"MAE": 0.7 + 0.01 * k}}
            for k, r in enumerate(runs)
        ]
        winner = final.Candidate(best, best_config, [{**r, "test": None} for r in runs])
        doc.update(
            final.choice_doc(final.FinalChoice([winner], winner, runs, default), "MAE", "min")
        )
        export.write_summary(doc, out / layout.SUMMARY)
    return out


def sweep_plan(
    out: Path, datasets=("mosi", "mosei"), params=("num_bands", "tau_mod"), seeds=3, points=4
):
    settings = Settings(synthetic=True, scale=0.05, max_epochs=2, space=str(TINY_SPACE))
    return plans.plan_sweep(
        list(datasets), list(params), seeds=seeds, points=points, out=out, settings=settings
    )


def write_sweep(
    out: Path, datasets=("mosi", "mosei"), params=("num_bands", "tau_mod"), seeds=3, drop=0
) -> plans.Plan:
    """plan.json and curves.csv of a sweep with made-up, smooth scores (`drop` points missing)."""
    plan = sweep_plan(out, datasets, params, seeds)
    rng = np.random.default_rng(0)
    outcomes = {}
    for label, (ds, overrides) in plan.trials.items():
        shift = 0.1 if ds == "mosei" else 0.0
        bump = sum(abs(math.log10(v)) for k, v in overrides.items() if k == "tau_mod")
        bump += sum(abs(v - 3) * 0.02 for k, v in overrides.items() if k == "num_bands")
        acc = 0.35 + shift - 0.05 * bump + rng.normal(0, 0.01)
        outcomes[label] = {
            "state": "COMPLETE",
            "epochs": 2,
            "best_epoch": 2,
            "valid": {"Mult_acc_7": acc, "MAE": 1.0 - acc, "Corr": acc},
            "trial_id": label,
        }
    for label in list(outcomes)[: drop or 0]:
        del outcomes[label]
    folder = out / layout.SENS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    doc = plan.to_json()
    doc["data"] = {ds: {"source": f"synthetic-{ds}.pkl", "sha256": "0" * 64} for ds in datasets}
    doc["wall_seconds"] = 12.0
    (folder / layout.SENS_PLAN).write_text(json.dumps(doc, indent=2))
    curves.write_curves(curves.curve_rows(plan, outcomes), folder / layout.SENS_CURVES)
    return plan


def write_diagnostics(out: Path, samples: int = 8, n: int = 40) -> Path:
    """diagnostics.json and arrays.npz as `search.analysis.diagnostics` writes them."""
    rng = np.random.default_rng(1)
    folder = out / layout.DIAG_DIR
    folder.mkdir(parents=True, exist_ok=True)
    mods = ["audio", "text", "vision"]

    def simplex(k: int) -> np.ndarray:
        x = rng.random((k, 3))
        return x / x.sum(1, keepdims=True)

    arrays = {
        "samples": np.arange(samples),
        "tsne_index": np.arange(n),
        "w_with_mcm": simplex(samples),
        "w_without_mcm": simplex(samples),
        "c": simplex(samples),
        "tsne_labels": rng.uniform(-3, 3, n),
    }
    for name in ("full", "no_mcm", "no_sbr", "baseline"):
        arrays[f"tsne_{name}"] = rng.normal(size=(n, 2))
    np.savez_compressed(folder / layout.DIAG_ARRAYS, **arrays)
    variants = {
        name: {
            "use_sbr": sbr,
            "use_mcm": mcm,
            "best_epoch": 2,
            "valid": {"MAE": 0.8, "Mult_acc_7": 0.3},
            "test": {"MAE": 0.85, "Mult_acc_7": 0.28},
        }
        for name, (sbr, mcm) in {
            "full": (True, True),
            "no_mcm": (True, False),
            "no_sbr": (False, True),
            "baseline": (False, False),
        }.items()
    }
    doc = {
        "config": str(out / layout.BEST_CONFIG),
        "dataset": "mosei",
        "task": "regression",
        "epochs": 2,
        "train_seed": 1111,
        "sample_seed": 0,
        "modalities": mods,
        "samples": list(range(samples)),
        "variants": variants,
        "data": {"source": "synthetic.pkl", "sha256": "f" * 64},
        "planted": {"bands": {"text": 0, "audio": 2, "vision": 1}},
        "band_weights": {
            "audio": [0.2, 0.2, 0.6],
            "text": [0.6, 0.3, 0.1],
            "vision": [0.2, 0.6, 0.2],
        },
        "agreement": {
            "router_vs_complementarity": 0.6,
            "without_mcm_router_vs_complementarity": 0.4,
            "chance": 1 / 3,
        },
        "planted_hits": {"complementarity_top": {"text": 0.8, "audio": 0.7, "vision": 0.6}},
        "seconds": 5.0,
    }
    (folder / layout.DIAG_JSON).write_text(json.dumps(doc, indent=2))
    return folder
