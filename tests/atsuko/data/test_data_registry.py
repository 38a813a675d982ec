"""The dataset registry read from configs/datasets/*.yaml."""

from __future__ import annotations

import pytest

from atsuko.config import DATASETS, resolve
from atsuko.data import dataset_names, get_spec
from atsuko.errors import ConfigError


def test_every_dataset_is_registered():
    assert set(dataset_names()) == set(DATASETS)
    for name in DATASETS:
        spec = get_spec(name)
        assert spec.name == name and spec.modalities == ("text", "audio", "vision")
        assert spec.select_metric in spec.metrics
        assert set(spec.splits) == {"train", "valid", "test"}
        assert spec.variants and all(set(s) == set(spec.modalities) for s in spec.shapes.values())


def test_regression_and_classification():
    for name in ("mosi", "mosei"):
        spec = get_spec(name)
        assert spec.label_range == (-3.0, 3.0) and spec.num_outputs == 1
        assert (spec.select_metric, spec.select_mode) == ("MAE", "min")
        assert spec.variants == ("aligned", "unaligned")
    for name in ("sims", "simsv2"):
        assert get_spec(name).label_range == (-1.0, 1.0) and get_spec(name).variants == (
            "unaligned",
        )
    mintrec = get_spec("mintrec")
    assert mintrec.task == "classification" and mintrec.num_outputs == 20
    assert mintrec.classes[0] == "Complain" and mintrec.classes[-1] == "Ask for help"
    assert (mintrec.select_metric, mintrec.select_mode) == ("acc", "max")
    assert mintrec.splits == {"train": 1334, "valid": 445, "test": 445}


def test_default_files():
    assert get_spec("mosi").default_file(True) == "aligned_50.pkl"
    assert get_spec("mosi").default_file(False) == "unaligned_50.pkl"
    assert get_spec("sims").default_file(True) == "unaligned_39.pkl"  # no aligned variant


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="unknown dataset 'iemocap'; expected one of: .*mosi"):
        get_spec("iemocap")


def test_dataset_defaults_still_resolve():
    assert resolve(dataset="mintrec").train.batch_size == 16
