"""The optional BERT text encoder, with a tiny randomly initialised config saved locally."""

import pytest
import torch

from atsuko.errors import ConfigError, DataError
from atsuko.model import Atsuko

transformers = pytest.importorskip("transformers")

SHAPES = {"audio": (12, 5), "text": (10, 768), "vision": (15, 7)}


def save_tiny_bert(path, layers: int = 1):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    transformers.BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def token_ids(batch=4, length=10):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 60, (batch, length), generator=g)
    n = torch.tensor([10, 7, 4, 9])[:batch]
    mask = (torch.arange(length)[None, :] < n[:, None]).long()
    return torch.stack([ids * mask, mask, torch.zeros_like(ids)], dim=1)  # (B, 3, L)


@pytest.mark.slow
@pytest.mark.parametrize("variant", [{}, {"use_sbr": False, "use_mcm": False}])
def test_bert_text_encoder_trains(variant, tiny_bert, tiny, make_batch, make_labels):
    config = tiny(text_encoder="bert", bert_path=str(tiny_bert), **variant)
    dims = {m: d for m, (_, d) in SHAPES.items()}
    model = Atsuko(config=config, dims=dims, num_outputs=1, task="regression")
    assert model.proj["text"].proj.in_features == 16  # the BERT width, not dims["text"]
    feats, lens = make_batch(SHAPES, variable=True)
    del feats["text"]  # token ids replace the precomputed text features
    out = model.train()(feats, lens, {"text_bert": token_ids().float()})  # MMSA stores floats
    res = model.loss(out, make_labels("regression"), epoch=3)
    res.total.backward()
    assert torch.isfinite(res.total)
    grads = [p.grad for p in model.text_bert.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads), "BERT is fine-tuned"


def _bert_model(tiny, folder) -> Atsuko:
    """A regression Atsuko whose text encoder is the BERT folder `folder`."""
    dims = {m: d for m, (_, d) in SHAPES.items()}
    config = tiny(text_encoder="bert", bert_path=str(folder))
    return Atsuko(config=config, dims=dims, num_outputs=1, task="regression")


def test_pickled_weights_are_refused_never_unpickled(tiny_bert, tiny, tmp_path):
    pickled = tmp_path / "pickled"  # the same model, its weights as a pickle
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_bert / "config.json").read_text())
    model = transformers.BertModel.from_pretrained(tiny_bert)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(ConfigError, match="cannot load a BERT model"):
        _bert_model(tiny, pickled)


def test_a_folder_whose_config_names_other_code_is_refused(tiny_bert, tiny, tmp_path):
    """Not an Auto class: a config.json naming another model type (or remote code through
    `auto_map`) is refused before any weights are read."""
    import json

    other = tmp_path / "other"
    other.mkdir()
    config = json.loads((tiny_bert / "config.json").read_text())
    config.update(model_type="roberta", auto_map={"AutoModel": "modeling_evil.Evil"})
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="expected a BERT model"):
        _bert_model(tiny, other)


def test_bert_needs_a_local_folder_and_the_ids(tiny_bert, tiny, make_batch, tmp_path):
    dims = {m: d for m, (_, d) in SHAPES.items()}
    with pytest.raises(ConfigError, match="bert_path"):
        Atsuko(config=tiny(text_encoder="bert"), dims=dims, num_outputs=1, task="regression")
    with pytest.raises(ConfigError, match="no such folder"):
        Atsuko(
            config=tiny(text_encoder="bert", bert_path=str(tmp_path / "absent")),
            dims=dims,
            num_outputs=1,
            task="regression",
        )
    with pytest.raises(ConfigError, match="cannot load"):
        Atsuko(
            config=tiny(text_encoder="bert", bert_path=str(tmp_path)),
            dims=dims,
            num_outputs=1,
            task="regression",
        )
    model = Atsuko(
        config=tiny(text_encoder="bert", bert_path=str(tiny_bert)),
        dims=dims,
        num_outputs=1,
        task="regression",
    )
    feats, lens = make_batch(SHAPES)
    with pytest.raises(DataError, match="text_bert"):
        model(feats, lens)


def test_bert_layers_average_the_last_layers_states(tmp_path):
    from atsuko.model.bert import BertTextEncoder

    save_tiny_bert(tmp_path, layers=3)
    ids = token_ids()
    reference = transformers.BertModel.from_pretrained(tmp_path, add_pooling_layer=False).eval()
    with torch.no_grad():
        states = reference(
            input_ids=ids[:, 0],
            attention_mask=ids[:, 1],
            token_type_ids=ids[:, 2],
            output_hidden_states=True,
        ).hidden_states  # embeddings, then each of the 3 layers
        for layers in (1, 2, 3):
            hidden, lengths = BertTextEncoder(tmp_path, layers).eval()(ids)
            expected = torch.stack(states[-layers:]).mean(0)
            torch.testing.assert_close(hidden, expected)
            assert lengths.tolist() == [10, 7, 4, 9]
    assert not torch.allclose(states[-1], torch.stack(states[-2:]).mean(0))
    with pytest.raises(ConfigError, match=r"model.bert_layers: expected 1..3 .*got 4"):
        BertTextEncoder(tmp_path, 4)
