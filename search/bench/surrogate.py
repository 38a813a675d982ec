"""A surrogate replay: a learning curve for any configuration, fitted on a curve table.

The nearest-neighbour replay (`search.bench.curve_table.nearest`) answers a configuration with
the closest recorded curve, so a model-based searcher that narrows in on a good region is
answered by curves it has already seen. The surrogate gives every configuration its own curve,
as the surrogate benchmarks of the field do (a model of the configuration -> curve map, fitted
on recorded runs):

- each recorded curve is fitted by score(epoch) = final + (start - final) * exp(-(epoch - 1) /
  rate): for a grid of rates the curve is linear in (start, final), solved by least squares;
  the rate with the least squared error wins (robust on short, noisy curves);
- a random forest predicts (start, final, log rate, log noise, log epoch seconds) from the
  configuration, encoded as the matcher measures it: numbers mapped to [0, 1] over their range
  (log scale for log parameters), categoricals one-hot, inactive parameters -1;
- noise within a curve: the residual standard deviation of each recorded curve around its
  fit; a generated curve adds Gaussian noise of the predicted size each epoch;
- noise between seeds (`seed_spread`), where the table holds a second training seed for some
  configurations (`repeats`, `search.bench.merge_seeds`): the spread of a configuration's best
  score over seeds, measured on those pairs; a generated curve is shifted as a whole by a
  Gaussian offset of that size (a seed moves a whole curve, not single epochs). Repeats are
  also fitted as curves of their configuration. Without repeats the offset is 0;
- every draw comes from the configuration and the replay's seed, so a replay is reproducible;
- the patience stop of the recorded runs: a curve ends `patience` epochs after its last
  strict improvement (or at max epochs);
- a generated curve also carries its configuration's noiseless `quality`: the best of its mean
  curve over max epochs, what it scores in expectation over seeds (the replay's measure of
  what a search chose, free of the lucky epochs its noisy best collects).

`heldout_rank_corr` checks it: k-fold over the table's configurations, the Spearman rank
correlation of the predicted (best of the mean curve) and recorded best scores.
Tested in `tests/search/bench/test_surrogate_replay.py`.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

from search.bench.curve_table import unit_position

# candidate decay rates, in epochs: slower ones extrapolate a far-off "final" from a curve that
# patience stopped, which ranks configurations worse (held-out rank correlation 0.19 vs 0.41)
RATES = np.geomspace(0.5, 8.0, 24)
TREES = 64


def encode(space: list[dict[str, Any]], params: dict[str, Any]) -> list[float]:
    """The configuration as a vector: numbers in [0, 1], categoricals one-hot, inactive -1."""
    out: list[float] = []
    for spec in space:
        name, present = spec["name"], spec["name"] in params
        if spec["kind"] == "categorical":
            out += [float(present and params[name] == c) for c in spec["choices"]]
        else:
            out.append(unit_position(spec, params[name]) if present else -1.0)
    return out


def family(start: float, final: float, rate: float, epochs: int) -> np.ndarray:
    """The mean curve over epochs 1..`epochs`."""
    w = np.exp(-np.arange(epochs) / rate)
    return final + (start - final) * w


def fit_curve(scores: list[float]) -> tuple[float, float, float, float]:
    """(start, final, rate, residual std) of the family's least-squares fit to `scores`."""
    y = np.asarray(scores, dtype=float)
    if len(y) < 3:  # too short to tell a decay: flat at the mean
        return float(y[0]), float(y.mean()), 1.0, 0.0
    best: tuple[float, float, float, float] | None = None
    for rate in RATES:
        w = np.exp(-np.arange(len(y)) / rate)
        design = np.stack([w, 1.0 - w], axis=1)
        (start, final), *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = float(np.sum((design @ [start, final] - y) ** 2))
        if best is None or sse < best[3]:
            best = (float(start), float(final), float(rate), sse)
    start, final, rate, sse = best
    return start, final, rate, math.sqrt(sse / max(1, len(y) - 3))


def patience_stop(scores: np.ndarray, patience: int, mode: str) -> np.ndarray:
    """The curve cut `patience` epochs after its last strict improvement, as training stops."""
    best, since = None, 0
    for e, s in enumerate(scores):
        if best is None or (s < best if mode == "min" else s > best):
            best, since = s, 0
        else:
            since += 1
            if since >= patience:
                return scores[: e + 1]
    return scores


class Surrogate:
    """Fitted on a curve table; `curve(params, seed)` answers as a recorded trial does."""

    def __init__(self, table: dict[str, Any], trials: list[dict[str, Any]] | None = None):
        from sklearn.ensemble import RandomForestRegressor

        meta = table["meta"]
        self.space, self.mode = meta["space"], meta["mode"]
        self.max_epochs, self.patience = int(meta["max_epochs"]), int(meta.get("patience", 5))
        trials = curves(table["trials"] if trials is None else trials)
        fits = [fit_curve(t["scores"]) for t in trials]
        noise = [f[3] for f in fits]
        floor = max(1e-6, float(np.median(noise)) * 0.1)  # a perfect fit is not noiseless
        targets = [
            [f[0], f[1], math.log(f[2]), math.log(max(f[3], floor)), math.log(_seconds(t))]
            for f, t in zip(fits, trials, strict=True)
        ]
        self.noise = float(np.median(noise))  # the typical noise within a curve, reported
        self.seed_noise = seed_spread(table) or 0.0  # between seeds: a whole curve's offset
        self.model = RandomForestRegressor(n_estimators=TREES, min_samples_leaf=2, random_state=0)
        self.model.fit([encode(self.space, t["params"]) for t in trials], targets)

    def mean(self, params: dict[str, Any]) -> tuple[np.ndarray, float, float]:
        """The predicted mean curve over max epochs, the noise std and the epoch seconds."""
        start, final, log_rate, log_noise, log_sec = self._predict(encode(self.space, params))
        curve = family(start, final, math.exp(log_rate), self.max_epochs)
        return curve, math.exp(log_noise), math.exp(log_sec)

    def _predict(self, x: list[float]) -> np.ndarray:
        """The forest's prediction for one configuration, tree by tree: what `predict` gives,
        without its per-call overhead (18 ms here, the bulk of a surrogate replay)."""
        row = np.asarray([x], dtype=np.float32)  # the trees split on float32
        return np.mean([tree.tree_.predict(row)[0, :, 0] for tree in self.model.estimators_], 0)

    def quality(self, params: dict[str, Any]) -> float:
        """The configuration's noiseless quality: the best of its mean curve."""
        return self._best(self.mean(params)[0])

    def _best(self, mean: np.ndarray) -> float:
        return float(mean.min() if self.mode == "min" else mean.max())

    def curve(self, params: dict[str, Any], seed: int = 0, patience: bool = True) -> dict[str, Any]:
        """A curve for `params`: the mean plus noise drawn from (params, seed), cut by patience
        (all `max_epochs` without it), with the configuration's noiseless `quality`."""
        mean, noise, seconds = self.mean(params)
        rng = np.random.default_rng(_draw_key(params, seed))
        noisy = mean + noise * rng.standard_normal(len(mean))
        if self.seed_noise:  # drawn after the epochs' noise: tables without repeats unchanged
            noisy += self.seed_noise * rng.standard_normal()
        scores = patience_stop(noisy, self.patience, self.mode) if patience else noisy
        return {
            "scores": [float(s) for s in scores],
            "seconds": [seconds] * len(scores),
            "quality": self._best(mean),
        }


def curves(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every recorded curve: each trial's, then its repeats' (other seeds, same params)."""
    out = []
    for t in trials:
        out.append(t)
        out += [{"params": t["params"], **r} for r in t.get("repeats", [])]
    return out


def seed_spread(table: dict[str, Any]) -> float | None:
    """The standard deviation of one seed's best score around its configuration's mean, from
    the configurations recorded with more than one seed (pooled within-configuration
    variance); None where the table has no repeats."""
    better = min if table["meta"]["mode"] == "min" else max
    squares, dof = 0.0, 0
    for t in table["trials"]:
        bests = [better(c["scores"]) for c in [t, *t.get("repeats", [])] if c["scores"]]
        if len(bests) > 1:
            squares += float(np.sum((np.asarray(bests) - np.mean(bests)) ** 2))
            dof += len(bests) - 1
    return math.sqrt(squares / dof) if dof else None


def _seconds(trial: dict[str, Any]) -> float:
    return max(1e-6, float(np.mean(trial["seconds"])))


def _draw_key(params: dict[str, Any], seed: int) -> int:
    """A stable number from the configuration and the seed (the same across processes)."""
    text = json.dumps([seed, sorted(params.items())], default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def heldout_rank_corr(table: dict[str, Any], folds: int = 5) -> float:
    """Spearman rank correlation, over the table's configurations, of each one's best score
    predicted by a surrogate fitted without it (k-fold) and its recorded best."""
    from search.bench.replay_stats import spearman

    trials = table["trials"]
    minimise = table["meta"]["mode"] == "min"
    predicted, recorded = [], []
    for k in range(folds):
        held = trials[k::folds]
        fitted = Surrogate(table, [t for i, t in enumerate(trials) if i % folds != k])
        for t in held:  # the prediction: the best of the mean curve (the curve ends at it)
            predicted.append(fitted.quality(t["params"]))
            recorded.append(min(t["scores"]) if minimise else max(t["scores"]))
    return spearman(predicted, recorded)


def surrogate_table(table: dict[str, Any], surrogate: Surrogate) -> dict[str, Any]:
    """The table as the surrogate answers it: its configurations' generated curves (seed 0).
    The surrogate replay measures regret and qualities on this, not on the recorded curves: a
    forest's predictions shrink toward the mean, so the recorded extremes may be out of reach."""
    trials = [{**t, **surrogate.curve(t["params"], 0)} for t in table["trials"]]
    return {"meta": table["meta"], "trials": trials}


def noiseless_table(table: dict[str, Any], surrogate: Surrogate) -> dict[str, Any]:
    """The table's configurations, each a one-epoch curve at its noiseless quality: the regret
    scale and the qualities of the noiseless measure (`search.bench.simulate`'s third path
    element)."""
    trials = [{**t, "scores": [surrogate.quality(t["params"])]} for t in table["trials"]]
    return {"meta": table["meta"], "trials": trials}
