"""A search's trials read back from its `--out` folder: what warm start, the report and
parameter importance read.

`study.db` (the Optuna study the search mirrors) first, then `trials.csv`, so an interrupted
search, or one whose study file is missing, still gives whatever its finished trials allow;
with each parameter's kind (the search's copy of its space, else the study's distributions,
else guessed from the values) and the search's selection metric and mode.
Tested in `tests/search/study/test_trials.py`.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search import layout
from search.runtime.records import WARM_START


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


def scalar(text: str) -> Any:
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
            k[6:]: scalar(v) for k, v in row.items() if k.startswith("param/") and v not in ("",)
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
