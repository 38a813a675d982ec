"""MMSA feature pickles (MOSI, MOSEI, SIMS, SIMSv2): `{'train'|'valid'|'test': {key: array}}`.

Aligned files carry no `*_lengths` keys (every step is valid); unaligned ones carry
`audio_lengths` and `vision_lengths`. The text length comes from `text_bert`'s attention mask
when the file has one, else every step counts. Synthetic files add a top-level `planted` dict
and per split `decider` (and `drivers`) arrays: the ground truth of what was planted.
Tested in `tests/atsuko/data/test_data_loaders.py` and `test_data_bad_inputs.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from atsuko.data.checks import LoadLog, RawSplit, finish, make_split
from atsuko.data.dataset import Dataset
from atsuko.data.pickles import write_pickle
from atsuko.data.registry import SPLITS, DatasetSpec, dataset_names, get_spec
from atsuko.errors import DataError

LABEL_KEY = "regression_labels"
LENGTH_KEYS = {"audio": "audio_lengths", "vision": "vision_lengths"}
EXTRA_KEYS = ("text_bert", "regression_labels_T", "regression_labels_A", "regression_labels_V")
TRUTH_KEYS = ("decider", "drivers")  # synthetic files only
KNOWN_TOP = {"train", "valid", "test", "planted"}


def _top(obj: Any, source: str) -> dict:
    if not isinstance(obj, dict):
        raise DataError(
            f"{source}: expected a dict of splits (train, valid, test), got {type(obj).__name__}"
        )
    for split in SPLITS:
        if split not in obj:
            found = ", ".join(map(str, obj)) or "nothing"
            raise DataError(f"{source}: split '{split}' is missing (found: {found})")
        if not isinstance(obj[split], dict):
            raise DataError(
                f"{source}: split '{split}' should be a dict of arrays, "
                f"got {type(obj[split]).__name__}"
            )
    return obj


def _raw_split(name: str, split: dict, spec: DatasetSpec, source: str) -> RawSplit:
    """Move the arrays out of the unpickled dict (so no second reference keeps them alive)."""
    for key in (*spec.modalities, LABEL_KEY):
        if key not in split:
            keys = ", ".join(sorted(map(str, split)))
            raise DataError(f"{source}: split '{name}' has no key '{key}' (keys: {keys})")
    raw = RawSplit(
        name=name,
        features={m: split.pop(m) for m in spec.modalities},
        lengths={m: split.pop(k) for m, k in LENGTH_KEYS.items() if k in split},
        labels=split.pop(LABEL_KEY),
        ids=split.pop("id", None),
        extras={k: split.pop(k) for k in (*EXTRA_KEYS, *TRUTH_KEYS) if k in split},
        names={
            "labels": LABEL_KEY,
            "ids": "id",
            **{f"{m}_lengths": k for m, k in LENGTH_KEYS.items()},
        },
    )
    bert = raw.extras.get("text_bert")
    if "text" in raw.features and bert is not None:
        mask = np.asarray(bert)
        if mask.ndim != 3 or mask.shape[1] != 3:
            raise DataError(
                f"{source}: split '{name}' 'text_bert': expected shape (N, 3, L), "
                f"got {tuple(mask.shape)}"
            )
        raw.lengths["text"] = np.rint(mask[:, 1, :].sum(axis=1)).astype(np.int64)
        raw.names["text_lengths"] = "text_bert[:, 1] (attention mask)"
    return raw


def infer_name(obj: Any) -> str | None:
    """Which MMSA dataset an unpickled file holds: its `planted` tag, else its feature widths."""
    if isinstance(obj, dict):
        planted = obj.get("planted")
        if isinstance(planted, dict) and planted.get("dataset"):
            return str(planted["dataset"])
        train = obj.get("train")
        if isinstance(train, dict):
            widths = {m: getattr(train.get(m), "shape", (0,))[-1] for m in ("audio", "vision")}
            matches = []
            for name in dataset_names():
                spec = get_spec(name)
                if spec.format == "mmsa" and any(
                    all(shape[m][1] == widths[m] for m in widths) for shape in spec.shapes.values()
                ):
                    matches.append(name)
            if len(matches) == 1:
                return matches[0]
    return None


def from_pickle(obj: Any, spec: DatasetSpec, source: str) -> Dataset:
    """Build a checked Dataset from an unpickled MMSA dict (its arrays are moved out of it)."""
    obj = _top(obj, source)
    log = LoadLog(source)
    planted = obj.get("planted")
    if isinstance(planted, dict) and planted.get("dataset") not in (None, spec.name):
        raise DataError(
            f"{source}: holds synthetic {planted['dataset']} data, not {spec.name}; "
            f"pass --dataset {planted['dataset']}"
        )
    ignored = sorted(str(k) for k in obj if k not in KNOWN_TOP)
    if ignored:
        log.notes.append(f"ignored top-level keys: {', '.join(ignored)}")
    splits = {}
    for name in SPLITS:
        raw = _raw_split(name, obj[name], spec, source)
        splits[name] = make_split(raw, spec, source, log)
        del raw
    return finish(spec, splits, source, log, planted if isinstance(planted, dict) else None)


def write(path: Path, splits: dict[str, dict[str, np.ndarray]], planted: dict | None) -> Path:
    """Write an MMSA pickle: `splits[name]` holds the real keys (and the synthetic truth)."""
    obj: dict[str, Any] = {name: splits[name] for name in SPLITS}
    if planted is not None:
        obj["planted"] = planted
    write_pickle(obj, path)
    return path
