"""The plan of a one-at-a-time sensitivity sweep: every trial it runs and every curve point.

Each named parameter takes every value of its sweep (from the search space: integers every
value, log-scale floats log-spaced points, other floats linear points, categoricals every
choice, plus the anchor's own value) with every other parameter at the anchor configuration
(`default`: the resolved defaults; `best`: the `best_config.yaml` of a finished search; or a
YAML file), once per seed. Identical configurations run once: the anchor is one trial per
(dataset, seed), shared by every parameter's curve. Nothing is loaded or run here.
Tested in `tests/search/sweep/test_sensitivity.py`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atsuko import config as cfg
from atsuko.config import Config
from atsuko.errors import ConfigError
from search import layout
from search.settings import FINAL_SEED0, Settings, base_config
from search.study.space import DEFAULT_SPACE, Param, Space, load_space

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
    for path in (out / dataset / layout.BEST_CONFIG, out / layout.BEST_CONFIG):
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
    if path is None and around == "best" and (out / layout.SPACE_COPY).is_file():
        path = out / layout.SPACE_COPY
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


def _check_request(datasets: list[str], params: list[str], seeds: int, settings: Settings) -> None:
    """The names and counts of a sweep request, before anything is read."""
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


def _metric(dataset: str, metric: str | None) -> str:
    """The plotted metric of `dataset`: `metric` (checked) or its default."""
    from atsuko.data import get_spec

    chosen = metric or default_metric(dataset)
    spec = get_spec(dataset)
    if chosen not in spec.metrics:
        raise ConfigError(
            f"--metric {chosen} is not a {spec.title} metric; expected one of: "
            f"{', '.join(spec.metrics)}"
        )
    return chosen


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
    settings = settings or Settings()
    out = Path(out).resolve()
    _check_request(datasets, params, seeds, settings)
    pinned = {k.split(".", 1)[-1] for k in cfg.parse_set(settings.sets or [])}
    anchors, sources, spaces = {}, {}, {}
    for ds in datasets:
        anchors[ds], sources[ds] = anchor_config(ds, around, out, settings)
        spaces[ds] = _space(settings, around, out, anchors[ds])
    plan = Plan(
        datasets=list(datasets),
        params=[],
        seeds=[FINAL_SEED0 + i for i in range(seeds)],
        around=around,
        anchors=anchors,
        anchor_source=sources,
        metric={ds: _metric(ds, metric) for ds in datasets},
        with_test=with_test,
    )
    first = spaces[datasets[0]]
    for name in params:
        if name in pinned:
            raise ConfigError(f"--sensitivity {name}: pinned by --set; drop one or the other")
        param = {p.name: p for p in first.params}.get(name)
        if param is None:
            raise ConfigError(
                f"--sensitivity {name}: not a parameter of the search space {first.source}; "
                f"expected one of: {', '.join(first.names)}"
            )
        _add_param(plan, param, points)
    return plan


def _add_param(plan: Plan, param: Param, points: int) -> None:
    """One parameter's curve: its values (the union over datasets, each with its own anchor
    value) and, per dataset, value and seed, the trials and curve points."""
    name = param.name
    values = {
        ds: sweep_values(param, points, anchor_value(plan.anchors[ds], name))
        for ds in plan.datasets
    }
    union = sweep_values(param, points)
    for ds in plan.datasets:
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
    for ds in plan.datasets:
        anchor = plan.anchors[ds]
        note = _condition_note(param, anchor)
        if note and note not in plan.notes:
            plan.notes.append(note)
        for value in values[ds]:
            try:
                cfg.validate(anchor.replace(**{name: value}))
            except ConfigError as exc:
                raise ConfigError(f"--sensitivity {name}={fmt(value)} ({ds}): {exc}") from None
            _add_points(plan, ds, name, value, same(value, anchor_value(anchor, name)))


def _add_points(plan: Plan, ds: str, name: str, value: Any, is_anchor: bool) -> None:
    """The trial and the curve point of (`ds`, `name`=`value`) for every seed; the anchor's
    trial is one per (dataset, seed), shared by every parameter's curve."""
    for seed in plan.seeds:
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
