"""What a search's own trials say: marginal curves, parameter importance, search history.

Reads `study.db` (the Optuna study the search mirrors) and falls back to `trials.csv`, so an
interrupted search, or one whose study file is missing, still gives whatever its finished
trials allow. Importance is Optuna's PED-ANOVA by default (fANOVA on request) over COMPLETE
trials only: a trial ASHA pruned carries a partial score. Sampled trials cluster where the
sampler went, so these numbers describe the region the search explored, not the parameter's
effect everywhere; the one-at-a-time sweeps of `search.sweep.runner` are the fair measure.
Writes `importance.json` under the search's folder.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search import layout
from search.runtime.records import WARM_START

METHODS = ("pedanova", "fanova")
CLUSTER_NOTE = (
    "Sampled trials cluster where the sampler went, so importance and marginal curves describe "
    "the region the search explored; the one-at-a-time sensitivity sweeps, which vary one "
    "parameter around a fixed anchor over its whole range with several seeds, are the fair "
    "measure of sensitivity."
)


@dataclass
class Trial:
    """One search trial as the analysis needs it."""

    trial_id: str
    state: str  # COMPLETE, PRUNED, ERROR, STOPPED, RUNNING, PENDING
    params: dict[str, Any]
    score: float  # best validation selection score (NaN if none)
    epochs: int = 0
    started: float = math.nan
    finished: float = math.nan
    valid: dict[str, float] = field(default_factory=dict)
    node: str = ""  # the node that ran it (IP)
    warm_start: str = ""  # SOURCE:TRIAL_ID when an earlier search's configuration seeded it


@dataclass
class Trials:
    trials: list[Trial]
    source: str  # layout.STUDY | layout.TRIALS
    metric: str  # the search's selection metric, e.g. MAE
    mode: str  # min | max
    kinds: dict[str, dict[str, Any]]  # param -> {'kind': int|float|categorical, 'log': bool}
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> list[Trial]:
        return [t for t in self.trials if t.state == "COMPLETE" and math.isfinite(t.score)]


def _scalar(text: str) -> Any:
    """A CSV cell back to int, float or string ('' -> None)."""
    if text is None or text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return {"True": True, "False": False}.get(text, text)


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_trials_csv(path: str | Path) -> list[Trial]:
    """`trials.csv` as written by the search (`param/<k>`, `valid/<k>` columns)."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    trials = []
    for i, row in enumerate(rows):
        params = {
            k[6:]: _scalar(v) for k, v in row.items() if k.startswith("param/") and v not in ("",)
        }
        valid = {
            k[6:]: _float(v) for k, v in row.items() if k.startswith("valid/") and v not in ("",)
        }
        trials.append(
            Trial(
                trial_id=row.get("trial_id") or str(i),
                state=row.get("state") or "",
                params={k: v for k, v in params.items() if v is not None},
                score=_float(row.get("score")),
                epochs=int(_float(row.get("epochs")) or 0) if row.get("epochs") else 0,
                started=_float(row.get("started")),
                finished=_float(row.get("finished")),
                valid=valid,
                node=row.get("node_ip") or "",
                warm_start=row.get(WARM_START) or "",
            )
        )
    return trials


def _load_study(path: Path) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{path.resolve()}"
    names = optuna.get_all_study_names(storage)
    if not names:
        raise ValueError("no study in the file")
    return optuna.load_study(study_name=names[0], storage=storage)


def _kind_of(dist: Any) -> dict[str, Any]:
    import optuna.distributions as D

    if isinstance(dist, D.CategoricalDistribution):
        return {"kind": "categorical", "log": False, "choices": list(dist.choices)}
    kind = "int" if isinstance(dist, D.IntDistribution) else "float"
    return {"kind": kind, "log": bool(dist.log), "low": dist.low, "high": dist.high}


def _infer_kinds(trials: list[Trial]) -> dict[str, dict[str, Any]]:
    """Parameter kinds from the values alone (when no space or study says)."""
    kinds: dict[str, dict[str, Any]] = {}
    names = sorted({k for t in trials for k in t.params})
    for name in names:
        values = [t.params[name] for t in trials if name in t.params]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            lo, hi = min(values), max(values)
            kind = "int" if all(isinstance(v, int) for v in values) else "float"
            log = kind == "float" and lo > 0 and hi / lo >= 50
            kinds[name] = {"kind": kind, "log": log, "low": lo, "high": hi}
        else:
            kinds[name] = {
                "kind": "categorical",
                "log": False,
                "choices": sorted(set(map(str, values))),
            }
    return kinds


def _space_kinds(out: Path | None) -> dict[str, dict[str, Any]]:
    """Parameter kinds from the search's own copy of its space (None: the default space)."""
    from atsuko.config import Config
    from atsuko.errors import AtsukoError
    from search.settings import load_base
    from search.study.space import DEFAULT_SPACE, load_space

    try:
        if out is None:
            space = load_space(DEFAULT_SPACE, Config())
        elif (out / layout.SPACE_COPY).is_file() and (out / layout.BASE_CONFIG).is_file():
            space = load_space(out / layout.SPACE_COPY, load_base(out))
        else:
            return {}
    except (AtsukoError, OSError):
        return {}
    return {p.name: _kind_of(p.distribution()) for p in space.params}


def _fits(kind: dict[str, Any], trials: list[Trial], name: str) -> bool:
    """Whether every value of `name` lies in the (guessed) distribution."""
    values = [t.params[name] for t in trials if name in t.params]
    if kind["kind"] == "categorical":
        return all(v in kind["choices"] for v in values)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return False
    return all(kind["low"] <= v <= kind["high"] for v in values)


def _selection(out: Path, fallback_mode: str | None = None) -> tuple[str, str]:
    """The search's selection metric and mode: summary.json, else base_config + dataset spec."""
    summary = out / layout.SUMMARY
    if summary.is_file():
        try:
            sel = json.loads(summary.read_text())["select"]
            return sel["metric"], sel["mode"]
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    try:
        from atsuko.data import get_spec
        from search.settings import load_base

        base = load_base(out)
        spec = get_spec(base.data.dataset)
        return (
            base.train.select_metric or spec.select_metric,
            base.train.select_mode or spec.select_mode,
        )
    except Exception:  # noqa: BLE001 - an interrupted or hand-made folder: best effort
        return "score", fallback_mode or "min"


def _guess_selection(trials: list[Trial]) -> tuple[str, str]:
    """With nothing but trials.csv: the validation column that equals the score, and its mode
    (error metrics are minimised, the rest maximised)."""
    done = [t for t in trials if t.state == "COMPLETE" and math.isfinite(t.score)]
    for name in sorted({k for t in done for k in t.valid}):
        if done and all(math.isclose(t.valid.get(name, math.nan), t.score) for t in done):
            return name, "min" if name in ("MAE", "loss") else "max"
    return "score", "min"


def load(out: str | Path) -> Trials | None:
    """The trials of the search in `out` (study.db first, then trials.csv); None if neither."""
    out = Path(out)
    notes: list[str] = []
    csv_path, db_path = out / layout.TRIALS, out / layout.STUDY
    from_csv = read_trials_csv(csv_path) if csv_path.is_file() else None
    kinds = _space_kinds(out)
    if db_path.is_file():
        try:
            study = _load_study(db_path)
            trials, dist_kinds = _from_study(study, from_csv)
            metric, _ = _selection(out)
            mode = "min" if study.direction.name == "MINIMIZE" else "max"
            return Trials(trials, layout.STUDY, metric, mode, {**dist_kinds, **kinds}, notes)
        except Exception as exc:  # noqa: BLE001 - a half-written file: fall back to the CSV
            notes.append(
                f"study.db could not be read ({type(exc).__name__}: {exc}); used trials.csv"
            )
    if from_csv is None:
        return None
    metric, mode = _selection(out)
    if metric == "score":
        metric, mode = _guess_selection(from_csv)
    if not kinds:  # no copy of the space: the default space's kinds where it names the param
        known = _space_kinds(None)
        kinds = {
            k: known[k] if k in known and _fits(known[k], from_csv, k) else guess
            for k, guess in _infer_kinds(from_csv).items()
        }
    return Trials(from_csv, layout.TRIALS, metric, mode, kinds, notes)


def _from_study(study: Any, from_csv: list[Trial] | None) -> tuple[list[Trial], dict]:
    """Trials of the mirrored study; states, times and running trials completed from the CSV."""
    by_id = {t.trial_id: t for t in from_csv or []}
    trials, kinds = [], {}
    for ft in study.get_trials(deepcopy=False):
        tid = str(ft.user_attrs.get("tune_trial_id", ft.number))
        row = by_id.pop(tid, None)
        state = ft.user_attrs.get("tune_state") or ft.state.name.replace("FAIL", "ERROR")
        score = ft.value if ft.value is not None and ft.state.name == "COMPLETE" else math.nan
        if row is not None and not math.isfinite(score):
            score = row.score
        trials.append(
            Trial(
                trial_id=tid,
                state=state,
                params=dict(ft.params),
                score=float(score) if score is not None else math.nan,
                epochs=int(ft.user_attrs.get("epochs", row.epochs if row else 0) or 0),
                started=row.started if row else _stamp(ft.datetime_start),
                finished=row.finished if row else _stamp(ft.datetime_complete),
                valid=dict(ft.user_attrs.get("valid") or (row.valid if row else {})),
                node=str(ft.user_attrs.get("node_ip") or (row.node if row else "")),
                warm_start=str(ft.user_attrs.get(WARM_START) or (row.warm_start if row else "")),
            )
        )
        for name, dist in ft.distributions.items():
            kinds.setdefault(name, _kind_of(dist))
    trials += list(by_id.values())  # running or pending at the time (not in the study yet)
    return trials, kinds


def _stamp(when: Any) -> float:
    return when.timestamp() if when is not None else math.nan


def to_study(data: Trials) -> Any:
    """An in-memory Optuna study of the COMPLETE trials (for the importance evaluators)."""
    import optuna
    import optuna.distributions as D

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if data.mode == "min" else "maximize")
    for t in data.complete:
        dists, params = {}, {}
        for name, value in t.params.items():
            k = data.kinds.get(name)
            if k is None:
                continue
            if k["kind"] == "categorical":
                choices = list(k.get("choices") or [value])
                if value not in choices:
                    choices.append(value)
                dists[name] = D.CategoricalDistribution(choices)
            elif k["kind"] == "int":
                dists[name] = D.IntDistribution(int(k["low"]), int(k["high"]), log=k["log"])
            else:
                dists[name] = D.FloatDistribution(float(k["low"]), float(k["high"]), log=k["log"])
            params[name] = value
        try:
            study.add_trial(
                optuna.trial.create_trial(params=params, distributions=dists, value=t.score)
            )
        except ValueError:
            continue  # a value outside its recorded range (hand-edited CSV): leave it out
    return study


def importance(data: Trials, method: str = "pedanova") -> tuple[dict[str, float], list[str]]:
    """Parameter importance over COMPLETE trials (sums to 1), and notes on how reliable it is."""
    import optuna

    if method not in METHODS:
        raise ValueError(f"importance method {method!r}; expected one of {', '.join(METHODS)}")
    notes: list[str] = []
    done = data.complete
    if len(done) < 2:
        notes.append(
            f"{len(done)} completed trial(s): importance needs at least 2 (more than 10 to mean "
            "much)"
        )
        return {}, notes
    study = to_study(data)
    if method == "fanova":
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    else:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (RuntimeError, ValueError) as exc:
            notes.append(f"{method} could not be computed: {exc}")
            return {}, notes
    for w in caught:
        text = str(w.message)
        if text not in notes:
            notes.append(text)
    if len(done) < 10:
        notes.append(f"only {len(done)} completed trials: treat these numbers as rough")
    return {k: float(v) for k, v in values.items()}, notes


def marginals(data: Trials, bins: int = 5) -> dict[str, dict[str, Any]]:
    """Per parameter: the COMPLETE trials' (value, score) points and a binned mean curve.

    Numeric parameters are binned by quantiles (in log space for log-scale ones); categoricals
    give one bin per choice.
    """
    curves: dict[str, dict[str, Any]] = {}
    done = data.complete
    for name, kind in data.kinds.items():
        pts = [(t.params[name], t.score) for t in done if name in t.params]
        if not pts:
            continue
        entry: dict[str, Any] = {
            "kind": kind["kind"],
            "log": bool(kind.get("log")),
            "x": [p[0] for p in pts],
            "y": [p[1] for p in pts],
        }
        if kind["kind"] == "categorical":
            groups: dict[str, list[float]] = {}
            for x, y in pts:
                groups.setdefault(str(x), []).append(y)
            entry["bins"] = {
                "x": list(groups),
                "mean": [float(np.mean(v)) for v in groups.values()],
                "std": [float(np.std(v)) for v in groups.values()],
                "n": [len(v) for v in groups.values()],
            }
        else:
            xs = np.asarray([float(p[0]) for p in pts])
            ys = np.asarray([p[1] for p in pts])
            t = np.log(xs) if entry["log"] and np.all(xs > 0) else xs
            edges = np.unique(np.quantile(t, np.linspace(0, 1, min(bins, len(xs)) + 1)))
            which = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, max(len(edges) - 2, 0))
            bx, bm, bs, bn = [], [], [], []
            for b in sorted(set(which.tolist())):
                sel = which == b
                centre = float(np.mean(t[sel]))
                bx.append(float(np.exp(centre)) if t is not xs else centre)
                bm.append(float(np.mean(ys[sel])))
                bs.append(float(np.std(ys[sel])))
                bn.append(int(sel.sum()))
            entry["bins"] = {"x": bx, "mean": bm, "std": bs, "n": bn}
        curves[name] = entry
    return curves


def history(data: Trials) -> dict[str, Any]:
    """Best-so-far validation score by trial (in the order trials finished) and by epochs spent.

    Every trial counts towards trials and epochs spent (pruned and failed ones cost too); only
    COMPLETE trials can improve the best, as only they can be selected. Warm-started trials
    keep their origin (`warm_start`), so the figure draws them apart.
    """
    ended = [t for t in data.trials if t.state in ("COMPLETE", "PRUNED", "ERROR", "STOPPED")]
    order = sorted(
        enumerate(ended),
        key=lambda it: (it[1].finished if math.isfinite(it[1].finished) else math.inf, it[0]),
    )
    sign = 1.0 if data.mode == "min" else -1.0
    best = math.nan
    trial_no, epochs, scores, best_so_far, states, warm = [], [], [], [], [], []
    spent = 0
    for i, (_, t) in enumerate(order, start=1):
        spent += max(int(t.epochs), 0)
        if t.state == "COMPLETE" and math.isfinite(t.score):
            if math.isnan(best) or sign * t.score < sign * best:
                best = t.score
        trial_no.append(i)
        epochs.append(spent)
        scores.append(t.score if math.isfinite(t.score) else None)
        best_so_far.append(best if math.isfinite(best) else None)
        states.append(t.state)
        warm.append(t.warm_start)
    return {
        "trial": trial_no,
        "epochs": epochs,
        "score": scores,
        "best": best_so_far,
        "state": states,
        "warm_start": warm,  # each trial's origin if a warm start seeded it, else ''
        "metric": data.metric,
        "mode": data.mode,
    }


def analyse(out: str | Path, method: str = "pedanova") -> dict[str, Any] | None:
    """Everything above for the search in `out`, as one JSON-able document (None: no trials)."""
    data = load(out)
    if data is None:
        return None
    values, notes = importance(data, method)
    counts: dict[str, int] = {}
    for t in data.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    return {
        "method": method,
        "evaluator": "PedAnovaImportanceEvaluator"
        if method == "pedanova"
        else "FanovaImportanceEvaluator",
        "metric": data.metric,
        "mode": data.mode,
        "source": data.source,
        "trials": counts,
        "n_complete": len(data.complete),
        "importance": values,
        "notes": data.notes + notes,
        "caveat": CLUSTER_NOTE,
        "marginals": marginals(data),
        "history": history(data),
    }


def write_importance(out: str | Path, method: str = "pedanova") -> Path | None:
    """Write `importance.json` in `out`; None when the folder holds no trials."""
    doc = analyse(out, method)
    if doc is None:
        return None
    path = Path(out) / layout.IMPORTANCE
    path.write_text(json.dumps(doc, indent=2, default=_json_default) + "\n")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
