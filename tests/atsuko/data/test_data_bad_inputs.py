"""Every bad input the loaders reject (or repair) has a clear message."""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pytest

from atsuko.data import DataWarning, load
from atsuko.errors import DataError


def test_missing_file_says_where_and_suggests_synthetic(tmp_path):
    path = tmp_path / "aligned_50.pkl"
    with pytest.raises(DataError, match="--synthetic") as err:
        load(path, "mosi")
    assert str(path) in str(err.value)


def test_not_a_pickle(tmp_path):
    path = tmp_path / "notes.pkl"
    path.write_text("just some text\n")
    with pytest.raises(DataError, match="not a readable pickle"):
        load(path, "mosi")


def test_truncated_pickle(mmsa_file):
    path = mmsa_file()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        load(path, "mosi")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_foreign_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": _Exploit(marker)}))
    with pytest.raises(DataError, match="refusing"):
        load(path, "mosi")
    assert not marker.exists()


def test_top_level_must_be_a_dict(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataError, match="dict of splits"):
        load(path, "mosi")


def test_missing_split_is_named(mmsa_file):
    path = mmsa_file(lambda o: o.pop("valid"))
    with pytest.raises(DataError, match="split 'valid' is missing"):
        load(path, "mosi")


def test_missing_key_is_named(mmsa_file):
    path = mmsa_file(lambda o: o["test"].pop("audio"))
    with pytest.raises(DataError, match="split 'test' has no key 'audio'"):
        load(path, "mosi")


def test_row_counts_must_agree(mmsa_file):
    def cut(obj):
        obj["train"]["vision"] = obj["train"]["vision"][:5]

    with pytest.raises(DataError, match="'vision' has 5 rows but 'regression_labels' has 8"):
        load(mmsa_file(cut), "mosi")


def test_widths_must_agree_between_splits(mmsa_file):
    def widen(obj):
        obj["test"]["vision"] = np.zeros((4, 6, 21), np.float32)

    with pytest.raises(DataError, match=r"'vision' features differ in width .*train 20.*test 21"):
        load(mmsa_file(widen), "mosi")


def test_wrong_rank(mmsa_file):
    def flatten(obj):
        obj["train"]["audio"] = obj["train"]["audio"].mean(1)  # (N, T, d) -> (N, d)

    with pytest.raises(DataError, match=r"'audio': expected a 3-d array \(N, T, d\)"):
        load(mmsa_file(flatten), "mosi")


def test_lengths_beyond_padding(mmsa_file):
    def stretch(obj):
        obj["valid"]["audio_lengths"][0] = 9

    with pytest.raises(
        DataError, match="'audio_lengths': lengths go up to 9 but 'audio' is padded"
    ):
        load(mmsa_file(stretch, aligned=False), "mosi")


def test_negative_lengths(mmsa_file):
    def negative(obj):
        obj["train"]["vision_lengths"][2] = -1

    with pytest.raises(DataError, match="negative length"):
        load(mmsa_file(negative, aligned=False), "mosi")


def test_zero_lengths_read_as_one_step(mmsa_file):
    def empty(obj):
        obj["train"]["audio_lengths"][:2] = 0

    dataset = load(mmsa_file(empty, aligned=False), "mosi")
    assert dataset.splits["train"].lengths["audio"][:2].tolist() == [1, 1]
    assert any("no valid step" in n for n in dataset.notes)


def test_labels_outside_range_warn_and_load(mmsa_file):
    def stretch(obj):
        obj["train"]["regression_labels"][:2] = [3.5, -4.0]

    with pytest.warns(DataWarning, match="2 labels outside mosi's range"):
        dataset = load(mmsa_file(stretch), "mosi")
    assert dataset.splits["train"].labels[:2].tolist() == [3.5, -4.0]


def test_nonfinite_labels_are_an_error(mmsa_file):
    def spoil(obj):
        obj["test"]["regression_labels"][1] = np.nan

    with pytest.raises(DataError, match="1 labels are NaN or infinite"):
        load(mmsa_file(spoil), "mosi")


def test_nonfinite_features_replaced_counted_reported_once(mmsa_file):
    def spoil(obj):
        obj["train"]["audio"][0, 0, :3] = [-np.inf, np.inf, np.nan]  # as in MOSEI's audio
        obj["test"]["vision"][1, 2, 0] = np.nan

    path = mmsa_file(spoil)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load(path, "mosi")
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1 and "replaced 4 non-finite values" in messages[0]
    assert dataset.nonfinite == {"train/audio": 3, "test/vision": 1}
    assert dataset.splits["train"].features["audio"][0, 0, :3].tolist() == [0.0, 0.0, 0.0]
    for split in dataset.splits.values():
        assert all(bool(x.isfinite().all()) for x in split.features.values())


def test_float64_cast_once_to_float32(mmsa_file):
    dataset = load(mmsa_file(dtype=np.float64), "mosi")
    raw = pickle.loads(mmsa_file(dtype=np.float64, name="again.pkl").read_bytes())
    for m in ("text", "audio", "vision"):
        x = dataset.splits["train"].features[m]
        assert x.dtype.is_floating_point and x.element_size() == 4
        np.testing.assert_array_equal(x.numpy(), raw["train"][m].astype(np.float32))


def test_labels_of_shape_n_by_1_are_accepted(mmsa_file):
    def column(obj):
        for split in obj.values():
            split["regression_labels"] = split["regression_labels"][:, None]

    dataset = load(mmsa_file(column), "mosi")
    assert dataset.splits["train"].labels.shape == (8,)


def test_text_bert_with_wrong_shape(mmsa_file):
    def bad(obj):
        obj["train"]["text_bert"] = np.ones((8, 2, 6), np.float32)

    with pytest.raises(DataError, match=r"'text_bert': expected shape \(N, 3, L\)"):
        load(mmsa_file(bad), "mosi")


def test_synthetic_file_of_another_dataset(mosi_aligned):
    with pytest.raises(DataError, match="not mosei; pass --dataset mosi"):
        load(mosi_aligned, "mosei")


def test_folder_for_an_mmsa_dataset(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        load(tmp_path, "mosi")


def test_folder_holding_an_mmsa_pickle(mosi_aligned):
    with pytest.raises(DataError, match="pass the pickle itself .found: aligned_50.pkl"):
        load(mosi_aligned.parent)


def test_numpy1_protocol2_pickle_with_bytes_ids(tmp_path, mmsa_file):
    def old_style(obj):
        for split in obj.values():
            split["id"] = np.array([i.encode() for i in split["id"]], dtype=object)

    obj = pickle.loads(mmsa_file(old_style).read_bytes())
    data = pickle.dumps(obj, protocol=2).replace(b"numpy._core.", b"numpy.core.")
    assert b"numpy.core.multiarray" in data  # as numpy 1.x wrote it
    path = tmp_path / "old.pkl"
    path.write_bytes(data)
    dataset = load(path, "mosi")
    assert dataset.splits["train"].ids[0] == "clip0_0$_$0"


def test_pickle_file_for_mintrec(mmsa_file):
    with pytest.raises(DataError, match="MIntRec data is a folder"):
        load(mmsa_file(), "mintrec")


def test_unknown_widths_cannot_be_inferred(mmsa_file):
    path = mmsa_file(widths={"text": 8, "audio": 3, "vision": 3})
    with pytest.raises(DataError, match="pass --dataset"):
        load(path)


def test_npz_that_is_not_one(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load(path, "mosi")


def test_npz_without_meta(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(DataError, match="no 'meta' entry"):
        load(path, "mosi")
