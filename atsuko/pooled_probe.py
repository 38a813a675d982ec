"""The pooled baseline beside Atsuko on real text: a linear model on the masked mean of the
text states the model trains on (the frozen encoder's, `model.bert_layers` included), its
penalty picked on validation, the test split scored once: logistic regression for
classification, ridge for regression. `python -m atsuko.bench_real` prints it per dataset.
Tested in `tests/atsuko/test_real_text.py` (on the real sets).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from atsuko.data.dataset import Dataset, Split
from atsuko.metrics import score
from atsuko.model.encoders import length_mask, masked_mean

PENALTIES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # C = 1 / alpha


def pooled_text(split: Split) -> np.ndarray:
    """(N, H): each sample's text states averaged over its valid steps."""
    x = split.features["text"]
    return masked_mean(x, length_mask(split.lengths["text"], x.shape[1])).numpy()


def _model(classification: bool, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    return LogisticRegression(C=c, max_iter=5000) if classification else Ridge(alpha=1.0 / c)


def pooled_probe(dataset: Dataset, metric: str, mode: str) -> dict[str, Any]:
    """{'penalty', 'valid', 'test'}: the linear model whose validation `metric` is best."""
    classification = dataset.spec.task == "classification"
    x = {s: pooled_text(dataset.splits[s]) for s in ("train", "valid", "test")}
    y = {s: dataset.splits[s].labels.numpy() for s in x}
    sign = 1.0 if mode == "min" else -1.0
    best = None
    for c in PENALTIES:
        fitted = _model(classification, c).fit(x["train"], y["train"])
        valid = score(dataset.spec.name, fitted.predict(x["valid"]), y["valid"])
        if best is None or sign * valid[metric] < sign * best[1][metric]:
            best = (c, valid, fitted)
    c, valid, fitted = best
    test = score(dataset.spec.name, fitted.predict(x["test"]), y["test"])
    return {"penalty": c, "valid": valid, "test": test}
