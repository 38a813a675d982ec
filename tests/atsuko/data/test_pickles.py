"""`atsuko.data.pickles`: only the globals a feature file needs, unless the file is trusted;
atomic writes. What a loader makes of a refused or unreadable pickle: test_data_bad_inputs.py."""

import pickle
from fractions import Fraction

import numpy as np
import pytest

from atsuko.data.pickles import TRUST_ENV, atomic_path, read_pickle, write_pickle
from atsuko.errors import DataError


def test_feature_arrays_round_trip(tmp_path):
    obj = {"train": {"audio": np.arange(6, dtype=np.float32).reshape(2, 3), "id": ["a", "b"]}}
    write_pickle(obj, tmp_path / "f.pkl")
    back = read_pickle(tmp_path / "f.pkl")
    assert np.array_equal(back["train"]["audio"], obj["train"]["audio"])
    assert back["train"]["id"] == ["a", "b"]


def test_other_globals_load_only_when_trusted(tmp_path, monkeypatch):
    path = tmp_path / "f.pkl"
    path.write_bytes(pickle.dumps({"x": Fraction(1, 3)}))
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(DataError, match=r"fractions\.Fraction.*" + TRUST_ENV):
        read_pickle(path)
    monkeypatch.setenv(TRUST_ENV, "1")
    assert read_pickle(path) == {"x": Fraction(1, 3)}


def test_missing_file_is_named_with_the_hint(tmp_path):
    with pytest.raises(DataError, match=r"file not found: .*nope\.pkl; try this"):
        read_pickle(tmp_path / "nope.pkl", "; try this")


def test_atomic_path_leaves_nothing_behind_a_failure(tmp_path):
    target = tmp_path / "out" / "f.pkl"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert list(target.parent.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and list(target.parent.iterdir()) == [target]
