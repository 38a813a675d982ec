"""Frozen-encoder text states (`model.bert_freeze`): computed once per (data file, encoder),
cached on disk, recomputed when either changes; with a tiny random BERT saved locally."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from atsuko import config as cfg
from atsuko.data import bert_states, load, load_for_run
from atsuko.errors import ConfigError
from atsuko.train import Trainer, fit

transformers = pytest.importorskip("transformers")

ROWS = {"train": 24, "valid": 8, "test": 8}
STEPS, VOCAB, WIDTH = 12, 60, 16


def save_tiny_bert(path, seed: int = 0, layers: int = 1):
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=WIDTH,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    transformers.BertModel(config).save_pretrained(path)
    return path


def write_pickle(path, seed: int = 0):
    """A small MOSI-shaped MMSA file with `text_bert` ids (lengths 0..STEPS) and a width-1
    placeholder text."""
    rng = np.random.default_rng(seed)
    obj = {}
    for split, n in ROWS.items():
        lengths = rng.integers(3, STEPS + 1, size=n)
        lengths[0] = 0
        mask = (np.arange(STEPS)[None, :] < lengths[:, None]).astype(np.float32)
        ids = rng.integers(1, VOCAB, size=(n, STEPS)) * mask
        obj[split] = {
            "text": np.zeros((n, STEPS, 1), dtype=np.float32),
            "text_bert": np.stack([ids, mask, np.zeros_like(mask)], axis=1),
            "audio": rng.standard_normal((n, STEPS, 5), dtype=np.float32),
            "vision": rng.standard_normal((n, STEPS, 20), dtype=np.float32),
            "regression_labels": rng.uniform(-3, 3, size=n).astype(np.float32),
        }
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return path


@pytest.fixture
def setup(tmp_path):
    bert = save_tiny_bert(tmp_path / "bert")
    data = write_pickle(tmp_path / "aligned_50.pkl")
    config = cfg.resolve(
        overrides={
            "data.path": str(data),
            "data.cache_dir": str(tmp_path / "cache"),
            "model.text_encoder": "bert",
            "model.bert_freeze": True,
            "model.bert_path": str(bert),
            "model.bert_layers": 1,  # the tiny encoder has 2 layers; MOSI's default is 4
            "train.device": "cpu",
            "model.hidden": 8,
            "model.heads": 2,
        },
        dataset="mosi",
    )
    return config, data, bert


@pytest.fixture
def computed(monkeypatch):
    """How many times the states were computed (not read from the cache)."""
    calls = []
    real = bert_states._compute

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(bert_states, "_compute", counting)
    return calls


def test_frozen_states_replace_the_text_features(setup, computed):
    config, data, _ = setup
    lines = []
    dataset = load_for_run(config, log=lines.append)
    raw = load(data, "mosi")
    for name, split in dataset.splits.items():
        states, lengths = split.features["text"], split.lengths["text"]
        assert states.shape == (ROWS[name], STEPS, WIDTH)  # the encoder's width
        mask = raw.splits[name].extras["text_bert"][:, 1]
        assert lengths.tolist() == mask.sum(1).clamp(min=1).tolist()
        assert (states[mask == 0] == 0).all() and (states[mask == 1] != 0).any()
    assert dataset.text_states is not None and computed == [1]
    assert any("encoding" in line for line in lines) and any("texts encoded" in x for x in lines)
    assert bert_states.with_frozen_states(config, dataset) is dataset  # already encoded


def test_second_load_reads_the_cache(setup, computed):
    config, _, _ = setup
    first = load_for_run(config, log=None)
    lines = []
    second = load_for_run(config, log=lines.append)
    assert computed == [1]
    assert torch.equal(
        first.splits["test"].features["text"], second.splits["test"].features["text"]
    )
    assert any("from the cache" in line for line in lines)


def test_a_changed_data_file_or_encoder_is_recomputed(setup, computed):
    config, data, bert = setup
    before = load_for_run(config, log=None).splits["train"].features["text"]
    write_pickle(data, seed=1)  # other ids
    after_data = load_for_run(config, log=None).splits["train"].features["text"]
    assert computed == [1, 1] and not torch.equal(before, after_data)
    save_tiny_bert(bert, seed=1)  # other weights, same folder
    after_model = load_for_run(config, log=None).splits["train"].features["text"]
    assert computed == [1, 1, 1] and not torch.equal(after_data, after_model)
    assert len(list(Path(config.data.cache_dir, "bert-states").glob("*.pt"))) == 3


def test_other_layers_are_other_states_never_the_cached_ones(setup, computed):
    config, _, bert = setup
    save_tiny_bert(bert, layers=2)
    last = load_for_run(config, log=None)
    two = config.replace(**{"model.bert_layers": 2})
    mean = load_for_run(two, log=None)
    assert computed == [1, 1]
    assert not torch.equal(
        last.splits["train"].features["text"], mean.splits["train"].features["text"]
    )
    assert bert_states.with_frozen_states(two, last) is not last  # encoded anew, not kept
    assert computed == [1, 1]  # ... from the second cache file
    assert len(list(Path(config.data.cache_dir, "bert-states").glob("*.pt"))) == 2
    with pytest.raises(ConfigError, match=r"model.bert_layers: expected 1..2 .*got 3"):
        load_for_run(config.replace(**{"model.bert_layers": 3}), log=None)
    assert computed == [1, 1]  # refused before anything was encoded


def test_a_frozen_run_trains_on_the_states(setup):
    config, _, _ = setup
    result = fit(config.replace(**{"train.epochs": 1}), load_for_run(config, log=None), log=None)
    model = result.trainer.model
    assert model.text_bert is None  # nothing of BERT is trained
    assert model.proj["text"].proj.in_features == WIDTH
    assert all(v == v for v in result.test.values())


def test_the_trainer_encodes_a_dataset_loaded_without_it(setup, computed):
    config, data, _ = setup
    trainer = Trainer(config, load(data, "mosi"))
    assert trainer.dataset.dims["text"] == WIDTH and computed == [1]


def test_fine_tuned_bert_has_its_own_learning_rate(setup):
    config, data, _ = setup
    config = config.replace(**{"bert_freeze": False, "bert_lr": 2e-5, "lr": 1e-3})
    trainer = Trainer(config, load(data, "mosi"))
    bert = {id(p) for p in trainer.model.text_bert.parameters()}
    lrs = {}
    for group in trainer.optimizer.param_groups:
        for p in group["params"]:
            lrs[id(p)] = (group["lr"], group["weight_decay"], p.ndim)
    assert {lr for i, (lr, _, _) in lrs.items() if i in bert} == {2e-5}
    assert {lr for i, (lr, _, _) in lrs.items() if i not in bert} == {1e-3}
    assert all((wd > 0) == (ndim >= 2) for _, wd, ndim in lrs.values())  # matrices decay
    assert len(lrs) == sum(1 for p in trainer.model.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.bert_freeze": True}, "bert_freeze: needs model.text_encoder 'bert'"),
        ({"model.text_encoder": "bert"}, "bert_path: required"),
        (
            {"model.text_encoder": "bert", "model.bert_path": "x", "train.bert_lr": 0},
            "train.bert_lr: expected a positive value",
        ),
        (
            {"model.text_encoder": "bert", "model.bert_path": "x", "model.bert_layers": 0},
            "model.bert_layers: expected a positive value",
        ),
    ],
)
def test_config_checks_the_text_encoder_keys(overrides, message):
    with pytest.raises(ConfigError, match=message):
        cfg.resolve(overrides=overrides, dataset="mosi")


def test_the_search_driver_encodes_before_sharing(setup, computed):
    from search.study.driver import load_dataset

    config, _, _ = setup
    dataset = load_dataset(config)
    assert dataset.text_states is not None and dataset.dims["text"] == WIDTH
    assert computed == [1]


def test_a_searched_bert_layers_is_checked_and_encoded_before_the_search(setup, computed, tmp_path):
    from search.study.driver import load_dataset, searched_layers
    from search.study.space import load_space

    config, _, bert = setup
    save_tiny_bert(bert, layers=2)
    dataset = load_dataset(config)
    space_file = tmp_path / "space.yaml"
    space_file.write_text("params:\n  bert_layers: {type: int, low: 1, high: 3}\n")
    with pytest.raises(ConfigError, match=r"model.bert_layers: expected 1..2 .*got 3"):
        searched_layers(config, load_space(space_file, config), dataset)
    assert computed == [1]  # refused before encoding anything
    space_file.write_text("params:\n  bert_layers: {type: categorical, choices: [1, 2]}\n")
    searched_layers(config, load_space(space_file, config), dataset)
    assert computed == [1, 1]  # the second value encoded once; the first is the dataset's own
    trial = config.replace(**{"model.bert_layers": 2})
    assert load_for_run(trial, log=None).dims["text"] == WIDTH and computed == [1, 1]
