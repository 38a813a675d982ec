"""`atsuko.model.encoders`: masks, masked pooling, and padding that never reaches a valid step."""

import pytest
import torch

from atsuko.errors import ConfigError
from atsuko.model.encoders import (
    CrossModalBlock,
    Encoder,
    InputProjection,
    length_mask,
    masked_mean,
    sinusoidal_positions,
)

D = 8


def test_length_mask_marks_the_valid_prefix():
    mask = length_mask(torch.tensor([0, 2, 4]), 4)
    assert mask.tolist() == [
        [False, False, False, False],
        [True, True, False, False],
        [True, True, True, True],
    ]


def test_masked_mean_ignores_padding_and_empty_rows():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[5.0], [7.0], [9.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    assert masked_mean(x, mask).tolist() == [[2.0], [0.0]]


def test_positions_alternate_sine_and_cosine():
    table = sinusoidal_positions(5, D, "cpu", torch.float32)
    assert table.shape == (5, D)
    assert torch.equal(table[0, 0::2], torch.zeros(D // 2))
    assert torch.equal(table[0, 1::2], torch.ones(D // 2))


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_projection_is_zero_on_padding_and_blind_to_it(kind):
    torch.manual_seed(0)
    proj = InputProjection(kind=kind, dim_in=3, dim=D, kernel=3).eval()
    x = torch.randn(1, 6, 3)
    mask = length_mask(torch.tensor([4]), 6)
    out = proj(x, mask)
    assert torch.equal(out[0, 4:], torch.zeros(2, D))
    spoiled = x.clone()
    spoiled[0, 4:] = 1e3
    assert torch.allclose(proj(spoiled, mask), out)


def test_projection_rejects_unknown_kinds():
    with pytest.raises(ConfigError, match="model.proj"):
        InputProjection(kind="rnn", dim_in=3, dim=D)


def test_encoder_and_cross_attention_never_look_at_padding():
    torch.manual_seed(0)
    encoder = Encoder(dim=D, layers=2, heads=2).eval()
    cross = CrossModalBlock(dim=D, heads=2).eval()
    x, context = torch.randn(2, 5, D), torch.randn(2, 7, D)
    mask = length_mask(torch.tensor([5, 3]), 5)
    context_mask = length_mask(torch.tensor([7, 2]), 7)
    h = encoder(x, mask)
    out = cross(h, mask, context, context_mask)
    assert torch.equal(h[1, 3:], torch.zeros(2, D)) and torch.equal(out[1, 3:], torch.zeros(2, D))
    x2, context2 = x.clone(), context.clone()
    x2[1, 3:] = 50.0
    context2[1, 2:] = -50.0
    h2 = encoder(x2, mask)
    assert torch.allclose(h2, h, atol=1e-6)
    assert torch.allclose(cross(h2, mask, context2, context_mask), out, atol=1e-6)
