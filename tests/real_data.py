"""Real-data test files, built at test time from `../shared/data/real/` (never copied here).

- `mosi_pickle`: a CMU-MOSI file in the MMSA layout from the real `label.csv` (real ids,
  transcripts, labels and splits). Text: hashed word vectors of `[CLS] words [SEP]` (at most
  50 tokens, as MMSA's BERT inputs) with the attention mask in `text_bert`; audio and vision:
  noise (audio with a weak label component, vision none). The aligned variant pads every
  modality to 50 steps; the unaligned one gives audio and vision per-sample lengths, most in
  the upper half of the padded length, a few (3%) of 0 to 3 steps. In both, rows 0-2 of each
  split have 0, 1 and 2 valid steps (text mask; audio and vision lengths when unaligned).
- `mintrec_folder`: the real MIntRec tsv files with generated `video_feats.pkl` (key -> list of
  (1, d) frames) and `audio_feats.pkl` (key -> (T, d)), some clips of a single frame and a few
  empty; the text is the loader's own hashed words (real one- and two-word utterances).

- `frozen_config`: the default configuration on a frozen BERT folder (the real-text fixtures
  of `conftest.py`: real MiniLM ids and states, see `atsuko.data.real_text`).

`REAL` is where the real pieces live; `missing()` says why a test must skip without them.
"""

from __future__ import annotations

import csv
import hashlib
import pickle
import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
MOSI_CSV = REAL / "mosi" / "label.csv"
MINTREC_TSV = ("train.tsv", "dev.tsv", "test.tsv")
MODES = {"train": ("train",), "valid": ("valid", "dev"), "test": ("test",)}
# 512 wide: a ridge regression on the mean word vector then reaches test Non0_acc_2 .67-.69 on
# real MOSI (128 wide: .61, too many collisions), about what a text-only run on BERT states gets
TEXT_STEPS, TEXT_WIDTH = 50, 512
ALIGNED_STEPS = 50
UNALIGNED_STEPS = {"audio": 75, "vision": 100}
WIDTHS = {"audio": 5, "vision": 20}  # MOSI's: the loader recognises the dataset by them
SHORT_SHARE = 0.03
HASH_SEED = 20240612


def missing() -> str | None:
    """Why the real-data tests cannot run here (None when they can)."""
    needed = [MOSI_CSV, *(REAL / "mintrec" / name for name in MINTREC_TSV)]
    absent = [str(p) for p in needed if not p.is_file()]
    if absent:
        return f"real benchmark pieces not found ({', '.join(absent)}): ../shared/data/real absent"
    return None


def _word_vector(word: str, width: int) -> np.ndarray:
    digest = hashlib.blake2b(f"{HASH_SEED}\0{word}".encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little")).standard_normal(
        width, dtype=np.float32
    )


def _text(texts: list[str], short: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Hashed `[CLS] words [SEP]` vectors (N, 50, 512) and `text_bert` (N, 3, 50)."""
    n = len(texts)
    feats = np.zeros((n, TEXT_STEPS, TEXT_WIDTH), dtype=np.float32)
    bert = np.zeros((n, 3, TEXT_STEPS), dtype=np.float32)
    cache: dict[str, np.ndarray] = {}
    for i, text in enumerate(texts):
        tokens = ["[CLS]", *text.lower().split()[: TEXT_STEPS - 2], "[SEP]"]
        tokens = tokens[: short.get(i, len(tokens))]
        for j, token in enumerate(tokens):
            if token not in cache:
                cache[token] = _word_vector(token, TEXT_WIDTH)
            feats[i, j] = cache[token]
            bert[i, 0, j] = 1000 + int.from_bytes(token.encode()[:2].ljust(2, b"\0"), "little")
        bert[i, 1, : len(tokens)] = 1.0  # attention mask: the valid length
    return feats, bert


def _noise(
    n: int, steps: int, width: int, lengths: np.ndarray, labels: np.ndarray, weight: float, rng
) -> np.ndarray:
    x = rng.standard_normal((n, steps, width), dtype=np.float32)
    x[:, :, 0] += weight * labels[:, None] / 3.0  # weak label component (0: none)
    x[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0  # padding at the end
    return x


def mosi_rows() -> dict[str, list[dict[str, str]]]:
    with open(MOSI_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {split: [r for r in rows if r["mode"] in modes] for split, modes in MODES.items()}


def mosi_pickle(out: Path, *, aligned: bool, seed: int = 0, limit: int | None = None) -> Path:
    """Write a real-MOSI MMSA pickle under `out` (aligned_50.pkl or unaligned_50.pkl); `limit`
    keeps the first rows of each split (for fast searches)."""
    rng = np.random.default_rng(seed)
    obj = {}
    for split, rows in mosi_rows().items():
        rows = rows[:limit]
        n = len(rows)
        labels = np.array([float(r["label"]) for r in rows], dtype=np.float32)
        short = {0: 0, 1: 1, 2: 2} if aligned else {}
        text, bert = _text([r["text"] for r in rows], short)
        data = {
            "id": np.array(
                [r["id"].rsplit("_", 1)[0] + "$_$" + r["id"].rsplit("_", 1)[1] for r in rows],
                dtype=object,
            ),  # fmt: skip
            "raw_text": np.array([r["text"] for r in rows], dtype=object),
            "text": text,
            "text_bert": bert,
            "regression_labels": labels,
        }
        for m, weight in (("audio", 0.05), ("vision", 0.0)):
            steps = ALIGNED_STEPS if aligned else UNALIGNED_STEPS[m]
            if aligned:
                lengths = np.full(n, steps, dtype=np.int64)
            else:
                lengths = rng.integers(steps // 2, steps + 1, size=n)
                few = np.flatnonzero(rng.random(n) < SHORT_SHARE)
                lengths[few] = rng.integers(0, 4, size=len(few))
                lengths[:3] = (0, 1, 2)
                lengths[3] = steps
                data[f"{m}_lengths"] = lengths
            data[m] = _noise(n, steps, WIDTHS[m], lengths, labels, weight, rng)
        obj[split] = data
    path = Path(out) / ("aligned_50.pkl" if aligned else "unaligned_50.pkl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


def mintrec_folder(out: Path, *, seed: int = 0) -> Path:
    """Copy the real MIntRec tsv files into `out` and write feature pickles for every clip."""
    from atsuko.data.mintrec import read_tsv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    video, audio = {}, {}
    for name in MINTREC_TSV:
        shutil.copy(REAL / "mintrec" / name, out / name)
        for key, _, _ in read_tsv(out / name):
            draw = rng.random()
            frames = 1 if draw < 0.05 else 0 if draw < 0.07 else int(rng.integers(2, 24))
            video[key] = [rng.standard_normal((1, 16)).astype(np.float32) for _ in range(frames)]
            steps = 1 if draw < 0.05 else 0 if draw < 0.06 else int(rng.integers(2, 32))
            audio[key] = rng.standard_normal((steps, 12)).astype(np.float32)
    for file, table in (("video_feats.pkl", video), ("audio_feats.pkl", audio)):
        with open(out / file, "wb") as f:
            pickle.dump(table, f, protocol=4)
    return out


def subset(dataset, rows: int, seed: int = 0):
    """The dataset with at most `rows` rows per split: its shortest rows first (every row
    with a modality under 8 steps), then random others. For fast many-config tests."""
    import torch

    from atsuko.data import Split

    splits = {}
    for name, split in dataset.splits.items():
        shortest = torch.stack(list(split.lengths.values())).min(0).values  # (N,)
        order = torch.argsort(shortest, stable=True)
        short = order[shortest[order] < 8]
        rest = order[shortest[order] >= 8]
        rest = rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(seed))]
        index = torch.cat([short, rest])[:rows].sort().values

        def pick(d, index=index):
            return {k: v.index_select(0, index) for k, v in d.items()}

        splits[name] = Split(
            features=pick(split.features),
            lengths=pick(split.lengths),
            labels=split.labels.index_select(0, index),
            ids=[split.ids[i] for i in index.tolist()],
            extras=pick(split.extras),
        )
    import dataclasses

    return dataclasses.replace(dataset, splits=splits)


def frozen_config(dataset: str, path: Path, model: Path, cache: Path, **overrides):
    """The default configuration on the frozen encoder `model`, on the CPU."""
    from atsuko import config as cfg

    sets = {
        "data.path": str(path),
        "data.cache_dir": str(cache),
        "model.text_encoder": "bert",
        "model.bert_freeze": True,
        "model.bert_path": str(model),
        "train.device": "cpu",
        **overrides,
    }
    return cfg.resolve(overrides=sets, dataset=dataset)
