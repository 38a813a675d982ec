"""MIntRec folders: the real tsv files with small crafted feature pickles, and bad folders."""

from __future__ import annotations

import pickle
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from atsuko.data import get_spec, load
from atsuko.data.mintrec import TEXT_MAX_LEN, hashed_text, read_tsv, tokens
from atsuko.errors import DataError

TSV = ("train.tsv", "dev.tsv", "test.tsv")


def craft_folder(folder: Path, tsv_from: Path, *, text_feats: bool = False) -> dict[str, list]:
    """Copy the tsv files and write small video/audio pickles (and text) for every clip."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = {}
    for name in TSV:
        shutil.copy(tsv_from / name, folder / name)
        keys[name] = [k for k, _, _ in read_tsv(folder / name)]
    rng = np.random.default_rng(0)
    video, audio, text = {}, {}, {}
    for i, key in enumerate(k for ks in keys.values() for k in ks):
        frames = int(rng.integers(1, 5))
        video[key] = [rng.standard_normal((1, 16)).astype(np.float32) for _ in range(frames)]
        audio[key] = rng.standard_normal((int(rng.integers(2, 7)), 12))  # float64, as some are
        text[key] = rng.standard_normal((int(rng.integers(1, 4)), 8)).astype(np.float32)
        if i == 0:
            audio[key][0, 0] = np.nan
    for file, table in (("video_feats.pkl", video), ("audio_feats.pkl", audio)):
        (folder / file).write_bytes(pickle.dumps(table))
    if text_feats:
        (folder / "text_feats.pkl").write_bytes(pickle.dumps(text))
    return keys


@pytest.fixture(scope="module")
def real_folder(real_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mintrec_real")
    craft_folder(folder, real_data / "mintrec")
    return folder


def test_real_tsv_files_load(real_folder, real_data):
    with pytest.warns(UserWarning, match="replaced 1 non-finite"):
        dataset = load(real_folder)  # a folder: MIntRec
    spec = get_spec("mintrec")
    assert {k: len(s) for k, s in dataset.splits.items()} == {
        "train": 1334,
        "valid": 445,
        "test": 445,
    }
    assert dataset.dims == {"text": 768, "audio": 12, "vision": 16}  # widths from the arrays
    assert dataset.planted is None and dataset.nonfinite == {"train/audio_feats.pkl": 1}
    rows = read_tsv(real_data / "mintrec" / "train.tsv")
    counts = Counter(label for _, _, label in rows)
    train = dataset.splits["train"]
    assert train.labels.dtype == torch.int64
    assert torch.bincount(train.labels, minlength=20).tolist() == [counts[c] for c in spec.classes]
    assert train.ids[0] == rows[0][0] == "S05_E16_329"
    assert int(train.lengths["vision"].max()) == train.features["vision"].shape[1] <= 4
    assert int(train.lengths["text"].max()) <= TEXT_MAX_LEN
    assert any("hashed word embeddings" in n for n in dataset.notes)


def test_hashed_text_is_deterministic_and_per_word():
    feats, lengths = hashed_text(["Oh, hello there!", "hello again", ""])
    assert lengths.tolist() == [5, 2, 0] and feats.shape == (3, 5, 768)
    assert tokens("Oh, hello there!") == ["oh", ",", "hello", "there", "!"]
    np.testing.assert_array_equal(feats[0, 2], feats[1, 0])  # the same word, the same vector
    assert not np.allclose(feats[0, 0], feats[0, 2])
    again, _ = hashed_text(["Oh, hello there!"])
    np.testing.assert_array_equal(again[0], feats[0])
    long, n = hashed_text(["word " * 50])
    assert n.tolist() == [TEXT_MAX_LEN] and long.shape[1] == TEXT_MAX_LEN
    assert float(np.abs(feats[2]).max()) == 0.0


def test_text_feats_pickle_is_used_when_present(real_data, tmp_path):
    craft_folder(tmp_path, real_data / "mintrec", text_feats=True)
    with pytest.warns(UserWarning):
        dataset = load(tmp_path, "mintrec")
    assert dataset.dims["text"] == 8 and not any("hashed" in n for n in dataset.notes)


def _tiny_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    header = "season\tepisode\tclip\ttext\tlabel\n"
    for i, name in enumerate(TSV):
        (folder / name).write_text(header + f"S01\tE01\t{i}\thi there.\tGreet\n")
    keys = [f"S01_E01_{i}" for i in range(3)]
    (folder / "video_feats.pkl").write_bytes(pickle.dumps({k: np.ones((2, 1, 4)) for k in keys}))
    (folder / "audio_feats.pkl").write_bytes(pickle.dumps({k: np.ones((3, 6)) for k in keys}))


def test_tiny_folder_loads(tmp_path):
    _tiny_folder(tmp_path)
    dataset = load(tmp_path, "mintrec")
    assert dataset.splits["test"].labels.tolist() == [18]  # Greet
    assert dataset.dims == {"text": 768, "audio": 6, "vision": 4}


def test_missing_feature_pickle(tmp_path):
    _tiny_folder(tmp_path)
    (tmp_path / "video_feats.pkl").unlink()
    with pytest.raises(DataError, match="video_feats.pkl"):
        load(tmp_path, "mintrec")


def test_missing_clip_in_a_pickle(tmp_path):
    _tiny_folder(tmp_path)
    (tmp_path / "audio_feats.pkl").write_bytes(pickle.dumps({"S01_E01_0": np.ones((3, 6))}))
    with pytest.raises(
        DataError, match="audio_feats.pkl: no entry for 1 of the 1 clips of dev.tsv"
    ):
        load(tmp_path, "mintrec")


def test_unknown_label(tmp_path):
    _tiny_folder(tmp_path)
    (tmp_path / "dev.tsv").write_text(
        "season\tepisode\tclip\ttext\tlabel\nS01\tE01\t1\thi\tShout\n"
    )
    with pytest.raises(DataError, match="dev.tsv line 2: unknown label 'Shout'"):
        load(tmp_path, "mintrec")


def test_bad_header(tmp_path):
    _tiny_folder(tmp_path)
    (tmp_path / "train.tsv").write_text("season\tepisode\ttext\tlabel\nS01\tE01\thi\tGreet\n")
    with pytest.raises(DataError, match="header lacks column"):
        load(tmp_path, "mintrec")


def test_mixed_widths_between_splits(tmp_path):
    _tiny_folder(tmp_path)
    table = {f"S01_E01_{i}": np.ones((3, 6 + i)) for i in range(3)}
    (tmp_path / "audio_feats.pkl").write_bytes(pickle.dumps(table))
    with pytest.raises(
        DataError, match=r"'audio' features differ in width between splits \(train 6"
    ):
        load(tmp_path, "mintrec")


def test_mixed_widths_within_a_split(tmp_path):
    _tiny_folder(tmp_path)
    rows = "season\tepisode\tclip\ttext\tlabel\nS01\tE01\t0\thi\tGreet\nS01\tE01\t1\tho\tGreet\n"
    (tmp_path / "train.tsv").write_text(rows)
    table = {f"S01_E01_{i}": [np.ones((1, 4 + i))] for i in range(3)}
    (tmp_path / "video_feats.pkl").write_bytes(pickle.dumps(table))
    with pytest.raises(DataError, match="video_feats.pkl: entries have different feature widths"):
        load(tmp_path, "mintrec")


def test_wrong_entry_rank(tmp_path):
    _tiny_folder(tmp_path)
    table = {f"S01_E01_{i}": np.ones(6) for i in range(3)}
    (tmp_path / "audio_feats.pkl").write_bytes(pickle.dumps(table))
    with pytest.raises(DataError, match=r"expected shape \(T, d\)"):
        load(tmp_path, "mintrec")


def test_missing_tsv(tmp_path):
    _tiny_folder(tmp_path)
    (tmp_path / "test.tsv").unlink()
    with pytest.raises(DataError, match="test.tsv"):
        load(tmp_path, "mintrec")
