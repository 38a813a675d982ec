"""The recorded curve table: real learning curves of Atsuko, read back by the replay.

A finished search folder (random sampler, no scheduler: every trial to its full budget under
the usual patience rule) becomes one small gzipped JSON file:

    {"meta": {command, dataset, synthetic, scale (null on real data), data_file (its name on
              real data), data_sha256, sets (--set pins), train_seed, metric, mode, max_epochs,
              patience, sampler, seed, concurrency, space: [{name, kind, low, high, log,
              choices}], ...},
     "trials": [{"trial_id", "params", "scores": [valid score per epoch],
                 "seconds": [seconds per epoch], "seed": training seed,
                 "repeats": [{seed, scores, seconds}] (a merged second seed, optional)}, ...]}
                 # in the order the search made them; older tables lack the newer keys

`nearest` answers any configuration with the recorded one closest to it in the space's
normalised coordinates: each number mapped to [0, 1] over its range (on a log scale for log
parameters); categoricals (and parameters that are active in one and not the other) count
first, so an exact categorical match wins whenever the table has one.
Tested in `tests/search/bench/test_replay.py`.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

from search import layout
from search.study.space import Space

TABLE_VERSION = 1
TABLE = Path(__file__).resolve().parent / "curves" / "mosi_planted.json.gz"  # the committed one
HELD_OUT = TABLE.parent / "mintrec_minilm.json.gz"  # real MIntRec text, frozen MiniLM: reported


def data_label(meta: dict[str, Any]) -> str:
    """The data a table was recorded on, in words: `MOSI scale 0.2`, `MOSI aligned_50.pkl`."""
    name = str(meta["dataset"]).upper()
    if meta.get("synthetic", True):
        return f"{name} scale {meta['scale']:g}"
    return f"{name} {meta.get('data_file') or 'real data'}"


def space_doc(space: Space) -> list[dict[str, Any]]:
    """What the table keeps of the space: enough to normalise any configuration."""
    return [
        {
            "name": p.name,
            "kind": p.kind,
            "low": p.low,
            "high": p.high,
            "log": bool(p.log),
            "choices": list(p.choices),
        }
        for p in space.params
    ]


def search_order(out: Path) -> list[str]:
    """The trial ids of a search folder in the order the search made them (`trials.csv` lists
    Tune's results in creation order)."""
    import csv

    with (Path(out) / layout.TRIALS).open(newline="") as f:
        return [row["trial_id"] for row in csv.DictReader(f)]


def read_curves(out: Path) -> list[dict[str, Any]]:
    """Each trial's per-epoch validation scores and epoch seconds from Tune's `result.json`
    logs (an epoch reported twice, by a retry or Tune's closing duplicate, counts once), in
    the order the search made the trials."""
    trials = []
    for log in (Path(out) / layout.TUNE_DIR).glob("*/result.json"):
        epochs: dict[int, tuple[float, float]] = {}
        params, trial_id = None, None
        for line in log.read_text().splitlines():
            try:
                row = json.loads(line)
                epoch = int(row["epoch"])
                entry = (float(row["score"]), float(row["epoch_seconds"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            epochs.setdefault(epoch, entry)
            params, trial_id = row.get("config", params), row.get("trial_id", trial_id)
        if not epochs or trial_id is None:
            continue
        ordered = [epochs[e] for e in sorted(epochs)]
        if sorted(epochs) != list(range(1, len(ordered) + 1)):
            raise ValueError(f"{log}: epochs {sorted(epochs)} are not 1..N")
        trials.append(
            {
                "trial_id": trial_id,
                "params": params or {},
                "scores": [round(s, 6) for s, _ in ordered],
                "seconds": [round(t, 4) for _, t in ordered],
            }
        )
    order = {trial_id: k for k, trial_id in enumerate(search_order(out))}
    return sorted(trials, key=lambda t: (order.get(t["trial_id"], len(order)), t["trial_id"]))


def write_table(path: Path, meta: dict[str, Any], trials: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": TABLE_VERSION, "meta": meta, "trials": trials}
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"), sort_keys=True)


def load_table(path: str | Path) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        doc = json.load(f)
    if doc.get("version") != TABLE_VERSION or not doc.get("trials"):
        raise ValueError(f"{path}: not a curve table of version {TABLE_VERSION}")
    return doc


def unit_position(spec: dict[str, Any], value: Any) -> float:
    low, high = float(spec["low"]), float(spec["high"])
    x = float(value)
    if spec["log"]:
        low, high, x = math.log(low), math.log(high), math.log(max(x, 1e-300))
    return 0.0 if high == low else (x - low) / (high - low)


def distance(space: list[dict[str, Any]], a: dict[str, Any], b: dict[str, Any]) -> tuple:
    """(categorical and activity mismatches, squared normalised distance of the numbers)."""
    mismatches, squared = 0, 0.0
    for spec in space:
        name = spec["name"]
        if (name in a) != (name in b):
            mismatches += 1
        elif name not in a:
            continue
        elif spec["kind"] == "categorical":
            mismatches += a[name] != b[name]
        else:
            squared += (unit_position(spec, a[name]) - unit_position(spec, b[name])) ** 2
    return mismatches, squared


def nearest(table: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The recorded trial nearest to `params` (ties: the one recorded first)."""
    space = table["meta"]["space"]
    return min(table["trials"], key=lambda t: distance(space, params, t["params"]))
