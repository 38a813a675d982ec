"""Whole splits as tensors; batches drawn by index."""

from __future__ import annotations

import torch

from atsuko.data import Batch, batches, load


def test_batches_cover_the_split_once(mosi_unaligned):
    split = load(mosi_unaligned, "mosi").splits["train"]
    seen = []
    for batch in batches(split, 10, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert isinstance(batch, Batch) and len(batch) <= 10
        assert batch.features["audio"].shape == (len(batch), 375, 5)
        assert batch.lengths["vision"].dtype == torch.int64
        assert batch.extras["text_bert"].shape[:2] == (len(batch), 3)
        seen.append(batch.index)
    order = torch.cat(seen)
    assert sorted(order.tolist()) == list(range(len(split)))
    assert order.tolist() != list(range(len(split)))  # shuffled


def test_batches_match_the_rows(mosi_aligned):
    split = load(mosi_aligned).splits["valid"]
    for batch in batches(split, 7, shuffle=False):
        i = batch.index
        assert torch.equal(batch.features["text"], split.features["text"][i])
        assert torch.equal(batch.labels, split.labels[i])
        assert torch.equal(batch.extras["decider"], split.extras["decider"][i])
    sizes = [len(b) for b in batches(split, 7, shuffle=False)]
    assert sizes == [7, 7, 6] and [
        len(b) for b in batches(split, 7, shuffle=False, drop_last=True)
    ] == [7, 7]


def test_shuffle_is_deterministic_by_generator(mosi_aligned):
    split = load(mosi_aligned).splits["train"]

    def order(seed):
        g = torch.Generator().manual_seed(seed)
        return torch.cat([b.index for b in batches(split, 16, shuffle=True, generator=g)])

    assert torch.equal(order(1), order(1)) and not torch.equal(order(1), order(2))


def test_batch_to_device_and_zero_copy(mosi_aligned):
    dataset = load(mosi_aligned)
    split = dataset.splits["test"]
    batch = split.take(torch.tensor([3, 0])).to("cpu")
    assert batch.index.tolist() == [3, 0] and batch.labels.shape == (2,)
    assert split.features["text"].is_contiguous() and split.features["text"].dtype == torch.float32
