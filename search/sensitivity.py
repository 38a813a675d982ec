"""One-at-a-time sensitivity sweeps (the paper's Figure 3), run through Ray Tune.

Each named parameter takes every value of its sweep (from the search space: integers every
value, log-scale floats log-spaced points, other floats linear points, categoricals every
choice, plus the anchor's own value) with every other parameter at the anchor configuration
(`default`: the resolved defaults; `best`: the `best_config.yaml` of a finished search; or a
YAML file), once per seed. Identical configurations run once: the anchor is one trial per
(dataset, seed), shared by every parameter's curve.

The trials are the search's own (`search.trainable.train_trial`: `atsuko.train.fit` with per-epoch
reports, checkpoints and Ray metrics) in Tuners over a grid, scheduler off, on a local Ray on
loopback or a cluster. A run is one or more rounds (one Tuner each, over the points still to
do); running the same sweep again with the same `out` restores an interrupted round with
`Tuner.restore` (trials resume from their checkpoints) and runs what is still missing.
Outputs under `OUT/sensitivity/`: `plan.json` (the grid, anchors, metric, data sources and
hashes, versions, wall time), `curves.csv` (dataset, parameter, value, seed, anchor, state, the
validation metrics at the best epoch as `valid/<metric>`, and `test/<metric>` with `with_test`),
`trials.json` (rounds and each point's outcome), `test_scores.json`, `tune/roundN/`.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atsuko import config as cfg
from atsuko.config import Config
from atsuko.errors import ConfigError
from search.settings import FINAL_SEED0, Settings, base_config
from search.shared_data import SharedData, share
from search.space import DEFAULT_SPACE, Param, Space, load_space

SENS_DIR = "sensitivity"
PLAN_FILE = "plan.json"
CURVES_FILE = "curves.csv"
TEST_FILE = "test_scores.json"
LEDGER_FILE = "trials.json"  # Tune rounds and each point's outcome, across runs
TUNE_SIGINT = "TUNE_DISABLE_SIGINT_HANDLER"
TUNE_DIR = "tune"
ANCHORS = ("default", "best")
# the metric a sensitivity figure plots: the papers' headline numbers (SIMS: 5-class accuracy,
# the finest of its three, as Acc-7 is for MOSI/MOSEI)
DEFAULT_METRIC = {
    "mosi": "Mult_acc_7",
    "mosei": "Mult_acc_7",
    "sims": "Mult_acc_5",
    "simsv2": "Mult_acc_5",
    "mintrec": "acc",
}
IGNORED_ON_RESUME = ("threads", "device")  # where it runs, not what it trains


def default_metric(dataset: str) -> str:
    return DEFAULT_METRIC.get(dataset, "MAE")


def fmt(value: Any) -> str:
    """A value as it appears in labels and `curves.csv` (floats to 6 significant digits)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def same(a: Any, b: Any) -> bool:
    """Equal values of the same kind (1.0 and 1 are equal; True and 1 are not)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    return a == b


def sweep_values(param: Param, points: int, anchor: Any = None) -> list[Any]:
    """The sweep of one parameter, ascending (categoricals in file order), anchor included."""
    if points < 2:
        raise ConfigError(f"--points {points}: a curve needs at least 2 points")
    if param.kind == "categorical":
        values = list(param.choices)
    elif param.kind == "int":
        low, high, step = int(param.low), int(param.high), int(param.step or 1)
        values = list(range(low, high + 1, step))
        if param.log and len(values) > points:  # a wide log-scale integer: log-spaced points
            values = sorted({int(round(v)) for v in np.geomspace(low, high, points)})
    else:
        low, high = float(param.low), float(param.high)
        grid = np.geomspace(low, high, points) if param.log else np.linspace(low, high, points)
        if param.step and not param.log:
            grid = low + np.round((grid - low) / param.step) * param.step
        values = sorted({float(f"{v:.6g}") for v in grid})
    if anchor is not None and not any(same(anchor, v) for v in values):
        values.append(anchor)
        if param.kind != "categorical":
            values.sort()
    return values


@dataclass
class Plan:
    """The whole sweep: what runs (trials, by label) and what each curve point reads."""

    datasets: list[str]
    params: list[dict[str, Any]]  # name, kind, log, values, low, high
    seeds: list[int]
    around: str
    anchors: dict[str, Config]  # dataset -> anchor configuration
    anchor_source: dict[str, str]
    metric: dict[str, str]  # dataset -> metric the figures plot
    with_test: bool
    trials: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # label -> (ds, ov)
    points: list[dict[str, Any]] = field(default_factory=list)  # curve points -> trial label
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "datasets": self.datasets,
            "params": self.params,
            "seeds": self.seeds,
            "around": self.around,
            "anchor_source": self.anchor_source,
            "anchor": {
                ds: {p["name"]: anchor_value(c, p["name"]) for p in self.params}
                for ds, c in self.anchors.items()
            },
            "anchor_config": {ds: c.to_dict() for ds, c in self.anchors.items()},
            "metric": self.metric,
            "with_test": self.with_test,
            "trials": {k: {"dataset": d, "overrides": o} for k, (d, o) in self.trials.items()},
            "points": self.points,
            "notes": self.notes,
        }


def anchor_value(config: Config, name: str) -> Any:
    return getattr(getattr(config, cfg.section_of(name)), name)


def _file_dataset(path: Path) -> str | None:
    doc = cfg.read_yaml(path)
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    return data.get("dataset") or doc.get("dataset")


def _best_file(out: Path, dataset: str) -> Path:
    """`best_config.yaml` of a finished search on `dataset`: OUT/DATASET/ or OUT/ itself."""
    for path in (out / dataset / "best_config.yaml", out / "best_config.yaml"):
        if path.is_file() and _file_dataset(path) in (None, dataset):
            return path
    raise ConfigError(
        f"--around best: no best_config.yaml for {dataset} in {out} (nor in {out / dataset}); "
        "run the search first, or give --around default or a FILE.yaml"
    )


def anchor_config(dataset: str, around: str, out: Path, settings: Settings) -> tuple[Config, str]:
    """The configuration every point of `dataset` starts from, and where it came from.

    Precedence as the search's base: defaults < dataset defaults < anchor file < `--set`, then
    the run's own settings (epochs, threads, device, data source and synthetic scale). A file
    written for another dataset gives its model and training sections, not its data.
    """
    if around not in ANCHORS:
        path = Path(around).expanduser()
        if not path.is_file():
            raise ConfigError(f"--around {around}: expected default, best, or a YAML file")
        if settings.config:
            raise ConfigError("give either --config or --around FILE.yaml, not both")
    elif around == "best":
        path = _best_file(out, dataset)
    else:
        path = Path(settings.config) if settings.config else None
    s = dataclasses.replace(settings, dataset=dataset, config=str(path) if path else None)
    config, _ = base_config(s)
    if path is not None and _file_dataset(path) not in (None, dataset):
        plain, _ = base_config(dataclasses.replace(s, config=None))
        config = dataclasses.replace(config, data=plain.data)
    return config, str(path) if path else "default"


def _space(settings: Settings, around: str, out: Path, base: Config) -> Space:
    """The search space the values come from: --space, a finished search's copy, the default."""
    path: Path | None = Path(settings.space) if settings.space else None
    if path is None and around == "best" and (out / "space.yaml").is_file():
        path = out / "space.yaml"
    return load_space(path or DEFAULT_SPACE, base)


def _condition_note(param: Param, anchor: Config) -> str | None:
    for c in param.when:
        value = anchor_value(anchor, c.key)
        if not c.holds(value):
            return (
                f"{param.name} is conditional on {c.key}, which is {value!r} at the anchor: "
                f"the model ignores {param.name} there, so its curve should be flat"
            )
    return None


def plan_sweep(
    datasets: list[str],
    params: list[str],
    *,
    seeds: int = 3,
    around: str = "default",
    points: int = 5,
    with_test: bool = False,
    metric: str | None = None,
    out: str | Path = ".",
    settings: Settings | None = None,
) -> Plan:
    """Check the request and lay out every trial; nothing is loaded or run."""
    from atsuko.data import get_spec

    settings = settings or Settings()
    out = Path(out).resolve()
    if not datasets:
        raise ConfigError("--dataset: give at least one dataset (e.g. mosi,mosei)")
    if len(set(datasets)) != len(datasets):
        raise ConfigError(f"--dataset {','.join(datasets)}: a dataset appears twice")
    if not params:
        raise ConfigError("--sensitivity: name at least one parameter (e.g. tau_band,num_bands)")
    if len(set(params)) != len(params):
        raise ConfigError(f"--sensitivity {','.join(params)}: a parameter appears twice")
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: expected at least 1")
    if settings.data and len(datasets) > 1:
        raise ConfigError(
            "--data names one file but several datasets were given; run one dataset per --data "
            "or put the files in their default locations (ATSUKO_DATA)"
        )
    for ds in datasets:
        if ds not in cfg.DATASETS:
            raise ConfigError(f"unknown dataset '{ds}'; expected one of: {', '.join(cfg.DATASETS)}")
    pinned = {k.split(".", 1)[-1] for k in cfg.parse_set(settings.sets or [])}
    anchors, sources, metrics, spaces = {}, {}, {}, {}
    for ds in datasets:
        anchors[ds], sources[ds] = anchor_config(ds, around, out, settings)
        spaces[ds] = _space(settings, around, out, anchors[ds])
        metrics[ds] = metric or default_metric(ds)
        spec = get_spec(ds)
        if metrics[ds] not in spec.metrics:
            raise ConfigError(
                f"--metric {metrics[ds]} is not a {spec.title} metric; expected one of: "
                f"{', '.join(spec.metrics)}"
            )
    seed_list = [FINAL_SEED0 + i for i in range(seeds)]
    plan = Plan(
        datasets=list(datasets),
        params=[],
        seeds=seed_list,
        around=around,
        anchors=anchors,
        anchor_source=sources,
        metric=metrics,
        with_test=with_test,
    )
    first = spaces[datasets[0]]
    for name in params:
        if name in pinned:
            raise ConfigError(f"--sensitivity {name}: pinned by --set; drop one or the other")
        found = {ds: {p.name: p for p in spaces[ds].params}.get(name) for ds in datasets}
        if found[datasets[0]] is None:
            raise ConfigError(
                f"--sensitivity {name}: not a parameter of the search space {first.source}; "
                f"expected one of: {', '.join(first.names)}"
            )
        param = found[datasets[0]]
        values = {
            ds: sweep_values(param, points, anchor_value(anchors[ds], name)) for ds in datasets
        }
        union = sweep_values(param, points)
        for ds in datasets:
            for v in values[ds]:
                if not any(same(v, u) for u in union):
                    union.append(v)
        if param.kind != "categorical":
            union.sort()
        plan.params.append(
            {
                "name": name,
                "kind": param.kind,
                "log": bool(param.log),
                "low": param.low,
                "high": param.high,
                "values": union,
            }
        )
        for ds in datasets:
            note = _condition_note(param, anchors[ds])
            if note and note not in plan.notes:
                plan.notes.append(note)
            for value in values[ds]:
                try:
                    cfg.validate(anchors[ds].replace(**{name: value}))
                except ConfigError as exc:
                    raise ConfigError(f"--sensitivity {name}={fmt(value)} ({ds}): {exc}") from None
                is_anchor = same(value, anchor_value(anchors[ds], name))
                for seed in seed_list:
                    if is_anchor:
                        label, overrides = f"{ds}|anchor|seed={seed}", {"seed": seed}
                    else:
                        label = f"{ds}|{name}={fmt(value)}|seed={seed}"
                        overrides = {name: value, "seed": seed}
                    plan.trials.setdefault(label, (ds, overrides))
                    plan.points.append(
                        {
                            "dataset": ds,
                            "parameter": name,
                            "value": fmt(value),
                            "seed": seed,
                            "anchor": is_anchor,
                            "trial": label,
                        }
                    )
    return plan


# ---------------------------------------------------------------------------------------------
# curves.csv


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
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
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
    path = Path(out) / SENS_DIR / PLAN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


# ---------------------------------------------------------------------------------------------
# running the grid on Ray Tune


def sweep_trial(
    config: dict[str, Any],
    *,
    datasets: dict[str, SharedData],
    bases: dict[str, dict[str, Any]],
    overrides: dict[str, tuple[str, dict[str, Any]]],
    cpus: float,
) -> None:
    """The Tune trainable of a sweep: the search's own trial, on the point's dataset."""
    from search.trainable import train_trial

    name, changes = overrides[config["point"]]
    train_trial(dict(changes), data=datasets[name], base=bases[name], cpus=cpus)


def _actor_repr(self: Any) -> str:
    return "atsuko_sensitivity"


def make_sweep_trainable(
    datasets: dict[str, SharedData], plan: Plan, cpus: float, gpus: float
) -> type:
    """As `search.trainable.make_trainable`, for several datasets and labelled grid points."""
    from ray import tune
    from ray.tune.trainable import wrap_function

    fn = tune.with_parameters(
        sweep_trial,
        datasets=datasets,
        bases={ds: c.to_dict() for ds, c in plan.anchors.items()},
        overrides=dict(plan.trials),
        cpus=cpus,
    )
    fn = tune.with_resources(fn, {"cpu": cpus, "gpu": gpus})
    return type("AtsukoSweepTrial", (wrap_function(fn),), {"__repr__": _actor_repr})


def sweep_trial_name(trial: Any) -> str:
    return f"sens_{trial.trial_id}"


def _tuner(
    trainable: type,
    labels: list[str],
    folder: Path,
    name: str,
    settings: Settings,
    concurrency: int,
) -> Any:
    """A Tuner over the labelled points: a grid, FIFO (every point its full budget)."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    from search.sweep_budget import RunBudget

    return tune.Tuner(
        trainable,
        param_space={"point": tune.grid_search(labels)},
        tune_config=tune.TuneConfig(
            scheduler=FIFOScheduler(),
            num_samples=1,
            max_concurrent_trials=concurrency,
            trial_name_creator=sweep_trial_name,
            trial_dirname_creator=sweep_trial_name,
            reuse_actors=True,  # one worker runs trial after trial (no process start each)
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(folder / TUNE_DIR),
            stop=RunBudget(),  # --time-budget of the current run, also after Tuner.restore
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            progress_reporter=tune.CLIReporter(
                metric_columns={"epoch": "epoch", "score": "valid score"},
                parameter_columns=["point"],
                max_report_frequency=15,
                max_column_length=40,
            ),
            verbose=1,
        ),
    )


def outcome(result: Any) -> dict[str, Any]:
    """What `curves.csv` needs from one Tune result (and where its last checkpoint is)."""
    last = dict(result.metrics or {})
    if result.error is not None:
        state = "ERROR"
    elif last.get("done"):
        state = "COMPLETE"
    elif last.get("epoch"):
        state = "RUNNING"
    else:
        state = "PENDING"
    valid = last.get("best_valid") if isinstance(last.get("best_valid"), dict) else {}
    valid = {**valid, **{k[11:]: v for k, v in last.items() if k.startswith("best_valid/")}}
    checkpoint = getattr(result, "checkpoint", None)
    return {
        "state": state,
        "epochs": int(last.get("epoch", 0) or 0),
        "best_epoch": int(last.get("best_epoch", 0) or 0),
        "valid": {k: float(v) for k, v in valid.items()},
        "trial_id": last.get("trial_id") or Path(result.path).name,
        "error": str(result.error).splitlines()[-1][:300] if result.error is not None else "",
        "checkpoint": checkpoint.path if checkpoint is not None else None,
    }


def _score_test(
    checkpoint: str, config: dict[str, Any], dataset: Any, threads: int, label: str = ""
) -> dict:
    """The test metrics of a finished point's best epoch, from its last checkpoint (a Ray task).

    The trial selected its epoch on validation only; the test split is scored here, once."""
    import torch

    from atsuko.train import Trainer
    from search.fault_hook import maybe_fail
    from search.trainable import STATE_FILE

    maybe_fail("score_test", label)
    torch.set_num_threads(threads)
    state = torch.load(Path(checkpoint) / STATE_FILE, map_location="cpu", weights_only=False)
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

    from search.export import gather_each

    path = folder / TEST_FILE
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
    path = folder / LEDGER_FILE
    if not path.is_file():
        return {"rounds": [], "outcomes": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {"rounds": [], "outcomes": {}}


def _save_ledger(folder: Path, ledger: dict[str, Any]) -> None:
    tmp = folder / (LEDGER_FILE + ".tmp")
    tmp.write_text(json.dumps(ledger, indent=2))
    os.replace(tmp, folder / LEDGER_FILE)


def _record(ledger: dict[str, Any], results: Any) -> None:
    for result in results:
        label = (result.config or {}).get("point")
        if label:
            ledger["outcomes"][label] = outcome(result)


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

    from search import sweep_budget

    final = ("COMPLETE", "ERROR")
    rounds = ledger["rounds"]
    if rounds:
        last = rounds[-1]
        path = folder / TUNE_DIR / last["name"]
        open_labels = [
            label
            for label in last["labels"]
            if ledger["outcomes"].get(label, {}).get("state") not in final
        ]
        if open_labels and tune.Tuner.can_restore(str(path)):
            print(f"Resuming {last['name']} ({len(open_labels)} point(s) open) ...", flush=True)
            tuner = tune.Tuner.restore(
                str(path), trainable=trainable, resume_unfinished=True, resume_errored=True
            )
            _record(ledger, tuner.fit())
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
    tuner = _tuner(trainable, missing, folder, name, settings, concurrency)
    _record(ledger, tuner.fit())
    _save_ledger(folder, ledger)


def sha256_file(path: str | Path) -> str | None:
    """sha256 of a data file (None for a folder or a missing path)."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    configs = {}
    for ds, c in (doc.get("anchor_config") or {}).items():
        train = {k: v for k, v in c.get("train", {}).items() if k not in IGNORED_ON_RESUME}
        configs[ds] = {**c, "train": train}
    return {"trials": doc.get("trials"), "anchor_config": configs}


def _check_resume(folder: Path, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The saved plan when it is the same sweep (resume); a different sweep is an error."""
    saved_path = folder / PLAN_FILE
    if not saved_path.is_file():
        return None
    saved = json.loads(saved_path.read_text())
    if _comparable(json.loads(json.dumps(saved))) != _comparable(json.loads(json.dumps(doc))):
        raise ConfigError(
            f"{folder} holds a different sensitivity sweep (other parameters, values, seeds, "
            "datasets or anchor); rerun with the same flags to resume it, or choose another --out"
        )
    return saved


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "ray", "optuna", "numpy", "scikit-learn", "matplotlib"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _complete(folder: Path, plan: Plan) -> bool:
    """Whether `curves.csv` already holds every point in a final state (nothing to run)."""
    path = folder / CURVES_FILE
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
    from search import ray_session
    from search.driver import check_resources, load_dataset

    ray_session.ray_env()  # before Ray is imported: loopback only

    settings = settings or Settings()
    out = Path(out).resolve()
    plan = plan_sweep(datasets, params, out=out, settings=settings, **request)
    folder = out / SENS_DIR
    doc = plan.to_json()
    saved = _check_resume(folder, doc)
    if saved is not None and _complete(folder, plan):
        print(f"The sensitivity sweep in {folder} is complete: {folder / CURVES_FILE}")
        return folder / CURVES_FILE
    loaded = {ds: load_dataset(plan.anchors[ds]) for ds in plan.datasets}
    doc["data"] = {
        ds: {"source": d.source, "sha256": sha256_file(d.source)} for ds, d in loaded.items()
    }
    doc["versions"] = _versions()
    doc["started_at"] = (saved or {}).get("started_at", time.time())
    doc["wall_seconds"] = (saved or {}).get("wall_seconds", 0.0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PLAN_FILE).write_text(json.dumps(doc, indent=2, default=str) + "\n")

    # Ray reads its settings (loopback, token auth) when imported: ray_session.start comes first
    running = "ray" in sys.modules and sys.modules["ray"].is_initialized()
    session = None
    if not running:
        session = ray_session.start(
            settings.address,
            dashboard_host=settings.dashboard_host,
            dashboard_port=settings.dashboard_port,
            metrics_port=settings.metrics_port,
        )
    start = time.time()
    try:
        n = len(plan.trials)
        concurrency = check_resources(dataclasses.replace(settings, num_samples=n))
        resume = (folder / LEDGER_FILE).is_file()
        print(
            f"{'Resuming' if resume else 'Running'} sensitivity sweep: "
            f"{', '.join(p['name'] for p in plan.params)} on {', '.join(plan.datasets)} "
            f"around {plan.around}; {len(plan.points)} curve points from {n} trials "
            f"(seeds {plan.seeds}), {concurrency} at once",
            flush=True,
        )
        for note in plan.notes:
            print(f"note: {note}", flush=True)
        if session is not None:
            print(_monitoring(session, folder), flush=True)
        shared = {ds: share(d) for ds, d in loaded.items()}  # one copy each, trials and tests
        loaded.clear()  # the object store holds them now: the driver keeps no second copy
        trainable = make_sweep_trainable(
            shared, plan, settings.cpus_per_trial, settings.gpus_per_trial
        )
        from search import sweep_budget

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
            # also on Ctrl-C: what finished is written (test scores: those already made)
            outcomes = {k: v for k, v in ledger["outcomes"].items() if k in plan.trials}
            tests = {}
            if plan.with_test and ran:
                tests = _test_scores(ledger["outcomes"], plan, shared, folder, settings)
            elif plan.with_test and (folder / TEST_FILE).is_file():
                tests = json.loads((folder / TEST_FILE).read_text())
            path = write_curves(curve_rows(plan, outcomes, tests), folder / CURVES_FILE)
            doc["wall_seconds"] = float(doc["wall_seconds"]) + time.time() - start
            doc["finished_at"] = time.time()
            doc["states"] = _count(o["state"] for o in outcomes.values())
            doc["test_failures"] = {k: t["error"] for k, t in tests.items() if "error" in t}
            (folder / PLAN_FILE).write_text(json.dumps(doc, indent=2, default=str) + "\n")
        unfinished = n - sum(o["state"] in ("COMPLETE", "ERROR") for o in outcomes.values())
        print(f"Sensitivity curves: {path} ({doc['states']})", flush=True)
        if unfinished:
            print(
                f"{unfinished} trial(s) unfinished; run the same command (same --out) to resume",
                flush=True,
            )
        return path
    finally:
        if session is not None:
            session.shutdown()


def _restore_env(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


def _count(states: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in states:
        counts[s] = counts.get(s, 0) + 1
    return counts


def _monitoring(session: Any, folder: Path) -> str:
    from search.ray_session import token_location

    lines = ["", "Monitoring"]
    if session.dashboard_url:
        lines.append(
            f"  Ray dashboard   {session.dashboard_url}  (access token: {token_location()})"
        )
    lines += [
        f"  TensorBoard     tensorboard --logdir {folder / TUNE_DIR} --host 127.0.0.1",
        f"  Curves          {folder / CURVES_FILE} (written when the sweep ends)",
        "",
    ]
    return "\n".join(lines)
