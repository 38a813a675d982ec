"""Band router, band experts and the SBR block."""

import pytest
import torch
import torch.nn.functional as F

from atsuko.model.band_router import (
    BandExperts,
    BandRouter,
    SpectralBandRouting,
    mean_band_weights,
)
from atsuko.model.encoders import length_mask


def pooled(batch=8, dim=16, seed=0):
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed))


def test_band_weights_sum_to_one():
    alpha = BandRouter(dim=16, num_bands=5)(pooled())
    assert alpha.shape == (8, 5)
    assert torch.allclose(alpha.sum(-1), torch.ones(8))
    assert (alpha > 0).all()


def test_masked_softmax_gives_empty_bands_no_weight():
    router = BandRouter(dim=16, num_bands=5, tau=0.7)
    everything = torch.ones(8, 5, dtype=torch.bool)
    assert torch.equal(router(pooled(), everything), router(pooled()))  # all bands: unchanged
    mask = everything.clone()
    mask[1, 2:] = False
    mask[2, 1::2] = False
    alpha = router(pooled(), mask)
    assert (alpha[~mask] == 0).all() and (alpha[mask] > 0).all()
    assert torch.allclose(alpha.sum(-1), torch.ones(8))
    logits = router.proj(pooled()) / 0.7
    assert torch.allclose(alpha[1, :2], torch.softmax(logits[1, :2], -1))
    top = BandRouter(dim=16, num_bands=5, top_k=3)(pooled(), mask)  # fewer bands than top_k
    assert torch.allclose(top.sum(-1), torch.ones(8)) and (top[~mask] == 0).all()


def test_mean_band_weights_count_the_samples_that_have_the_band():
    alpha = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    mask = torch.tensor([[True, True, False], [True, False, False], [True, True, True]])
    assert mean_band_weights(alpha, mask) == pytest.approx([1.7 / 3, 0.4, 0.5])
    assert mean_band_weights(alpha[:2], mask[:2]) == pytest.approx([0.75, 0.5, 0.0])
    assert mean_band_weights(alpha) == pytest.approx(alpha.mean(0).tolist())


def test_tiny_temperature_is_near_one_hot_and_huge_near_uniform():
    torch.manual_seed(0)
    router = BandRouter(dim=16, num_bands=4, tau=1e-3)
    alpha = router(pooled())
    assert (alpha.max(-1).values > 0.99).all()
    router.tau = 1e4
    alpha = router(pooled())
    assert torch.allclose(alpha, torch.full_like(alpha, 0.25), atol=1e-3)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_keeps_k_bands_renormalised(k):
    router = BandRouter(dim=16, num_bands=4, top_k=k)
    alpha = router(pooled())
    assert ((alpha > 0).sum(-1) == k).all()
    assert torch.allclose(alpha.sum(-1), torch.ones(8))
    full = torch.softmax(router.proj(pooled()), -1)
    kept = full.topk(k, -1)
    assert torch.allclose(alpha.gather(-1, kept.indices), kept.values / kept.values.sum(-1, True))


def test_batched_experts_equal_one_ffn_per_band():
    experts = BandExperts(num_bands=3, dim=8, hidden=12)
    bands = torch.randn(2, 3, 5, 8)
    out = experts(bands)
    for k in range(3):
        b1 = experts.bias1.view(3, 12)[k]
        b2 = experts.bias2.view(3, 8)[k]
        ref = F.gelu(bands[:, k] @ experts.weight1[k] + b1) @ experts.weight2[k] + b2
        assert torch.allclose(out[:, k], ref, atol=1e-5)
    assert experts.bias1.ndim == experts.bias2.ndim == 1  # no decay under rank-based groups


def test_sbr_block_keeps_padding_zero():
    block = SpectralBandRouting(dim=8, num_bands=3, dropout=0.0)
    lengths = torch.tensor([10, 6, 4])
    mask = length_mask(lengths, 10)
    x = torch.randn(3, 10, 8) * mask[..., None]
    out, alpha = block(x, mask, lengths)
    assert out.shape == x.shape and alpha.shape == (3, 3)
    assert out[~mask].abs().sum() == 0
    assert torch.isfinite(out).all()
