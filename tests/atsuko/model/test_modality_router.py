"""Dual-path modality router: weights sum to one, temperature behaviour, both mixing modes."""

import pytest
import torch

from atsuko.errors import ConfigError
from atsuko.model.modality_router import ModalityRouter

MODS = ["audio", "text", "vision"]


def inputs(num_bands=3, dim=16, batch=6):
    g = torch.Generator().manual_seed(0)
    shallow = {m: torch.randn(batch, dim + num_bands, generator=g) for m in MODS}
    deep = {m: torch.randn(batch, dim, generator=g) for m in MODS}
    return shallow, deep


@pytest.mark.parametrize("mix", ["sum", "gate"])
def test_weights_sum_to_one_and_log_matches(mix):
    router = ModalityRouter(modalities=MODS, dim=16, num_bands=3, mix=mix)
    w, log_w = router(*inputs())
    assert w.shape == (6, 3)
    assert torch.allclose(w.sum(-1), torch.ones(6))
    assert torch.allclose(log_w.exp(), w, atol=1e-6)


@pytest.mark.parametrize("mix", ["sum", "gate"])
def test_tiny_temperature_is_near_one_hot_and_huge_near_uniform(mix):
    torch.manual_seed(0)
    router = ModalityRouter(modalities=MODS, dim=16, num_bands=3, mix=mix, tau=1e-4)
    w, _ = router(*inputs())
    assert (w.max(-1).values > 0.99).all()
    router.tau = 1e4
    w, _ = router(*inputs())
    assert torch.allclose(w, torch.full_like(w, 1 / 3), atol=1e-3)


def test_sum_mode_adds_the_two_paths():
    router = ModalityRouter(modalities=MODS, dim=16, num_bands=0, mix="sum")
    shallow, deep = inputs(num_bands=0)
    scores = router.scores(shallow, deep)
    for i, m in enumerate(MODS):
        ref = router.pre[m](shallow[m]) + router.post[m](deep[m])
        assert torch.allclose(scores[:, i : i + 1], ref)


def test_gate_at_one_half_equals_sum():
    router = ModalityRouter(modalities=MODS, dim=16, num_bands=3, mix="gate")
    for m in MODS:  # sigmoid(0) = 1/2
        torch.nn.init.zeros_(router.gate[m].weight)
        torch.nn.init.zeros_(router.gate[m].bias)
    shallow, deep = inputs()
    ref = torch.cat([router.pre[m](shallow[m]) + router.post[m](deep[m]) for m in MODS], -1)
    assert torch.allclose(router.scores(shallow, deep), ref, atol=1e-6)


def test_unknown_mix_is_a_config_error():
    with pytest.raises(ConfigError, match="router_mix"):
        ModalityRouter(modalities=MODS, dim=16, mix="max")
