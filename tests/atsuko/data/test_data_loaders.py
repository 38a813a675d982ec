"""Loader round trips: synthetic -> load, -> convert -> load .npz, configs, the cache."""

from __future__ import annotations

import gc
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
import torch

from atsuko.config import DataConfig
from atsuko.data import Dataset, default_path, get_spec, load, load_from_config
from atsuko.data import npz as npz_format
from atsuko.data.synth_write import synthesize
from atsuko.errors import DataError


def assert_same(a: Dataset, b: Dataset) -> None:
    assert a.spec == b.spec and a.planted == b.planted
    assert a.splits.keys() == b.splits.keys()
    for name, x in a.splits.items():
        y = b.splits[name]
        assert x.ids == y.ids
        assert torch.equal(x.labels, y.labels) and x.labels.dtype == y.labels.dtype
        for group in ("features", "lengths", "extras"):
            gx, gy = getattr(x, group), getattr(y, group)
            assert gx.keys() == gy.keys(), group
            for k in gx:
                assert gx[k].dtype == gy[k].dtype and torch.equal(gx[k], gy[k]), (name, group, k)


def test_aligned_shapes_come_from_the_arrays(mosi_aligned):
    dataset = load(mosi_aligned)  # the dataset is read from the file's `planted` tag
    spec = get_spec("mosi")
    assert dataset.spec.name == "mosi" and dataset.source == str(mosi_aligned)
    assert dataset.dims == {"text": 768, "audio": 5, "vision": 20}
    for split in dataset.splits.values():
        for m, x in split.features.items():
            assert tuple(x.shape[1:]) == spec.shapes["aligned"][m] and x.dtype == torch.float32
            assert torch.equal(split.lengths[m], torch.full((len(split),), 50))
        assert split.labels.dtype == torch.float32 and len(split.ids) == len(split)
        assert split.extras["text_bert"].dtype == torch.int64
        assert split.extras["decider"].dtype == torch.int64
    assert dataset.planted["bands"] == {"text": 0, "audio": 2, "vision": 1}
    assert dataset.planted["num_bands"] == 3 and dataset.planted["band_split"] == "uniform"
    assert dataset.planted["deciders"] == ["text", "audio", "vision", "audio+vision"]


def test_unaligned_lengths_and_padding(mosi_unaligned):
    dataset = load(mosi_unaligned, "mosi")
    spec = get_spec("mosi")
    raw = pickle.loads(mosi_unaligned.read_bytes())
    for name, split in dataset.splits.items():
        mask = raw[name]["text_bert"][:, 1].sum(1)
        assert split.lengths["text"].tolist() == mask.astype(int).tolist()
        for m in ("audio", "vision"):
            stored = raw[name][f"{m}_lengths"]
            assert split.lengths[m].tolist() == stored.clip(min=1).tolist()  # 0 reads as 1
        for m, x in split.features.items():
            assert tuple(x.shape[1:]) == spec.shapes["unaligned"][m]
            lengths = split.lengths[m]
            assert int(lengths.max()) == x.shape[1] and int(lengths.min()) < x.shape[1]
            steps = torch.arange(x.shape[1])[None, :] >= lengths[:, None]  # (N, T) padding
            assert float(x[steps].abs().max()) == 0.0


def test_aligned_without_text_bert_uses_every_step(mmsa_file):
    dataset = load(mmsa_file(), "mosi")
    for split in dataset.splits.values():
        for m in ("text", "audio", "vision"):
            assert torch.equal(split.lengths[m], torch.full((len(split),), 6))


def test_convert_round_trip_is_identical(mosi_unaligned, tmp_path):
    dataset = load(mosi_unaligned, "mosi")
    out = npz_format.write(dataset, tmp_path / "mosi.npz")
    with np.load(out, allow_pickle=False) as store:  # readable without pickle
        assert "train/features/audio" in store.files
    again = load(out)
    assert again.source == str(out)
    assert_same(dataset, again)


def test_convert_round_trip_mintrec(mintrec_synth, tmp_path):
    dataset = load(mintrec_synth, "mintrec")
    assert_same(dataset, load(npz_format.write(dataset, tmp_path / "m.npz"), "mintrec"))


def test_npz_of_another_dataset(mosi_aligned, tmp_path):
    out = npz_format.write(load(mosi_aligned), tmp_path / "mosi.npz")
    with pytest.raises(DataError, match="holds mosi data, not sims"):
        load(out, "sims")


def test_deterministic_by_seed(tmp_path):
    spec = get_spec("sims")
    a = load(synthesize(spec, tmp_path / "a", scale=0.01, seed=3, aligned=False))
    b = load(synthesize(spec, tmp_path / "b", scale=0.01, seed=3, aligned=False))
    c = load(synthesize(spec, tmp_path / "c", scale=0.01, seed=4, aligned=False))
    assert_same(a, b)
    assert not torch.equal(a.splits["train"].features["audio"], c.splits["train"].features["audio"])


def test_load_from_config_synthetic_is_cached(tmp_path):
    data = DataConfig(
        dataset="mosi", synthetic=True, scale=0.02, synth_seed=1, cache_dir=str(tmp_path)
    )
    first = load_from_config(data)
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert [str(f) for f in files] == [
        "mosi-aligned-scale0.02-seed1-v2",
        "mosi-aligned-scale0.02-seed1-v2/aligned_50.pkl",
    ]
    stamp = (tmp_path / str(files[1])).stat().st_mtime_ns
    second = load_from_config(data)
    assert (tmp_path / str(files[1])).stat().st_mtime_ns == stamp  # reused, not rewritten
    assert_same(first, second)
    assert first.planted["seed"] == 1 and first.planted["scale"] == 0.02


def test_load_from_config_falls_back_to_unaligned(tmp_path):
    data = DataConfig(dataset="sims", synthetic=True, scale=0.01, cache_dir=str(tmp_path))
    dataset = load_from_config(data)  # sims has no aligned variant: the unaligned one is used
    assert dataset.planted["variant"] == "unaligned"
    assert dataset.source.endswith("sims-unaligned-scale0.01-seed0-v2/unaligned_39.pkl")


def test_load_from_config_path_wins(mosi_aligned):
    dataset = load_from_config(DataConfig(dataset="mosi", path=str(mosi_aligned), synthetic=True))
    assert dataset.source == str(mosi_aligned)


def test_default_location_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("ATSUKO_DATA", str(tmp_path))
    expected = tmp_path / "mosei" / "aligned_50.pkl"
    assert default_path(get_spec("mosei")) == expected
    with pytest.raises(DataError, match="--synthetic") as err:
        load_from_config(DataConfig(dataset="mosei"))
    assert str(expected) in str(err.value) and "ATSUKO_DATA" in str(err.value)


def test_default_location_found(tmp_path, monkeypatch, mmsa_file):
    monkeypatch.setenv("ATSUKO_DATA", str(tmp_path / "store"))
    target = tmp_path / "store" / "mosi" / "unaligned_50.pkl"
    target.parent.mkdir(parents=True)
    mmsa_file(aligned=False).rename(target)
    dataset = load_from_config(DataConfig(dataset="mosi", aligned=False))
    assert dataset.source == str(target) and dataset.planted is None


def test_default_data_root_is_relative_data(monkeypatch):
    monkeypatch.delenv("ATSUKO_DATA", raising=False)
    assert str(default_path(get_spec("mintrec"))) == "data/mintrec"


def test_float64_adds_at_most_one_array_to_the_peak(mmsa_file):
    path = mmsa_file(
        dtype=np.float64,
        steps={"text": 40, "audio": 40, "vision": 40},
        widths={"text": 768, "audio": 5, "vision": 20},
    )
    gc.collect()
    tracemalloc.start()
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f)
        bare = tracemalloc.get_traced_memory()[1]
        del obj
        gc.collect()
        tracemalloc.reset_peak()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = load(path, "mosi")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    largest = max(x.numel() * 4 for s in dataset.splits.values() for x in s.features.values())
    assert peak - bare <= largest + 256 * 1024, (peak, bare, largest)
