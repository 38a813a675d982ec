"""Cross-validation folds: the train and valid splits pooled and cut into `data.folds` folds,
fold `data.fold` the validation split and the others the training split; test untouched.

A small validation split ranks configurations by its own sampling noise (real MOSI's holds 229
utterances from 10 videos); K folds validate every model on a K-th of train and valid together
and pair the comparison fold by fold. Utterances of one video stay in one fold (MMSA's
ids are `video$_$clip`; the benchmark's own splits keep videos apart); other ids (MIntRec's
`season_episode_clip`, whose own splits are random over clips) are one group each. The groups
are shuffled with a fixed generator, independent of the training seed, and each, largest
first, goes to the fold with the fewest rows so far: even folds, the same rows for every
configuration and seed.
Tested in `tests/atsuko/data/test_folds.py`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from atsuko.config import DataConfig
from atsuko.data.dataset import Dataset, Split
from atsuko.errors import DataError

FOLD_SEED = 20261205  # the fold assignment's generator: fixed, so folds never move
VIDEO_SEPARATOR = "$_$"  # MMSA ids: video$_$clip


def group_of(utterance_id: str) -> str:
    """The group an utterance belongs to: its video for MMSA ids, else the utterance."""
    return utterance_id.split(VIDEO_SEPARATOR, 1)[0]


def assign(ids: list[str], folds: int) -> np.ndarray:
    """Each row's fold (0..folds-1): whole groups, shuffled, each to the emptiest fold."""
    groups: dict[str, list[int]] = {}
    for row, utterance_id in enumerate(ids):
        groups.setdefault(group_of(utterance_id), []).append(row)
    if len(groups) < folds:
        raise DataError(
            f"data.folds {folds}: the train and valid splits hold only {len(groups)} "
            "videos (utterances of a video stay in one fold); use fewer folds"
        )
    names = sorted(groups)
    shuffled = [names[i] for i in np.random.default_rng(FOLD_SEED).permutation(len(names))]
    fold_of, sizes = np.empty(len(ids), dtype=np.int64), np.zeros(folds, dtype=np.int64)
    for name in sorted(shuffled, key=lambda g: -len(groups[g])):  # largest first: even folds
        rows = groups[name]
        target = int(np.argmin(sizes))
        fold_of[rows] = target
        sizes[target] += len(rows)
    return fold_of


def _cat(a: Tensor, b: Tensor) -> Tensor:
    """Rows of `a` then `b`, zero-padded at the end of any shorter dimension (padded steps)."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def padded(t: Tensor) -> Tensor:
        if list(t.shape[1:]) == shape:
            return t
        out = t.new_zeros((t.shape[0], *shape))
        out[(slice(None), *(slice(0, n) for n in t.shape[1:]))] = t
        return out

    return torch.cat([padded(a), padded(b)])


def pooled(a: Split, b: Split) -> Split:
    """The rows of `a` then `b` as one split."""
    both = lambda x, y: {k: _cat(x[k], y[k]) for k in x}  # noqa: E731
    return Split(
        features=both(a.features, b.features),
        lengths=both(a.lengths, b.lengths),
        labels=torch.cat([a.labels, b.labels]),
        ids=[*a.ids, *b.ids],
        extras=both(a.extras, b.extras),
    )


def rows(split: Split, index: np.ndarray) -> Split:
    """The rows `index` of `split` (`Split.take`, kept as a split with its ids)."""
    picked = split.take(torch.as_tensor(index, dtype=torch.int64))
    return Split(
        features=picked.features,
        lengths=picked.lengths,
        labels=picked.labels,
        ids=[split.ids[i] for i in index],
        extras=picked.extras,
    )


def with_fold(data: DataConfig, dataset: Dataset) -> Dataset:
    """`dataset` with fold `data.fold` of `data.folds` as its valid split and the other folds
    as its train split (unchanged when `data.folds` is 0)."""
    wanted = (data.fold, data.folds) if data.folds else None
    if dataset.fold == wanted:
        return dataset
    if dataset.fold is not None:  # its own splits are gone: folds of folds would be wrong
        raise ValueError(f"dataset already cut into fold {dataset.fold}, asked for {wanted}")
    both = pooled(dataset.splits["train"], dataset.splits["valid"])
    fold_of = assign(both.ids, data.folds)
    splits = {
        **dataset.splits,
        "train": rows(both, np.flatnonzero(fold_of != data.fold)),
        "valid": rows(both, np.flatnonzero(fold_of == data.fold)),
    }
    return dataclasses.replace(dataset, splits=splits, fold=wanted)
