"""Cross-validation folds of train and valid (`data.folds`, `data.fold`): whole videos, fixed
rows, the test split untouched; on the real MOSI ids where they are available."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from atsuko import config as cfg
from atsuko.data import load
from atsuko.data.dataset import Split
from atsuko.data.folds import assign, group_of, pooled, with_fold
from atsuko.errors import ConfigError, DataError


def _data(folds: int, fold: int) -> cfg.DataConfig:
    return cfg.DataConfig(folds=folds, fold=fold)


def test_real_mosi_folds_keep_videos_whole_and_cover_train_and_valid(real_mosi):
    dataset = load(real_mosi, "mosi")
    train, valid = dataset.splits["train"], dataset.splits["valid"]
    pool = {*train.ids, *valid.ids}
    seen, videos = set(), {}
    for fold in range(5):
        cut = with_fold(_data(5, fold), dataset)
        assert cut.fold == (fold, 5) and cut.splits["test"] is dataset.splits["test"]
        fold_ids = set(cut.splits["valid"].ids)
        assert fold_ids | set(cut.splits["train"].ids) == pool  # every row, once
        assert not fold_ids & set(cut.splits["train"].ids)
        assert not fold_ids & seen  # the folds are disjoint
        seen |= fold_ids
        for i in fold_ids:
            assert videos.setdefault(group_of(i), fold) == fold  # a video in one fold only
        assert abs(len(fold_ids) - len(pool) / 5) < 0.1 * len(pool) / 5  # balanced
    assert seen == pool and len(videos) > 5


def test_fold_rows_carry_their_own_features_and_labels(real_mosi):
    dataset = load(real_mosi, "mosi")
    cut = with_fold(_data(4, 2), dataset).splits["valid"]
    source = {**_by_id(dataset.splits["train"]), **_by_id(dataset.splits["valid"])}
    for row, i in enumerate(cut.ids):
        split, at = source[i]
        assert cut.labels[row] == split.labels[at]
        assert torch.equal(cut.features["text"][row], split.features["text"][at])
        assert torch.equal(cut.extras["text_bert"][row], split.extras["text_bert"][at])
        assert cut.lengths["audio"][row] == split.lengths["audio"][at]


def _by_id(split: Split) -> dict[str, tuple[Split, int]]:
    return {i: (split, row) for row, i in enumerate(split.ids)}


def test_folds_do_not_depend_on_row_order():
    ids = [f"v{v}$_${c}" for v in range(20) for c in range(v % 4 + 1)]
    first = assign(ids, 3)
    shuffled = list(np.random.default_rng(1).permutation(len(ids)))
    again = assign([ids[i] for i in shuffled], 3)
    assert [first[i] for i in shuffled] == list(again)
    assert set(first) == {0, 1, 2}


def test_ids_without_a_video_are_one_group_each(mintrec_synth):
    dataset = load(mintrec_synth, "mintrec")
    pool = len(dataset.splits["train"]) + len(dataset.splits["valid"])
    sizes = [len(with_fold(_data(3, f), dataset).splits["valid"]) for f in range(3)]
    assert sum(sizes) == pool and max(sizes) - min(sizes) <= 1


def test_too_few_videos_for_the_folds_is_a_data_error():
    with pytest.raises(DataError, match="only 2 videos"):
        assign(["a$_$1", "a$_$2", "b$_$1"], 3)


def test_padded_steps_of_different_lengths_pool_with_zeros():
    def split(n: int, steps: int, tag: str) -> Split:
        return Split(
            features={"audio": torch.ones(n, steps, 2)},
            lengths={"audio": torch.full((n,), steps)},
            labels=torch.zeros(n),
            ids=[f"{tag}{i}" for i in range(n)],
        )

    both = pooled(split(2, 3, "a"), split(1, 5, "b"))
    assert both.features["audio"].shape == (3, 5, 2)
    assert both.features["audio"][:2, 3:].abs().sum() == 0 and both.ids == ["a0", "a1", "b0"]


def test_a_cut_dataset_is_not_cut_again(mosi_aligned):
    cut = with_fold(_data(3, 1), load(mosi_aligned, "mosi"))
    assert with_fold(_data(3, 1), cut) is cut  # the trainer's call after the CLI's
    with pytest.raises(ValueError, match="already cut"):
        with_fold(_data(3, 2), cut)
    assert with_fold(_data(0, 0), dataclasses.replace(cut, fold=None)).fold is None


@pytest.mark.parametrize(
    "folds, fold, message",
    [(1, 0, "at least 2"), (3, 3, r"expected 0\.\.2"), (0, 2, "needs data.folds"), (-2, 0, ">= 0")],
)
def test_fold_settings_out_of_range_are_config_errors(folds, fold, message):
    with pytest.raises(ConfigError, match=message):
        cfg.resolve(None, {"data.folds": folds, "data.fold": fold}, dataset="mosi")


def test_training_validates_on_the_fold(mosi_aligned):
    from atsuko.train import Trainer

    config = cfg.resolve(
        None, {"data.path": str(mosi_aligned), "data.folds": 3, "data.fold": 0}, dataset="mosi"
    )
    dataset = load(mosi_aligned, "mosi")
    trainer = Trainer(config, dataset)
    expected = with_fold(config.data, dataset).splits["valid"].ids
    assert trainer.dataset.splits["valid"].ids == expected
    assert len(trainer.dataset.splits["train"]) + len(expected) == sum(
        len(dataset.splits[s]) for s in ("train", "valid")
    )
