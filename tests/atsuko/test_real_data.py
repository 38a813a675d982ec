"""Real data: every sample of the real benchmark files trains, for every value the search can
draw (files built from ../shared/data/real at test time; skipped without it)."""

from __future__ import annotations

import pytest
import real_data as rd
import torch

from atsuko import config as cfg
from atsuko.data import load
from atsuko.train import fit

pytestmark = pytest.mark.slow
ALL_NEGATIVE_NON0 = 0.5771  # the constant all-negative predictor on real MOSI's test split


def _config(dataset: str, **overrides):
    return cfg.resolve(overrides={"device": "cpu", **overrides}, dataset=dataset)


def test_real_files_hold_short_sequences(real_mosi, real_mosi_unaligned, real_mintrec):
    aligned, unaligned, mintrec = load(real_mosi), load(real_mosi_unaligned), load(real_mintrec)
    assert aligned.splits["train"].lengths["text"][:3].tolist() == [1, 1, 2]  # 0 reads as 1
    for m in ("audio", "vision"):
        assert unaligned.splits["test"].lengths[m][:3].tolist() == [1, 1, 2]
    text = torch.cat([s.lengths["text"] for s in mintrec.splits.values()])
    assert (text <= 2).sum() > 10  # real one- and two-word utterances
    vision = torch.cat([s.lengths["vision"] for s in mintrec.splits.values()])
    assert (vision == 1).sum() > 50
    ids = aligned.splits["train"].ids
    assert ids[0] == "03bSnISJMiM$_$1" and len(aligned.splits["test"]) == 685


def test_default_config_beats_the_all_negative_predictor_on_real_mosi(real_mosi):
    result = fit(_config("mosi", epochs=5), load(real_mosi), score_test=True, log=None)
    assert result.test["Non0_acc_2"] > ALL_NEGATIVE_NON0 + 0.04, result.test


@pytest.mark.parametrize("which", ["real_mosi_unaligned", "real_mintrec"])
def test_default_config_trains_on_each_real_file(which, request):
    path = request.getfixturevalue(which)
    dataset = load(path)
    result = fit(_config(dataset.spec.name, epochs=1), dataset, score_test=True, log=None)
    assert all(v == v for v in result.test.values()), result.test  # no NaN


@pytest.fixture(scope="module")
def small(real_mosi, real_mintrec):
    """Each real file cut to 96 rows per split, its shortest rows first."""
    return {"mosi": rd.subset(load(real_mosi), 96), "mintrec": rd.subset(load(real_mintrec), 96)}


@pytest.mark.parametrize("graph", ["path", "knn"])
@pytest.mark.parametrize("split", ["uniform", "log"])
@pytest.mark.parametrize("name", ["mosi", "mintrec"])
def test_one_epoch_trains_for_every_num_bands(small, name, split, graph):
    dataset = small[name]
    for num_bands in range(1, 9):  # the default space's range
        config = _config(
            name,
            epochs=1,
            hidden=8,
            heads=2,
            batch_size=48,
            num_bands=num_bands,
            band_split=split,
            graph=graph,
        )
        seen = {}
        result = fit(config, dataset, on_epoch=lambda r, t, seen=seen: seen.update(r=r), log=None)
        assert result.best_epoch == 1
        router = seen["r"].router
        for m in ("text", "audio", "vision"):
            weights = [router[f"alpha/{m}/{k}"] for k in range(num_bands)]
            assert all(0.0 <= w <= 1.0 for w in weights), (num_bands, m, weights)
