"""Fixtures for the dataset-layer tests: small synthetic files and crafted MMSA pickles."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from atsuko.data import get_spec
from atsuko.data.synth_write import synthesize

SCALE = 0.05  # MOSI: 64 / 20 / 34 rows


@pytest.fixture(scope="session")
def mosi_aligned(tmp_path_factory) -> Path:
    return synthesize(get_spec("mosi"), tmp_path_factory.mktemp("mosi_a"), scale=SCALE, seed=0)


@pytest.fixture(scope="session")
def mosi_unaligned(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mosi_u")
    return synthesize(get_spec("mosi"), out, scale=SCALE, seed=0, aligned=False)


@pytest.fixture(scope="session")
def mintrec_synth(tmp_path_factory) -> Path:
    return synthesize(get_spec("mintrec"), tmp_path_factory.mktemp("mintrec"), scale=0.01, seed=0)


def mmsa_split(
    n: int,
    *,
    steps: dict[str, int] | None = None,
    widths: dict[str, int] | None = None,
    dtype=np.float32,
    aligned: bool = True,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A small split with the MMSA keys; MOSI's widths unless told otherwise."""
    rng = np.random.default_rng(seed)
    steps = steps or {"text": 6, "audio": 6, "vision": 6}
    widths = widths or {"text": 8, "audio": 5, "vision": 20}
    split = {
        "id": np.array([f"clip{seed}_{i}$_$0" for i in range(n)], dtype=object),
        **{m: rng.standard_normal((n, steps[m], widths[m])).astype(dtype) for m in steps},
        "regression_labels": np.round(rng.uniform(-3, 3, n) * 3) / 3,
    }
    if not aligned:
        split["audio_lengths"] = rng.integers(1, steps["audio"] + 1, n)
        split["vision_lengths"] = rng.integers(1, steps["vision"] + 1, n)
    return split


@pytest.fixture
def mmsa_file(tmp_path) -> Callable[..., Path]:
    """Write a crafted MMSA dict; `edit(obj)` may break it first."""

    def make(edit: Callable[[dict], object] | None = None, name: str = "crafted.pkl", **kw) -> Path:
        obj = {
            s: mmsa_split(n, seed=i, **kw)
            for i, (s, n) in enumerate((("train", 8), ("valid", 4), ("test", 4)))
        }
        if edit is not None:
            edit(obj)
        path = tmp_path / name
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=4)
        return path

    return make
