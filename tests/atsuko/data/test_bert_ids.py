"""MIntRec's text tokenized by the model folder's own tokenizer (`model.text_encoder: bert`):
real MiniLM tokenizer on the real tsv files (skipped without either)."""

from __future__ import annotations

import numpy as np
import pytest

from atsuko.data import load
from atsuko.data.bert_ids import bert_ids, tokenizer
from atsuko.data.mintrec import read_tsv
from atsuko.errors import ConfigError

CLS, SEP, AND = 101, 102, 1998  # bert-base-uncased's ids


def test_mintrec_text_becomes_bert_ids(minilm, real_mintrec_minilm):
    dataset = load(real_mintrec_minilm, "mintrec", tokenizer=minilm)
    tok = tokenizer(minilm)
    for name, file in (("train", "train.tsv"), ("test", "test.tsv")):
        ids = dataset.splits[name].extras["text_bert"]
        texts = [t for _, t, _ in read_tsv(real_mintrec_minilm / file)]
        assert ids.shape == (len(texts), 3, 30)
        assert (ids[:, 0, 0] == CLS).all()
        mask, segments = ids[:, 1], ids[:, 2]
        expected = [min(len(tok.tokenize(t)) + 2, 30) for t in texts]  # [CLS] ... [SEP]
        assert mask.sum(1).tolist() == expected
        assert (mask[:, :-1] >= mask[:, 1:]).all()  # valid tokens first, padding at the end
        assert (ids[:, 0][mask == 0] == 0).all() and (segments == 0).all()
        last = ids[:, 0].gather(1, (mask.sum(1, keepdim=True) - 1))
        assert (last == SEP).all()
    assert (dataset.splits["train"].extras["text_bert"][:, 0] == AND).any()


def test_without_a_tokenizer_the_folder_has_no_ids(real_mintrec_minilm):
    dataset = load(real_mintrec_minilm, "mintrec")
    assert "text_bert" not in dataset.splits["train"].extras


def test_a_folder_without_a_tokenizer_is_a_config_error(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ConfigError, match="model.bert_path: cannot load a tokenizer"):
        bert_ids(["hello"], tmp_path, 30)
    with pytest.raises(ConfigError, match="no such folder"):
        bert_ids(["hello"], tmp_path / "absent", 30)


def test_ids_are_whole_numbers_of_the_vocabulary(minilm):
    ids = bert_ids(["and so it goes", ""], minilm, 8)
    assert ids.dtype == np.int64 and ids.shape == (2, 3, 8)
    assert ids[0, 0, :2].tolist() == [CLS, AND] and ids[1, 1].sum() == 2  # [CLS] [SEP]
