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

import torch
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
    try:
        config = hf.BertConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model.bert_path: cannot load a BERT model from {path}: {exc}") from None
    if config.model_type != "bert":
        raise ConfigError(
            f"model.bert_path: {path} holds a '{config.model_type}' model; expected a BERT "
            "model (config.json model_type 'bert')"
        )
    return config


def checked_config(path: str | Path | None, layers: int = 1):
    """The folder's BERT config, `model.bert_layers` checked against its depth (called before
    anything trains, and by the encoder)."""
    path = bert_folder(path)
    config = bert_config(transformers(), path)
    depth = config.num_hidden_layers
    if not 1 <= layers <= depth:
        raise ConfigError(
            f"model.bert_layers: expected 1..{depth} (the layers of {path}), got {layers}"
        )
    return config


class BertTextEncoder(nn.Module):
    """(B, 3, L) ids -> token states (B, L, H) and valid lengths (B,): the mean of the last
    `layers` layers' hidden states (1: the last layer's)."""

    def __init__(self, path: str | Path | None, layers: int = 1):
        super().__init__()
        config = checked_config(path, layers)
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
                config=config,
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
        self.layers = layers

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        if ids.ndim != 3 or ids.shape[1] != 3:
            raise DataError(
                f"text_bert: expected (B, 3, L) ids, mask, segments; got {tuple(ids.shape)}"
            )
        input_ids, mask, segments = ids.long().unbind(1)  # (B, L) each
        out = self.bert(
            input_ids=input_ids,
            attention_mask=mask,
            token_type_ids=segments,
            output_hidden_states=self.layers > 1,
        )
        if self.layers == 1:
            return out.last_hidden_state, mask.sum(-1)  # (B, L, H)
        hidden = torch.stack(out.hidden_states[-self.layers :]).mean(0)  # (B, L, H)
        return hidden, mask.sum(-1)
