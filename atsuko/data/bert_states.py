"""Frozen-encoder text features (`model.bert_freeze: true`): the BERT folder's token states
(the mean of its last `model.bert_layers` layers) of each split's `text_bert` ids replace the
`text` features, so training (and a search) costs what precomputed features cost.

States are computed once per (data, encoder) and cached on disk under `bert-states/` in
`data.cache_dir` (default: the per-user `user_temp_dir('cache')`), one file named by the sha256
of the data's text source (the MMSA file; MIntRec's tsv files) and of the model folder's files
(weights, config, tokenizer) and by the layers averaged (`model.bert_layers`): a change of any
is a new file, never a silent reuse. The dataset records the encoder it was encoded with
(`Dataset.text_states`: folder and layers), so encoding an encoded dataset is a no-op.
Tested in `tests/atsuko/data/test_bert_states.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import torch

from atsuko.config import Config, user_temp_dir
from atsuko.data.dataset import Dataset, Split
from atsuko.errors import DataError

BATCH = 64
CHUNK = 1 << 20


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                digest.update(block)
    return digest.hexdigest()


def text_source(dataset: Dataset) -> list[Path]:
    """The files the text ids come from: the MMSA file, or a MIntRec folder's tsv files."""
    source = Path(dataset.source)
    if source.is_dir():
        return [source / dataset.spec.files[s] for s in ("train", "valid", "test")]
    if not source.is_file():
        raise DataError(f"{source}: not found; frozen text states are keyed by the data file")
    return [source]


def model_files(folder: str | Path) -> list[Path]:
    """The model folder's own files (weights, config, tokenizer), subfolders aside."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file())


def cache_path(config: Config, dataset: Dataset) -> Path:
    cache = config.data.cache_dir
    root = Path(cache).expanduser() if cache else user_temp_dir("cache")
    data = _sha256(text_source(dataset))[:20]
    model = _sha256(model_files(config.model.bert_path))[:20]
    layers = config.model.bert_layers
    return root / "bert-states" / f"{dataset.spec.name}-data{data}-model{model}-last{layers}.pt"


@torch.no_grad()
def encode(split: Split, encoder, device, log: Callable[[str], None] | None, name: str):
    """(N, L, H) float32 states on the CPU (zero on padding) and (N,) lengths of one split's
    ids, encoded on `device` in batches."""
    if "text_bert" not in split.extras:
        raise DataError(
            "model.bert_freeze needs the 'text_bert' token ids; this feature file has none"
        )
    ids = split.extras["text_bert"]
    states, lengths = [], []
    start = last = time.perf_counter()
    for i in range(0, len(ids), BATCH):
        hidden, n = encoder(ids[i : i + BATCH].to(device))
        mask = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < n[:, None]
        states.append((hidden.float() * mask[..., None]).cpu())
        lengths.append(n.cpu())
        if log is not None and (time.perf_counter() - last > 10 or i + BATCH >= len(ids)):
            last = time.perf_counter()
            done = min(i + BATCH, len(ids))
            log(f"  {name}: {done}/{len(ids)} texts encoded ({last - start:.0f} s)")
    return torch.cat(states), torch.cat(lengths)


def _compute(config: Config, dataset: Dataset, log) -> dict[str, dict[str, torch.Tensor]]:
    from atsuko.device import pick_device
    from atsuko.model.bert import BertTextEncoder

    device = pick_device(config.train.device)
    encoder = BertTextEncoder(config.model.bert_path, config.model.bert_layers)
    encoder = encoder.train(False).to(device)  # inference mode: no dropout
    if log is not None:
        rows = sum(len(s) for s in dataset.splits.values())
        log(
            f"encoding {rows} texts with the frozen encoder {config.model.bert_path} "
            f"(mean of the last {config.model.bert_layers} layers; once)"
        )
    out = {}
    for name, split in dataset.splits.items():
        states, lengths = encode(split, encoder, device, log, name)
        out[name] = {"text": states, "lengths": lengths.clamp(min=1)}
    return out


def _read(path: Path, dataset: Dataset) -> dict | None:
    try:
        table = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a torn or foreign file: recompute
        return None
    ok = isinstance(table, dict) and all(
        name in table and len(table[name]["text"]) == len(split)
        for name, split in dataset.splits.items()
    )
    return table if ok else None


def _write(table: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        torch.save(table, tmp)
        os.replace(tmp, path)  # the whole file appears at once
    finally:
        tmp.unlink(missing_ok=True)


def frozen_states(config: Config, dataset: Dataset, log=print) -> dict[str, dict]:
    """split -> {'text': (N, L, H), 'lengths': (N,)}, from the cache or computed (and cached)."""
    path = cache_path(config, dataset)
    table = _read(path, dataset) if path.is_file() else None
    if table is None:
        table = _compute(config, dataset, log)
        try:
            _write(table, path)
        except OSError as exc:
            raise DataError(
                f"cannot write frozen text states under {path.parent} "
                f"({exc.strerror or exc}); set data.cache_dir"
            ) from None
    elif log is not None:
        log(f"frozen text states from the cache: {path}")
    return table


def with_frozen_states(config: Config, dataset: Dataset, log=print) -> Dataset:
    """`dataset` with the frozen encoder's states as its text features (a no-op when it
    already has this encoder's)."""
    encoder = f"{Path(config.model.bert_path).resolve()} (last {config.model.bert_layers} layers)"
    if dataset.text_states == encoder:
        return dataset
    table = frozen_states(config, dataset, log)
    splits = {}
    for name, split in dataset.splits.items():
        features = {**split.features, "text": table[name]["text"]}
        lengths = {**split.lengths, "text": table[name]["lengths"]}
        splits[name] = dataclasses.replace(split, features=features, lengths=lengths)
    return dataclasses.replace(dataset, splits=splits, text_states=encoder)
