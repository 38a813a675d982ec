"""Validation shared by every loader: one path from raw arrays to a checked `Split`.

Each format reader (MMSA pickle, MIntRec folder, .npz) hands over a `RawSplit` of numpy
arrays; `make_split` checks ranks, row counts and lengths, casts features to float32 once,
zeroes non-finite values (counted), and wraps the arrays as tensors without copying them.
Tested in `tests/atsuko/data/test_data_bad_inputs.py`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from atsuko.data.dataset import Dataset, Split
from atsuko.data.registry import DatasetSpec
from atsuko.errors import DataError

CHUNK = 1 << 26  # elements per slice when scanning big arrays (256 MiB of float32)


class DataWarning(UserWarning):
    """Something in a feature file is odd but usable (labels out of range, values replaced)."""


@dataclass
class LoadLog:
    """What loading changed or noticed; `emit` warns once at the end."""

    source: str
    nonfinite: dict[str, int] = field(default_factory=dict)  # 'split/key' -> count
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def emit(self) -> list[str]:
        """Issue the collected warnings (one for all non-finite values); return every message."""
        messages = list(self.warnings)
        total = sum(self.nonfinite.values())
        if total:
            where = ", ".join(f"{k}: {n}" for k, n in self.nonfinite.items())
            messages.insert(
                0, f"{self.source}: replaced {total} non-finite values with 0 ({where})"
            )
        for message in messages:
            warnings.warn(message, DataWarning, stacklevel=3)
        return messages + self.notes


@dataclass
class RawSplit:
    """One split as the format reader found it; `names` say what each slot was called there."""

    name: str
    features: dict[str, Any]  # m -> (N, T, d) array
    lengths: dict[str, Any]  # m -> (N,) array; absent: every step is valid
    labels: Any  # (N,) or (N, 1)
    ids: Any = None  # (N,) strings; absent: row numbers
    extras: dict[str, Any] = field(default_factory=dict)  # name -> (N, ...)
    names: dict[str, str] = field(default_factory=dict)  # slot -> key/file name in the source

    def label(self, slot: str) -> str:
        return f"'{self.names.get(slot, slot)}'"


def as_array(value: Any, what: str) -> np.ndarray:
    """A numeric ndarray from `value` (lists are accepted); anything else is a DataError."""
    if isinstance(value, torch.Tensor):
        value = value.numpy()
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception as exc:  # ragged lists and the like
            raise DataError(f"{what}: not an array ({exc.__class__.__name__}: {exc})") from None
    if value.dtype.kind not in "biuf":
        raise DataError(f"{what}: expected numbers, got an array of dtype {value.dtype}")
    return value


def to_float32(array: np.ndarray) -> np.ndarray:
    """float32, native byte order, writable; a copy only when the input is not that already."""
    if array.dtype != np.float32 or not array.flags.writeable:
        return array.astype(np.float32)
    return array


def _all_finite(flat: np.ndarray) -> bool:
    """Fast test: a sum of squares is finite iff every value is (barring overflow)."""
    for start in range(0, flat.size, CHUNK):
        part = flat[start : start + CHUNK]
        if not np.isfinite(np.dot(part, part)):
            return False
    return True


def zero_nonfinite(array: np.ndarray) -> int:
    """Set NaN and +-inf in the float32 `array` to 0, in place; return how many there were."""
    flat = array.reshape(-1) if array.flags.c_contiguous else None
    if flat is not None and _all_finite(flat):
        return 0
    count = 0
    rows = max(1, CHUNK // max(1, array[0].size)) if len(array) else 1
    for start in range(0, max(1, len(array)), rows):
        part = array[start : start + rows]
        bad = ~np.isfinite(part)
        n = int(bad.sum())
        if n:
            part[bad] = 0.0
            count += n
    return count


def _rows(array: Any) -> int | None:
    shape = getattr(array, "shape", None)
    if shape is None:
        return len(array) if hasattr(array, "__len__") else None
    return int(shape[0]) if len(shape) else None


def _check_shapes(raw: RawSplit, where: str) -> int:
    """Ranks and row counts, before anything big is converted; returns N."""
    labels = as_array(raw.labels, f"{where} {raw.label('labels')}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.reshape(-1)  # (N, 1) -> (N,)
    if labels.ndim != 1:
        raise DataError(
            f"{where} {raw.label('labels')}: expected shape (N,), got {tuple(labels.shape)}"
        )
    raw.labels = labels
    n = labels.shape[0]
    slots: dict[str, Any] = {"labels": labels}
    for m, x in raw.features.items():
        shape = getattr(x, "shape", None)
        if shape is None or len(shape) != 3:
            got = f"shape {tuple(shape)}" if shape is not None else type(x).__name__
            raise DataError(f"{where} {raw.label(m)}: expected a 3-d array (N, T, d), got {got}")
        slots[m] = x
    for m, x in raw.lengths.items():
        slots[f"{m}_lengths"] = x
    for k, x in raw.extras.items():
        slots[k] = x
    if raw.ids is not None:
        slots["ids"] = raw.ids
    for slot, x in slots.items():
        rows = _rows(x)
        if rows != n:
            raise DataError(
                f"{where}: {raw.label(slot)} has {rows} rows but {raw.label('labels')} has {n}; "
                "every key of a split must have one row per sample"
            )
    return n


def _lengths(raw: RawSplit, m: str, steps: int, n: int, where: str, log: LoadLog) -> torch.Tensor:
    if m not in raw.lengths:
        return torch.full((n,), steps, dtype=torch.int64)
    what = f"{where} {raw.label(m + '_lengths')}"
    lengths = as_array(raw.lengths[m], what)
    if lengths.ndim != 1:
        raise DataError(f"{what}: expected shape (N,), got {tuple(lengths.shape)}")
    if lengths.dtype.kind == "f":
        if not np.isfinite(lengths).all() or not np.all(lengths == np.round(lengths)):
            raise DataError(f"{what}: expected whole numbers of steps")
    lengths = lengths.astype(np.int64)
    if n and lengths.min() < 0:
        raise DataError(f"{what}: negative length {int(lengths.min())}")
    if n and lengths.max() > steps:
        raise DataError(
            f"{what}: lengths go up to {int(lengths.max())} but {raw.label(m)} is padded to "
            f"{steps} steps"
        )
    empty = int((lengths == 0).sum())
    if empty:
        lengths[lengths == 0] = 1
        log.notes.append(f"{raw.name}/{m}: {empty} samples with no valid step read as 1 step")
    return torch.from_numpy(lengths)


def _labels(raw: RawSplit, spec: DatasetSpec, where: str, log: LoadLog) -> torch.Tensor:
    labels, what = raw.labels, f"{where} {raw.label('labels')}"
    if spec.task == "classification":
        if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
            raise DataError(f"{what}: expected class indices, got fractional values")
        labels = labels.astype(np.int64)
        classes = spec.num_outputs
        if len(labels) and (labels.min() < 0 or labels.max() >= classes):
            raise DataError(
                f"{what}: class indices must be in 0..{classes - 1}, got "
                f"{int(labels.min())}..{int(labels.max())}"
            )
        return torch.from_numpy(labels)
    labels = to_float32(labels)
    if not np.isfinite(labels).all():
        bad = int((~np.isfinite(labels)).sum())
        raise DataError(f"{what}: {bad} labels are NaN or infinite")
    low, high = spec.label_range or (-np.inf, np.inf)
    outside = (labels < low - 1e-6) | (labels > high + 1e-6)
    if outside.any():
        log.warnings.append(
            f"{where}: {int(outside.sum())} labels outside {spec.name}'s range [{low:g}, {high:g}] "
            f"(min {labels.min():.4g}, max {labels.max():.4g}); kept as they are"
        )
    return torch.from_numpy(labels)


def _extra(raw: RawSplit, key: str, value: Any, where: str) -> torch.Tensor:
    what = f"{where} {raw.label(key)}"
    array = as_array(value, what)
    if key == "text_bert":
        if array.ndim != 3 or array.shape[1] != 3:
            raise DataError(f"{what}: expected shape (N, 3, L), got {tuple(array.shape)}")
        return torch.from_numpy(array.astype(np.int64))  # stored as float: ids are whole numbers
    if array.dtype.kind in "biu":
        return torch.from_numpy(array.astype(np.int64, copy=False))
    return torch.from_numpy(to_float32(array))


def make_split(raw: RawSplit, spec: DatasetSpec, source: str, log: LoadLog) -> Split:
    """Check `raw` and turn it into a Split. Feature arrays are taken out of `raw` one at a
    time, so a float64 input never exists twice in full: only one array is ever doubled."""
    where = f"{source}: split '{raw.name}':"
    for m in spec.modalities:
        if m not in raw.features:
            raise DataError(
                f"{where} no {raw.label(m)} features (expected {', '.join(spec.modalities)})"
            )
    n = _check_shapes(raw, where)
    features: dict[str, torch.Tensor] = {}
    lengths: dict[str, torch.Tensor] = {}
    for m in spec.modalities:
        array = raw.features.pop(m)
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
            array = as_array(array, f"{where} {raw.label(m)}")
        array = to_float32(array)  # the float64 original is freed once `raw` lets go of it
        bad = zero_nonfinite(array)
        if bad:
            log.nonfinite[f"{raw.name}/{raw.names.get(m, m)}"] = bad
        features[m] = torch.from_numpy(array)
        lengths[m] = _lengths(raw, m, array.shape[1], n, where, log)
        del array
    labels = _labels(raw, spec, where, log)
    extras = {k: _extra(raw, k, v, where) for k, v in raw.extras.items()}
    if raw.ids is None:
        ids = [f"{raw.name}_{i}" for i in range(n)]
    else:
        ids = [
            i.decode("utf-8", "replace") if isinstance(i, bytes) else str(i)
            for i in np.asarray(raw.ids).reshape(-1).tolist()
        ]
    return Split(features=features, lengths=lengths, labels=labels, ids=ids, extras=extras)


def finish(
    spec: DatasetSpec, splits: dict[str, Split], source: str, log: LoadLog, planted: dict | None
) -> Dataset:
    """Cross-split checks (one width per modality), then the warnings, then the Dataset."""
    first = next(iter(splits))
    for m in spec.modalities:
        widths = {name: int(s.features[m].shape[-1]) for name, s in splits.items()}
        if len(set(widths.values())) > 1:
            shown = ", ".join(f"{n} {w}" for n, w in widths.items())
            raise DataError(
                f"{source}: '{m}' features differ in width between splits ({shown}); "
                f"expected the width of {first} everywhere"
            )
    notes = log.emit()
    return Dataset(
        spec=spec,
        splits=splits,
        source=source,
        planted=planted,
        nonfinite=dict(log.nonfinite),
        notes=notes,
    )
