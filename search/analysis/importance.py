"""What a search's own trials say: marginal curves, parameter importance, search history.

The trials are `search.study.trials.load`'s (`study.db`, else `trials.csv`). Importance is
Optuna's PED-ANOVA by default (fANOVA on request) over COMPLETE trials only: a trial ASHA
pruned carries a partial score. Sampled trials cluster where the sampler went, so these
numbers describe the region the search explored, not the parameter's effect everywhere; the
one-at-a-time sweeps of `search.sweep.runner` are the fair measure.
Writes `importance.json` under the search's folder.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from search import layout
from search.study.trials import Trials, load

METHODS = ("pedanova", "fanova")
CLUSTER_NOTE = (
    "Sampled trials cluster where the sampler went, so importance and marginal curves describe "
    "the region the search explored; the one-at-a-time sensitivity sweeps, which vary one "
    "parameter around a fixed anchor over its whole range with several seeds, are the fair "
    "measure of sensitivity."
)


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


def analyse(out: str | Path, method: str = "pedanova", data: Any = None) -> dict[str, Any] | None:
    """Everything above for the search in `out`, as one JSON-able document (None: no trials);
    `data`: its trials where the caller has loaded them already."""
    data = load(out) if data is None else data
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
    path.write_text(json.dumps(doc, indent=2, default=json_default) + "\n")
    return path


def json_default(value: Any) -> Any:
    """What `json.dumps` writes for numpy scalars (and anything else: its text)."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
