"""A trainer's checkpoint on disk: stored as tensors and plain values only, so it loads with
`torch.load(weights_only=True)`, which runs no pickled code from the file."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct

# Checkpoints written before numpy's RNG state was stored as a tensor hold one uint32 array;
# these are the only classes its pickle names, allowed so that such a search still resumes.
_LEGACY_NUMPY = [_reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType]


def numpy_rng_state() -> dict[str, Any]:
    """numpy's global generator state as a tensor and numbers."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


def set_numpy_rng_state(state: dict[str, Any] | tuple) -> None:
    if isinstance(state, tuple):  # the legacy form: numpy's own tuple
        np.random.set_state(state)
        return
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["pos"], state["has_gauss"], state["gauss"]))


def load(path: str | Path | IO[bytes]) -> dict[str, Any]:
    """A saved `Trainer.state_dict`, onto the CPU."""
    with torch.serialization.safe_globals(_LEGACY_NUMPY):
        return torch.load(path, map_location="cpu", weights_only=True)
