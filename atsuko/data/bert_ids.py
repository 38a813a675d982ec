"""BERT token ids of raw text, made with a model folder's own tokenizer (`text_bert`).

MIntRec ships text, not ids: with `model.text_encoder: bert` its loader tokenizes the tsv text
here, as MIntRec's pipeline does ([CLS] text [SEP], truncated and padded to 30 tokens).
Needs the optional extra `[bert]` (`transformers`), imported only when called.
Tested in `tests/atsuko/data/test_bert_ids.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atsuko.errors import ConfigError
from atsuko.model.bert import bert_folder, transformers


def tokenizer(folder: str | Path):
    """The folder's WordPiece tokenizer (BERT's own class, local files only: no Auto class a
    folder's config could point at other code)."""
    folder = bert_folder(folder)
    if not any((folder / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        raise ConfigError(
            f"model.bert_path: cannot load a tokenizer from {folder}: no tokenizer.json or "
            "vocab.txt there"
        )
    BertTokenizerFast = transformers().BertTokenizerFast
    try:
        return BertTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"model.bert_path: cannot load a tokenizer from {folder}: {exc}"
        ) from None


def bert_ids(texts: list[str], folder: str | Path, max_len: int) -> np.ndarray:
    """(N, 3, max_len) int64: token ids, attention mask, segment ids (MMSA's `text_bert`)."""
    enc = tokenizer(folder)(
        list(texts),
        max_length=max_len,
        padding="max_length",
        truncation=True,
        return_token_type_ids=True,
        return_attention_mask=True,
    )
    parts = [enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]]
    out = np.stack([np.asarray(p, dtype=np.int64) for p in parts], axis=1)
    return out.reshape(len(texts), 3, max_len)
