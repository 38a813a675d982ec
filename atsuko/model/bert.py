"""Optional text encoder fine-tuned from BERT token ids (`text_encoder: bert`).

Reads the model's config and weights from a local folder (`bert_path`, as written by
`save_pretrained`); nothing is downloaded. Needs the optional extra `[bert]` (`transformers`),
imported only when this encoder is built.

Input: `text_bert` (B, 3, L) in the MMSA layout: token ids, attention mask, segment ids.
Shapes: B batch, L tokens, H the BERT hidden size.
Tested in `tests/atsuko/model/test_bert_text.py`.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from atsuko.errors import ConfigError, DataError


def bert_folder(path: str | Path | None) -> Path:
    """`model.bert_path`, checked: given, and a folder."""
    if not path:
        raise ConfigError(
            "model.bert_path: required when model.text_encoder is 'bert' "
            "(a local folder with a BERT config and weights)"
        )
    if not Path(path).is_dir():
        raise ConfigError(f"model.bert_path: no such folder: {path}")
    return Path(path)


def transformers():
    """The optional `transformers` package, or a ConfigError naming the extra to install."""
    try:
        import transformers as module
    except ImportError:
        raise ConfigError(
            "model.text_encoder 'bert' needs the optional extra: "
            "pip install 'atsuko-search[bert]' (transformers)"
        ) from None
    return module


def bert_config(hf, path: Path):
    """The folder's config.json (plain JSON), refused unless it describes a BERT model."""
    config = hf.BertConfig.from_pretrained(str(path), local_files_only=True)
    if config.model_type != "bert":
        raise ConfigError(
            f"model.bert_path: {path} holds a '{config.model_type}' model; expected a BERT "
            "model (config.json model_type 'bert')"
        )
    return config


class BertTextEncoder(nn.Module):
    """(B, 3, L) ids -> last hidden states (B, L, H) and valid lengths (B,)."""

    def __init__(self, path: str | Path | None):
        super().__init__()
        path = bert_folder(path)
        hf = transformers()
        hf_logging = hf.utils.logging
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # the unused pooler's weights are expected, not news
        hf_logging.disable_progress_bar()
        try:
            # BERT's own class, not an Auto class that a folder's config.json could point at
            # other code; its weights from safetensors, read as data, never unpickled
            self.bert = hf.BertModel.from_pretrained(
                str(path),
                config=bert_config(hf, path),
                local_files_only=True,
                use_safetensors=True,
                add_pooling_layer=False,
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"model.bert_path: cannot load a BERT model from {path}: {exc}"
            ) from None
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self.dim = self.bert.config.hidden_size

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        if ids.ndim != 3 or ids.shape[1] != 3:
            raise DataError(
                f"text_bert: expected (B, 3, L) ids, mask, segments; got {tuple(ids.shape)}"
            )
        input_ids, mask, segments = ids.long().unbind(1)  # (B, L) each
        hidden = self.bert(
            input_ids=input_ids, attention_mask=mask, token_type_ids=segments
        ).last_hidden_state  # (B, L, H)
        return hidden, mask.sum(-1)
