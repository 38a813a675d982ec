"""The pickle-free copy that `python -m atsuko.data convert` writes: one .npz, read with
`allow_pickle=False`, so loading it runs no code.

Layout: `meta` (a JSON string: dataset, source, planted truth) and per split
`SPLIT/features/M`, `SPLIT/lengths/M`, `SPLIT/labels`, `SPLIT/ids` (unicode), `SPLIT/extras/K`.
Arrays are stored exactly as loaded (float32 features, non-finite values already zeroed).
Tested in `tests/atsuko/data/test_data_loaders.py` (round trips) and
`test_data_bad_inputs.py` (files that are not such a copy).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from atsuko.data.checks import LoadLog, RawSplit, finish, make_split
from atsuko.data.dataset import Dataset
from atsuko.data.pickles import atomic_path
from atsuko.data.registry import SPLITS, DatasetSpec
from atsuko.errors import DataError

FORMAT = "atsuko-npz"
VERSION = 1


def write(dataset: Dataset, path: Path) -> Path:
    """Write `dataset` to `path` (.npz, uncompressed) atomically."""
    if path.suffix != ".npz":
        raise DataError(f"{path}: the output of convert must end in .npz")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "dataset": dataset.spec.name,
        "converted_from": dataset.source,
        "planted": dataset.planted,
        "nonfinite_replaced": dataset.nonfinite,
    }
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
    for name, split in dataset.splits.items():
        for m, x in split.features.items():
            arrays[f"{name}/features/{m}"] = x.numpy()
            arrays[f"{name}/lengths/{m}"] = split.lengths[m].numpy()
        arrays[f"{name}/labels"] = split.labels.numpy()
        arrays[f"{name}/ids"] = np.array(split.ids, dtype=str)
        for k, v in split.extras.items():
            arrays[f"{name}/extras/{k}"] = v.numpy()
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
    return path


def _open(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc.__class__.__name__}: {exc})") from None


def _meta(store: Any, path: Path) -> dict:
    if "meta" not in store.files:
        raise DataError(f"{path}: no 'meta' entry; not written by `python -m atsuko.data convert`")
    try:
        meta = json.loads(str(store["meta"]))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: 'meta' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{path}: 'meta' does not describe an {FORMAT} file")
    return meta


def read_name(path: Path) -> str | None:
    """The dataset an .npz holds, from its meta."""
    with _open(path) as store:
        return _meta(store, path).get("dataset")


def _get(store: Any, key: str, path: Path) -> np.ndarray:
    try:
        return store[key]
    except KeyError:
        raise DataError(f"{path}: missing entry '{key}'") from None
    except ValueError as exc:  # e.g. an object array: it would need pickle
        raise DataError(f"{path}: entry '{key}' cannot be read ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path}: entry '{key}' is damaged ({exc.__class__.__name__})") from None


def read(path: Path, spec: DatasetSpec) -> Dataset:
    """Load an .npz written by `write`; the same checks as every other format."""
    source = str(path)
    log = LoadLog(source)
    with _open(path) as store:
        meta = _meta(store, path)
        if meta.get("dataset") != spec.name:
            raise DataError(
                f"{path}: holds {meta.get('dataset')} data, not {spec.name}; "
                f"pass --dataset {meta.get('dataset')}"
            )
        splits = {}
        for name in SPLITS:
            prefix = f"{name}/"
            if not any(k.startswith(prefix) for k in store.files):
                raise DataError(f"{path}: split '{name}' is missing")
            extras = sorted(k for k in store.files if k.startswith(f"{prefix}extras/"))
            lengths = {m: f"{prefix}lengths/{m}" for m in spec.modalities}
            raw = RawSplit(
                name=name,
                features={m: _get(store, f"{prefix}features/{m}", path) for m in spec.modalities},
                lengths={m: _get(store, k, path) for m, k in lengths.items()},
                labels=_get(store, f"{prefix}labels", path),
                ids=_get(store, f"{prefix}ids", path),
                extras={k.rsplit("/", 1)[1]: _get(store, k, path) for k in extras},
                names={
                    "labels": f"{prefix}labels",
                    "ids": f"{prefix}ids",
                    **{m: f"{prefix}features/{m}" for m in spec.modalities},
                    **{f"{m}_lengths": k for m, k in lengths.items()},
                },
            )
            splits[name] = make_split(raw, spec, source, log)
            del raw
    if meta.get("converted_from"):
        log.notes.append(f"converted from {meta['converted_from']}")
    return finish(spec, splits, source, log, meta.get("planted"))
