"""A trainer's checkpoint loads without running pickled code; numpy's generator state survives."""

import pickle

import numpy as np
import pytest
import torch

from atsuko import checkpoint


def test_numpy_state_round_trips_through_a_weights_only_load(tmp_path):
    np.random.seed(3)
    torch.save({"numpy": checkpoint.numpy_rng_state()}, tmp_path / "s.pt")
    expected = np.random.rand(5)
    np.random.seed(99)
    checkpoint.set_numpy_rng_state(checkpoint.load(tmp_path / "s.pt")["numpy"])
    assert np.array_equal(np.random.rand(5), expected)


def test_a_checkpoint_of_the_legacy_form_still_loads(tmp_path):
    np.random.seed(4)
    torch.save({"numpy": np.random.get_state()}, tmp_path / "old.pt")  # numpy's tuple, pickled
    expected = np.random.rand(5)
    np.random.seed(99)
    checkpoint.set_numpy_rng_state(checkpoint.load(tmp_path / "old.pt")["numpy"])
    assert np.array_equal(np.random.rand(5), expected)


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_a_file_holding_other_pickled_objects_is_refused(tmp_path, capsys):
    torch.save({"model": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError):
        checkpoint.load(tmp_path / "evil.pt")
    assert "pickled code ran" not in capsys.readouterr().out
