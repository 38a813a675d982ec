"""MIntRec's folder layout: `train.tsv`, `dev.tsv`, `test.tsv` (header `season episode clip
text label`, key `S05_E16_329`), `video_feats.pkl` (key -> list of (1, 256) arrays, or an
array), `audio_feats.pkl` (key -> (T, 768)) and, optionally, `text_feats.pkl` (key -> (L, 768)).

Without `text_feats.pkl` the text features are hashed word embeddings of the tsv text (see
`hashed_text`), so the published tsv files work as they are. Given a BERT folder (`tokenizer`,
with `model.text_encoder: bert`) the tsv text is also tokenized into `text_bert` (N, 3, 30)
ids by that folder's own tokenizer (`atsuko.data.bert_ids`). Sequences are padded at the end to
the longest one found. A synthetic folder adds `planted.json` (the ground truth).
Tested in `tests/atsuko/data/test_data_mintrec.py`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from atsuko.data.bert_ids import bert_ids
from atsuko.data.checks import LoadLog, RawSplit, as_array, finish, make_split
from atsuko.data.dataset import Dataset
from atsuko.data.pickles import atomic_path, read_pickle, write_pickle
from atsuko.data.registry import SPLITS, DatasetSpec
from atsuko.errors import DataError

COLUMNS = ("season", "episode", "clip", "text", "label")
PLANTED = "planted.json"
TEXT_DIM = 768  # BERT-base width, what text_feats.pkl holds
TEXT_MAX_LEN = 30  # MIntRec's text length
HASH_SEED = 20221010  # fixed: the hashed text features never change between runs or machines
TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*|[^\sa-z0-9]")
LAYOUT = "a MIntRec folder holds train.tsv, dev.tsv, test.tsv, video_feats.pkl, audio_feats.pkl"

Row = tuple[str, str, str]  # key, text, label


def read_tsv(path: Path) -> list[Row]:
    """(key, text, label) per row; the header must name the MIntRec columns."""
    if not path.is_file():
        raise DataError(f"file not found: {path} ({LAYOUT})")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty file; expected a header {' '.join(COLUMNS)}")
        header = [h.strip() for h in header]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise DataError(f"{path}: header lacks column(s) {', '.join(missing)}")
        col = {c: header.index(c) for c in COLUMNS}
        rows = []
        for line, fields in enumerate(reader, start=2):
            if not fields:
                continue
            if len(fields) != len(header):
                raise DataError(
                    f"{path} line {line}: {len(fields)} fields, the header has {len(header)}"
                )
            key = "_".join(fields[col[c]].strip() for c in ("season", "episode", "clip"))
            rows.append((key, fields[col["text"]], fields[col["label"]].strip()))
    return rows


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def hashed_text(texts: list[str], *, dim: int = TEXT_DIM, max_len: int = TEXT_MAX_LEN):
    """Text features without a language model: lower-cased words (and punctuation marks), at
    most `max_len`, each mapped to a fixed N(0, 1) vector of width `dim` drawn from a generator
    seeded by blake2b(HASH_SEED, word). Deterministic on every machine; a bag-of-words stand-in
    for BERT states. Returns features (N, L, dim) float32 and lengths (N,)."""
    cache: dict[str, np.ndarray] = {}

    def vector(word: str) -> np.ndarray:
        if word not in cache:
            digest = hashlib.blake2b(f"{HASH_SEED}\0{word}".encode(), digest_size=8).digest()
            rng = np.random.default_rng(int.from_bytes(digest, "little"))
            cache[word] = rng.standard_normal(dim, dtype=np.float32)
        return cache[word]

    words = [tokens(t)[:max_len] for t in texts]
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    out = np.zeros((len(texts), max(1, int(lengths.max(initial=0))), dim), dtype=np.float32)
    for i, ws in enumerate(words):
        for j, w in enumerate(ws):
            out[i, j] = vector(w)
    return out, lengths


def _entry(value: Any, file: str, key: str) -> np.ndarray:
    """One clip's features as (T, d): a list of (1, d) arrays, or a (T, d) / (T, 1, d) array."""
    what = f"{file} entry '{key}'"
    if isinstance(value, list | tuple):
        if not value:
            return np.zeros((0, 0), dtype=np.float32)
        parts = [as_array(v, what) for v in value]
        if any(p.shape != parts[0].shape or p.ndim not in (1, 2) for p in parts):
            raise DataError(f"{what}: expected a list of (1, d) arrays of one shape")
        return np.stack([p.reshape(-1) for p in parts])  # T x (1, d) -> (T, d)
    array = as_array(value, what)
    if array.ndim == 3 and array.shape[1] == 1:
        array = array[:, 0, :]  # (T, 1, d) -> (T, d)
    if array.ndim != 2:
        raise DataError(f"{what}: expected shape (T, d), got {tuple(array.shape)}")
    return array


def _pad(
    entries: dict, keys: list[str], file: str, split_file: str
) -> tuple[np.ndarray, np.ndarray]:
    """Stack the clips of one split into (N, T_max, d) float32, zero-padded at the end."""
    missing = [k for k in keys if k not in entries]
    if missing:
        raise DataError(
            f"{file}: no entry for {len(missing)} of the {len(keys)} clips of {split_file} "
            f"(first: '{missing[0]}')"
        )
    clips = [_entry(entries[k], file, k) for k in keys]
    widths = {c.shape[1] for c in clips if len(c)}
    if len(widths) > 1:
        raise DataError(f"{file}: entries have different feature widths {sorted(widths)}")
    width = widths.pop() if widths else 1
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    out = np.zeros((len(keys), max(1, int(lengths.max(initial=0))), width), dtype=np.float32)
    for i, c in enumerate(clips):
        if len(c):
            out[i, : len(c)] = c  # casts float64 clips one at a time
    return out, lengths


def _table(folder: Path, spec: DatasetSpec, role: str, required: bool) -> dict | None:
    path = folder / spec.files[role]
    if not path.is_file():
        if required:
            raise DataError(f"file not found: {path} ({LAYOUT})")
        return None
    table = read_pickle(path)
    if not isinstance(table, dict):
        raise DataError(
            f"{path}: expected a dict of clip key -> features, got {type(table).__name__}"
        )
    return table


def read(folder: Path, spec: DatasetSpec, tokenizer: str | Path | None = None) -> Dataset:
    """Load a MIntRec folder (real or synthetic); `tokenizer`: a BERT folder that turns the
    tsv text into `text_bert` ids."""
    source = str(folder)
    rows = {s: read_tsv(folder / spec.files[s]) for s in SPLITS}
    classes = {c: i for i, c in enumerate(spec.classes or ())}
    tables = {
        "vision": _table(folder, spec, "video", True),
        "audio": _table(folder, spec, "audio", True),
        "text": _table(folder, spec, "text", False),
    }
    truth = None
    if (folder / PLANTED).is_file():
        try:
            truth = json.loads((folder / PLANTED).read_text())
        except ValueError as exc:
            raise DataError(f"{folder / PLANTED}: not valid JSON ({exc})") from None
    log = LoadLog(source)
    if tables["text"] is None:
        log.notes.append("text: hashed word embeddings of the tsv text (no text_feats.pkl)")
    files = {
        "vision": spec.files["video"],
        "audio": spec.files["audio"],
        "text": spec.files["text"],
    }
    splits = {}
    for s in SPLITS:
        keys = [k for k, _, _ in rows[s]]
        tsv = spec.files[s]
        labels = []
        for line, (_, _, label) in enumerate(rows[s], start=2):
            if label not in classes:
                raise DataError(
                    f"{folder / tsv} line {line}: unknown label '{label}'; "
                    f"expected one of: {', '.join(classes)}"
                )
            labels.append(classes[label])
        features, lengths = {}, {}
        for m in spec.modalities:
            if m == "text" and tables["text"] is None:
                features[m], lengths[m] = hashed_text([t for _, t, _ in rows[s]])
            else:
                features[m], lengths[m] = _pad(tables[m], keys, files[m], tsv)
        extras = {}
        if tokenizer is not None:
            extras["text_bert"] = bert_ids([t for _, t, _ in rows[s]], tokenizer, TEXT_MAX_LEN)
        if truth is not None:
            per = truth.get("truth", {})
            lost = [k for k in keys if k not in per]
            if lost:
                raise DataError(f"{folder / PLANTED}: no truth for clip '{lost[0]}' of {tsv}")
            extras["decider"] = np.array([per[k]["decider"] for k in keys], dtype=np.int64)
            extras["drivers"] = np.array([per[k]["drivers"] for k in keys], dtype=np.float32)
        raw = RawSplit(
            name=s,
            features=features,
            lengths=lengths,
            labels=np.array(labels, dtype=np.int64),
            ids=np.array(keys, dtype=str),
            extras=extras,
            names={"labels": f"{tsv} labels", **{m: files[m] for m in features}},
        )
        splits[s] = make_split(raw, spec, source, log)
    return finish(spec, splits, source, log, truth.get("planted") if truth else None)


def write(
    folder: Path,
    spec: DatasetSpec,
    rows: dict[str, list[tuple[str, str, str, str, str]]],
    tables: dict[str, dict[str, Any]],
    truth: dict | None = None,
) -> Path:
    """Write a MIntRec folder: `rows[split]` are (season, episode, clip, text, label) and
    `tables` maps 'video' / 'audio' / 'text' to key -> features; `truth` goes to planted.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for s in SPLITS:
        with atomic_path(folder / spec.files[s]) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write("\t".join(COLUMNS) + "\n")
            for row in rows[s]:
                f.write("\t".join(row) + "\n")
    for role, table in tables.items():
        write_pickle(table, folder / spec.files[role])
    if truth is not None:
        with atomic_path(folder / PLANTED) as tmp:
            tmp.write_text(json.dumps(truth))
    return folder
