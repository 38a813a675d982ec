"""Run (or resume) a sensitivity sweep (the paper's Figure 3) on the search's Tune path.

A sweep is a search with a grid and no scheduler: its trials are the search's own
(`search.runtime.trainable`), its Tuners and results go through `search.runtime.tuner`, on a
local Ray on loopback or a cluster. A run is one or more rounds (one Tuner each, over the points
still to do); running the same sweep again with the same `out` restores an interrupted round
with `Tuner.restore` (trials resume from their checkpoints) and runs what is still missing.
Outputs under `OUT/sensitivity/` (`search.layout`): `plan.json` (the grid, anchors, metric,
data sources and hashes, versions, wall time), `curves.csv` (dataset, parameter, value, seed,
anchor, state, the validation metrics at the best epoch as `valid/<metric>`, and
`test/<metric>` with `with_test`), `trials.json` (rounds and each point's outcome),
`test_scores.json`, `tune/roundN/`.
Tested in `tests/search/sweep/test_sensitivity.py`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from atsuko import config as cfg
from atsuko.errors import ConfigError
from search import layout
from search.provenance import sha256_file, versions
from search.runtime.records import TrialRecord
from search.runtime.shared_data import SharedData, share
from search.settings import Settings
from search.sweep.curves import complete, curve_rows, write_curves
from search.sweep.plan import Plan, plan_sweep

TUNE_SIGINT = "TUNE_DISABLE_SIGINT_HANDLER"
IGNORED_ON_RESUME = ("threads", "device")  # where it runs, not what it trains


def _round_tuner(
    trainable: type,
    labels: list[str],
    folder: Path,
    name: str,
    settings: Settings,
    concurrency: int,
) -> Any:
    """A Tuner over the labelled points: a grid, FIFO (every point its full budget), stopped by
    the current run's time budget (`search.sweep.budget`, also after `Tuner.restore`)."""
    from search.runtime import tuner
    from search.sweep.budget import RunBudget

    return tuner.build_tuner(
        trainable,
        storage_path=str(folder / layout.TUNE_DIR),
        name=name,
        concurrency=concurrency,
        max_failures=settings.max_failures,
        reporter=tuner.progress_table({"score": "valid score"}, ["point"], max_column_length=40),
        grid=labels,
        stop=RunBudget(),
        per_trial=(settings.cpus_per_trial, settings.gpus_per_trial),
    )


def outcome(record: TrialRecord) -> dict[str, Any]:
    """What `curves.csv` and the ledger keep of one trial (and where its last checkpoint is)."""
    return {
        "state": record.state,
        "epochs": record.epochs,
        "best_epoch": record.best_epoch,
        "valid": dict(record.valid),
        "trial_id": record.trial_id,
        "error": record.error,
        "checkpoint": record.checkpoint or None,
    }


def _score_test(
    checkpoint: str, config: dict[str, Any], dataset: Any, threads: int, label: str = ""
) -> dict:
    """The test metrics of a finished point's best epoch, from its last checkpoint (a Ray task).

    The trial selected its epoch on validation only; the test split is scored here, once."""
    import torch

    from atsuko import checkpoint as trainer_checkpoint
    from atsuko.train import Trainer
    from search.runtime.faults import maybe_fail
    from search.runtime.trainable import STATE_FILE

    maybe_fail("score_test", label)
    torch.set_num_threads(threads)
    state = trainer_checkpoint.load(Path(checkpoint) / STATE_FILE)
    trainer = Trainer(cfg.from_dict(config), dataset)
    trainer.load_state_dict(state)
    trainer.restore_best()
    return trainer.evaluate("test").metrics


def _test_scores(
    ledger: dict[str, dict[str, Any]],
    plan: Plan,
    datasets: dict[str, SharedData],
    folder: Path,
    settings: Settings,
) -> dict[str, dict[str, float]]:
    """Test metrics per finished point, cached in `test_scores.json` across runs.

    A point whose scoring task fails (out of memory, a lost node) is `{'error': ...}` here, said
    on the console, and left out of the cache: the next run of the same command retries it."""
    import ray

    from search.runtime.faults import gather_each

    path = folder / layout.SENS_TESTS
    cache = json.loads(path.read_text()) if path.is_file() else {}
    todo = [
        label
        for label, o in ledger.items()
        if label in plan.trials
        and label not in cache
        and o["state"] == "COMPLETE"
        and o.get("checkpoint")
        and Path(o["checkpoint"]).is_dir()
    ]
    if todo:
        print(f"Scoring the test split once for {len(todo)} finished point(s) ...", flush=True)
        task = ray.remote(num_cpus=settings.cpus_per_trial, num_gpus=settings.gpus_per_trial)(
            _score_test
        )
        threads = max(1, int(settings.cpus_per_trial))
        calls = {}
        for label in todo:
            ds, overrides = plan.trials[label]
            config = plan.anchors[ds].replace(**overrides).to_dict()
            calls[label] = task.remote(
                ledger[label]["checkpoint"], config, datasets[ds].ref, threads, label
            )
        done, failed = gather_each(calls)
        cache.update(done)
        path.write_text(json.dumps(cache, indent=2))
        for label, error in failed.items():
            print(
                f"warning: scoring the test split of {label} failed: {error}; its test columns "
                "stay empty (rerun the same command to retry it)",
                flush=True,
            )
        return {**cache, **{label: {"error": error} for label, error in failed.items()}}
    return cache


def _load_ledger(folder: Path) -> dict[str, Any]:
    path = folder / layout.SENS_LEDGER
    if not path.is_file():
        return {"rounds": [], "outcomes": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {"rounds": [], "outcomes": {}}


def _save_ledger(folder: Path, ledger: dict[str, Any]) -> None:
    tmp = folder / (layout.SENS_LEDGER + ".tmp")
    tmp.write_text(json.dumps(ledger, indent=2))
    os.replace(tmp, folder / layout.SENS_LEDGER)


def _record(ledger: dict[str, Any], results: Any) -> None:
    from search.runtime import tuner

    for record in tuner.collect(results, "sens", finished=False, max_epochs=None):
        label = record.params.get("point")
        if label:
            ledger["outcomes"][label] = outcome(record)


def _run_rounds(
    plan: Plan,
    trainable: type,
    folder: Path,
    settings: Settings,
    concurrency: int,
    ledger: dict[str, Any],
) -> None:
    """Finish the last round's unfinished trials (Tuner.restore), then run what is missing.

    A round is one Tuner over the points still to do, recorded in the ledger before it starts;
    a round cut short by a killed driver or Ctrl-C (KeyboardInterrupt) is restored and its
    trials resume from their checkpoints. Points a round never finished because the time budget
    ran out go to the next round.
    """
    from ray import tune

    from search.runtime import tuner
    from search.sweep import budget as sweep_budget

    final = ("COMPLETE", "ERROR")
    rounds = ledger["rounds"]
    if rounds:
        last = rounds[-1]
        path = folder / layout.TUNE_DIR / last["name"]
        open_labels = [
            label
            for label in last["labels"]
            if ledger["outcomes"].get(label, {}).get("state") not in final
        ]
        if open_labels and tune.Tuner.can_restore(str(path)):
            print(f"Resuming {last['name']} ({len(open_labels)} point(s) open) ...", flush=True)
            _record(ledger, tuner.restore(str(path), trainable).fit())
            _save_ledger(folder, ledger)
    missing = [
        label
        for label in plan.trials
        if ledger["outcomes"].get(label, {}).get("state") not in final
    ]
    if not missing or sweep_budget.hit():
        return
    name = f"round{len(rounds) + 1}"
    rounds.append({"name": name, "labels": missing})
    _save_ledger(folder, ledger)  # before the Tuner starts: a killed driver resumes this round
    _record(ledger, _round_tuner(trainable, missing, folder, name, settings, concurrency).fit())
    _save_ledger(folder, ledger)


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    configs = {}
    for ds, c in (doc.get("anchor_config") or {}).items():
        train = {k: v for k, v in c.get("train", {}).items() if k not in IGNORED_ON_RESUME}
        configs[ds] = {**c, "train": train}
    return {"trials": doc.get("trials"), "anchor_config": configs}


def _check_resume(folder: Path, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The saved plan when it is the same sweep (resume); a different sweep is an error."""
    saved_path = folder / layout.SENS_PLAN
    if not saved_path.is_file():
        return None
    saved = json.loads(saved_path.read_text())
    if _comparable(json.loads(json.dumps(saved))) != _comparable(json.loads(json.dumps(doc))):
        raise ConfigError(
            f"{folder} holds a different sensitivity sweep (other parameters, values, seeds, "
            "datasets or anchor); rerun with the same flags to resume it, or choose another --out"
        )
    return saved


def run_sensitivity(
    datasets: list[str],
    params: list[str],
    *,
    out: str | Path,
    settings: Settings | None = None,
    **request: Any,
) -> Path:
    """Run (or resume) a sweep; returns the path of `curves.csv`.

    `request` holds `plan_sweep`'s keywords (seeds, around, points, with_test, metric).
    `settings` carries the search's data, budget, resource and cluster flags (`synthetic`,
    `data`, `scale`, `config`, `sets`, `space`, `max_epochs`, `cpus_per_trial`,
    `gpus_per_trial`, `concurrency`, `max_failures`, `time_budget`, `address`, dashboard and
    metrics ports); its `dataset` and `out` are not used. Raises ConfigError / DataError for bad
    input before Ray starts; KeyboardInterrupt after writing what finished.
    """
    from search.runtime import session as ray_session
    from search.study.driver import load_dataset

    ray_session.ray_env()  # before Ray is imported: loopback only

    settings = settings or Settings()
    out = Path(out).resolve()
    plan = plan_sweep(datasets, params, out=out, settings=settings, **request)
    folder = layout.sweep_dir(out)
    doc = plan.to_json()
    saved = _check_resume(folder, doc)
    if saved is not None and complete(folder, plan):
        print(f"The sensitivity sweep in {folder} is complete: {folder / layout.SENS_CURVES}")
        return folder / layout.SENS_CURVES
    loaded = {ds: load_dataset(plan.anchors[ds]) for ds in plan.datasets}
    doc["data"] = {
        ds: {"source": d.source, "sha256": sha256_file(d.source)} for ds, d in loaded.items()
    }
    doc["versions"] = versions()
    doc["started_at"] = (saved or {}).get("started_at", time.time())
    doc["wall_seconds"] = (saved or {}).get("wall_seconds", 0.0)
    folder.mkdir(parents=True, exist_ok=True)
    _write_plan(folder, doc)

    # Ray reads its settings (loopback, token auth) when imported: ray_session.start comes first
    running = "ray" in sys.modules and sys.modules["ray"].is_initialized()
    session = None
    if not running:
        session = ray_session.start_for(settings)
    try:
        return _sweep(plan, doc, loaded, folder, settings, session)
    finally:
        if session is not None:
            session.shutdown()


def _write_plan(folder: Path, doc: dict[str, Any]) -> None:
    (folder / layout.SENS_PLAN).write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _sweep(
    plan: Plan,
    doc: dict[str, Any],
    loaded: dict[str, Any],
    folder: Path,
    settings: Settings,
    session: Any,
) -> Path:
    """The rounds on Ray (started), then `curves.csv` and the plan's closing facts, also after
    Ctrl-C (what finished is written)."""
    from search.runtime.trainable import make_grid_trainable
    from search.study.driver import check_resources
    from search.sweep import budget as sweep_budget

    start = time.time()
    n = len(plan.trials)
    concurrency = check_resources(dataclasses.replace(settings, num_samples=n))
    _announce(plan, folder, concurrency, session)
    shared = {ds: share(d) for ds, d in loaded.items()}  # one copy each, trials and tests
    loaded.clear()  # the object store holds them now: the driver keeps no second copy
    bases = {ds: c.to_dict() for ds, c in plan.anchors.items()}
    trainable = make_grid_trainable(
        shared, bases, dict(plan.trials), settings.cpus_per_trial, settings.gpus_per_trial
    )
    ledger = _load_ledger(folder)
    ran = False
    sweep_budget.set_budget(settings.time_budget)
    sigint = os.environ.get(TUNE_SIGINT)
    os.environ[TUNE_SIGINT] = "1"  # Ctrl-C raises KeyboardInterrupt: resume restores
    try:
        _run_rounds(plan, trainable, folder, settings, concurrency, ledger)
        ran = True
    except KeyboardInterrupt:
        print("\nInterrupted; rerun the same command (same --out) to resume.", flush=True)
        raise
    finally:
        _restore_env(TUNE_SIGINT, sigint)
        sweep_budget.set_budget(None)
        outcomes = {k: v for k, v in ledger["outcomes"].items() if k in plan.trials}
        path = _write_results(plan, doc, ledger, outcomes, shared, folder, settings, ran, start)
    unfinished = n - sum(o["state"] in ("COMPLETE", "ERROR") for o in outcomes.values())
    print(f"Sensitivity curves: {path} ({doc['states']})", flush=True)
    if unfinished:
        print(
            f"{unfinished} trial(s) unfinished; run the same command (same --out) to resume",
            flush=True,
        )
    return path


def _write_results(
    plan: Plan,
    doc: dict[str, Any],
    ledger: dict[str, Any],
    outcomes: dict[str, Any],
    shared: dict[str, SharedData],
    folder: Path,
    settings: Settings,
    ran: bool,
    start: float,
) -> Path:
    """`curves.csv` (with test scores: those already made, after Ctrl-C) and the plan's
    wall time and states."""
    tests = {}
    if plan.with_test and ran:
        tests = _test_scores(ledger["outcomes"], plan, shared, folder, settings)
    elif plan.with_test and (folder / layout.SENS_TESTS).is_file():
        tests = json.loads((folder / layout.SENS_TESTS).read_text())
    path = write_curves(curve_rows(plan, outcomes, tests), folder / layout.SENS_CURVES)
    doc["wall_seconds"] = float(doc["wall_seconds"]) + time.time() - start
    doc["finished_at"] = time.time()
    doc["states"] = dict(Counter(o["state"] for o in outcomes.values()))
    doc["test_failures"] = {k: t["error"] for k, t in tests.items() if "error" in t}
    _write_plan(folder, doc)
    return path


def _announce(plan: Plan, folder: Path, concurrency: int, session: Any) -> None:
    from search.runtime import tuner

    resume = (folder / layout.SENS_LEDGER).is_file()
    print(
        f"{'Resuming' if resume else 'Running'} sensitivity sweep: "
        f"{', '.join(p['name'] for p in plan.params)} on {', '.join(plan.datasets)} "
        f"around {plan.around}; {len(plan.points)} curve points from {len(plan.trials)} trials "
        f"(seeds {plan.seeds}), {concurrency} at once",
        flush=True,
    )
    for note in plan.notes:
        print(f"note: {note}", flush=True)
    if session is not None:
        curves = f"  Curves          {folder / layout.SENS_CURVES} (written when the sweep ends)"
        print(tuner.describe(session, folder / layout.TUNE_DIR, curves), flush=True)


def _restore_env(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value
