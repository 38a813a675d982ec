"""In-memory datasets: whole splits as tensors, batches drawn by index (no DataLoader).

Legend: B batch, N rows of a split, T_m padded steps of modality m, d_m its width.
Tested in `tests/atsuko/data/test_data_batching.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from atsuko.data.registry import DatasetSpec


def _move(tensors: dict[str, Tensor], device: torch.device | str) -> dict[str, Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in tensors.items()}


@dataclass
class Batch:
    features: dict[str, Tensor]  # m -> (B, T_m, d_m) float32
    lengths: dict[str, Tensor]  # m -> (B,) int64 valid steps (padding at the end)
    labels: Tensor  # (B,) float32 (regression) | int64 (classification)
    index: Tensor  # (B,) int64 rows of the split
    extras: dict[str, Tensor] = field(default_factory=dict)  # e.g. 'text_bert' (B, 3, L) int64

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            features=_move(self.features, device),
            lengths=_move(self.lengths, device),
            labels=self.labels.to(device, non_blocking=True),
            index=self.index.to(device, non_blocking=True),
            extras=_move(self.extras, device),
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Split:
    features: dict[str, Tensor]  # m -> (N, T_m, d_m) float32
    lengths: dict[str, Tensor]  # m -> (N,) int64, 1 <= length <= T_m
    labels: Tensor  # (N,)
    ids: list[str]
    extras: dict[str, Tensor] = field(default_factory=dict)  # name -> (N, ...)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, index: Tensor) -> Batch:
        """The rows `index` (int64, on the split's device or CPU) as a Batch."""
        index = index.to(self.labels.device)
        pick = lambda d: {k: v.index_select(0, index) for k, v in d.items()}  # noqa: E731
        return Batch(
            features=pick(self.features),
            lengths=pick(self.lengths),
            labels=self.labels.index_select(0, index),
            index=index,
            extras=pick(self.extras),
        )


@dataclass
class Dataset:
    spec: DatasetSpec
    splits: dict[str, Split]  # 'train', 'valid', 'test'
    source: str  # the file or folder it came from
    planted: dict | None = None  # synthetic ground truth; None for real data
    nonfinite: dict[str, int] = field(default_factory=dict)  # 'split/key' -> values set to 0
    notes: list[str] = field(default_factory=list)  # warnings and remarks made while loading
    # the frozen encoder (folder, layers) whose states replaced 'text' (atsuko.data.bert_states)
    text_states: str | None = None
    # (fold, folds) when train and valid are cross-validation folds (atsuko.data.folds)
    fold: tuple[int, int] | None = None

    @property
    def dims(self) -> dict[str, int]:
        """m -> d_m, read from the arrays."""
        return {m: int(x.shape[-1]) for m, x in self.splits["train"].features.items()}


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[Batch]:
    """Batches of `split` by index; shuffled with `generator` when `shuffle`."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(split)
    if shuffle:
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield split.take(order[start : start + batch_size])
