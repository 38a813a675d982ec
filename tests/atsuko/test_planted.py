"""On the planted synthetic data the method finds what was planted (`atsuko.data.synthetic`).

MOSI-aligned shapes at 30% scale, 10 epochs, lr 3e-3, fixed seeds. Thresholds carry headroom
over the design page's measurements (full/baseline MAE 0.46/1.00; planted band weight >= 0.52;
complementarity top-1 0.72 on audio- or vision-decided samples).
"""

import pytest
import torch

from atsuko import config as cfg
from atsuko.data import batches, load_from_config
from atsuko.train import Trainer, fit

pytestmark = pytest.mark.slow
PLANTED = {"synthetic": True, "scale": 0.3, "epochs": 10, "lr": 3e-3, "patience": 0, "seed": 1111}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    config = cfg.resolve(
        overrides={**PLANTED, "cache_dir": str(tmp_path_factory.mktemp("planted"))}, dataset="mosi"
    )
    return config, load_from_config(config.data)


@pytest.fixture(scope="module")
def full(setup):
    config, data = setup
    trainer = {}
    result = fit(config, data, on_epoch=lambda r, t: trainer.update(t=t), log=None)
    return result, trainer["t"]


def test_full_model_beats_the_baseline(setup, full):
    config, data = setup
    baseline = fit(config.replace(use_sbr=False, use_mcm=False), data, log=None)
    ratio = full[0].valid["MAE"] / baseline.valid["MAE"]
    assert ratio < 0.7, f"full {full[0].valid['MAE']:.3f} vs baseline {baseline.valid['MAE']:.3f}"


def test_band_router_favours_the_planted_band(setup, full):
    _, data = setup
    router = full[1].evaluate("test").router
    for m, band in data.planted["bands"].items():
        weights = [router[f"alpha/{m}/{k}"] for k in range(data.planted["num_bands"])]
        assert max(weights) == weights[band], f"{m}: {weights}, planted band {band}"
        assert weights[band] > 0.45, f"{m}: {weights}"


@torch.no_grad()
def complementarity_top1(trainer: Trainer, split_name: str) -> tuple[float, float]:
    """Share of audio- or vision-decided samples where c's (and w's) top modality is the decider."""
    split = trainer.splits[split_name]
    model, modalities = trainer.model.eval(), sorted(trainer.dataset.dims)
    deciders = trainer.dataset.planted["deciders"]
    hits_c = hits_w = total = 0
    for batch in batches(split, 256, shuffle=False):
        out = model(batch.features, batch.lengths, batch.extras, branches=True)
        c = model.loss(out, batch.labels, epoch=10**6).c
        for i, d in enumerate(batch.extras["decider"].tolist()):
            if deciders[d] in ("audio", "vision"):
                target = modalities.index(deciders[d])
                hits_c += int(c[i].argmax()) == target
                hits_w += int(out.w[i].argmax()) == target
                total += 1
    return hits_c / total, hits_w / total


def test_complementarity_points_at_the_deciding_modality(full):
    top1_c, top1_w = complementarity_top1(full[1], "test")
    assert top1_c >= 0.5, f"c top-1 {top1_c:.2f} (chance 1/3)"
    assert top1_w >= 0.45, f"w top-1 {top1_w:.2f} (chance 1/3): KL(c || w) moves the router"
