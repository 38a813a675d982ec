"""The field's metrics, exactly as the MMSA and MIntRec toolkits compute them.

`score(dataset, pred, truth)` returns a dict keyed by the names papers report.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from atsuko.errors import DataError

SIMS_EDGES = {2: (0.0,), 3: (-0.1, 0.1), 5: (-0.7, -0.1, 0.1, 0.7)}


def _pearson(p: np.ndarray, t: np.ndarray) -> float:
    if np.ptp(p) == 0 or np.ptp(t) == 0:
        return 0.0  # a constant predictor has no correlation (numpy would give NaN)
    return float(np.corrcoef(p, t)[0, 1])


def _weighted_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(f1_score(truth, pred, average="weighted", zero_division=0))


def mosi(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """CMU-MOSI / CMU-MOSEI: labels in [-3, 3]; `np.round` sends halves to the even integer."""
    non0 = truth != 0
    return {
        "Has0_acc_2": float(np.mean((pred >= 0) == (truth >= 0))),
        "Has0_F1_score": _weighted_f1(truth >= 0, pred >= 0),
        "Non0_acc_2": float(np.mean((pred[non0] > 0) == (truth[non0] > 0))),
        "Non0_F1_score": _weighted_f1(truth[non0] > 0, pred[non0] > 0),
        "Mult_acc_5": float(
            np.mean(np.round(np.clip(pred, -2, 2)) == np.round(np.clip(truth, -2, 2)))
        ),
        "Mult_acc_7": float(
            np.mean(np.round(np.clip(pred, -3, 3)) == np.round(np.clip(truth, -3, 3)))
        ),
        "MAE": float(np.mean(np.abs(pred - truth))),
        "Corr": _pearson(pred, truth),
    }


def sims_bins(values: np.ndarray, classes: int) -> np.ndarray:
    """Right-closed bins over [-1, 1]: a value on an edge belongs to the lower class."""
    return np.searchsorted(np.asarray(SIMS_EDGES[classes]), values, side="left")


def sims(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """CH-SIMS / CH-SIMSv2: both clipped to [-1, 1] first (MAE and Corr too)."""
    p, t = np.clip(pred, -1, 1), np.clip(truth, -1, 1)
    out = {f"Mult_acc_{k}": float(np.mean(sims_bins(p, k) == sims_bins(t, k))) for k in (2, 3, 5)}
    out["F1_score"] = _weighted_f1(sims_bins(t, 2), sims_bins(p, 2))
    out["MAE"] = float(np.mean(np.abs(p - t)))
    out["Corr"] = _pearson(p, t)
    return out


def intents(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MIntRec: accuracy, and macro (MIntRec) and weighted (MIntRec 2.0) F1, precision, recall."""
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)  # (N, C) logits -> class index
    out = {"acc": float(accuracy_score(truth, pred))}
    for name, fn in (("f1", f1_score), ("precision", precision_score), ("recall", recall_score)):
        out[name] = float(fn(truth, pred, average="macro", zero_division=0))
        out[f"{name}_weighted"] = float(fn(truth, pred, average="weighted", zero_division=0))
    return out


SCORERS = {"mosi": mosi, "mosei": mosi, "sims": sims, "simsv2": sims, "mintrec": intents}


def score(dataset: str, pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """All metrics of `dataset` for `pred` (N,) or logits (N, C) against `truth` (N,)."""
    if dataset not in SCORERS:
        raise DataError(f"no metrics for dataset '{dataset}'; expected one of {sorted(SCORERS)}")
    pred = np.asarray(pred, dtype=np.float64 if dataset != "mintrec" else None)
    truth = np.asarray(truth).reshape(-1)
    if dataset != "mintrec":
        pred = pred.reshape(-1)
        truth = truth.astype(np.float64)
    if len(pred) != len(truth) or len(truth) == 0:
        raise DataError(f"score: {len(pred)} predictions for {len(truth)} labels")
    return SCORERS[dataset](pred, truth)
