"""Random batches and small model configurations for the model tests (no dataset layer)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from atsuko.config import ModelConfig

ALIGNED = {"audio": (12, 5), "text": (12, 24), "vision": (12, 7)}
UNALIGNED = {"audio": (30, 5), "text": (10, 24), "vision": (40, 7)}


def tiny_config(**overrides) -> ModelConfig:
    """A small, fast model: width 16, one layer, two heads."""
    base = ModelConfig(hidden=16, layers=1, heads=2, dropout=0.1, expert_mult=2)
    return dataclasses.replace(base, **overrides)


def random_batch(
    shapes: dict[str, tuple[int, int]], batch: int = 4, *, variable: bool = False, seed: int = 0
) -> tuple[dict, dict]:
    """Features m -> (B, T_m, d_m) zero-padded at the end, lengths m -> (B,)."""
    g = torch.Generator().manual_seed(seed)
    feats, lens = {}, {}
    for m, (T, d) in shapes.items():
        if variable:
            n = torch.randint(max(3, T // 3), T + 1, (batch,), generator=g)
            n[0] = T  # one full-length row, the rest shorter
        else:
            n = torch.full((batch,), T)
        valid = (torch.arange(T)[None, :] < n[:, None]).float()[..., None]  # (B, T, 1)
        feats[m] = torch.randn(batch, T, d, generator=g) * valid
        lens[m] = n
    return feats, lens


def random_labels(task: str, batch: int = 4, classes: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if task == "regression":
        return torch.empty(batch).uniform_(-3, 3, generator=g)
    return torch.randint(0, classes, (batch,), generator=g)


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture
def make_batch():
    return random_batch


@pytest.fixture
def make_labels():
    return random_labels


@pytest.fixture
def shapes():
    return {"aligned": ALIGNED, "unaligned": UNALIGNED}
