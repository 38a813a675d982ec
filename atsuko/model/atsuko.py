"""The Atsuko model: spectral-band routing, encoders, dual-path modality router, MCM.

Per modality m (keyed by name, iterated in sorted order):
  x_m = proj(input_m)                      (B, T_m, d)  Linear or Conv1d, d_m -> d
  x~_m, alpha_m = SBR(x_m)                 (B, T_m, d), (B, K)      [use_sbr]
  H_m = Encoder(x~_m)                      (B, T_m, d)  positions + masked Transformer
  h_m = pool(CrossAttn(H_m, H_{others}))   (B, d)
then `w = ModalityRouter([pool(x~); alpha], h)` (B, M), `z = sum_m w_m h_m`, `y_hat = head(z)`,
and in training with `use_mcm`, the bimodal branches of `mcm.py`.

The band decomposition runs on the projected features: it is linear along time and a linear
projection is position-wise, so `P_k (x W) = (P_k x) W` and decomposing (B, T, d) is the same as
projecting the bands of (B, T, d_m), at a fraction of the cost (text has 768 channels). With
`proj: conv` the equality holds up to the conv's window at the sequence edges.

Shapes: B batch, T time, d width, K bands, M modalities, C classes.
Tested in `tests/atsuko/model/test_atsuko_model.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from atsuko.config import ModelConfig
from atsuko.errors import ConfigError, DataError
from atsuko.model.band_router import SpectralBandRouting
from atsuko.model.encoders import (
    CrossModalBlock,
    Encoder,
    InputProjection,
    length_mask,
    masked_mean,
)
from atsuko.model.mcm import TASKS, BimodalOutput, MarginalComplementarity, per_sample_loss
from atsuko.model.modality_router import ModalityRouter

TEXT_ENCODERS = ("features", "bert")


@dataclass
class AtsukoOutput:
    pred: Tensor  # (B,) regression | (B, C) logits
    w: Tensor  # (B, M) modality weights, M in sorted(dims) order
    alpha: dict[str, Tensor]  # m -> (B, K) band weights; empty when use_sbr=False
    pooled: dict[str, Tensor]  # m -> (B, d) pooled cross-attended features h_m
    z: Tensor  # (B, d) fused
    bimodal: BimodalOutput | None  # training with use_mcm only: y_{-m}, z_{-m}
    log_w: Tensor | None = None  # (B, M) log of w, computed stably (for KL(c || w))
    # m -> (B, K) bool, the bands each sample has (all but for sequences shorter than K)
    band_mask: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class LossOutput:
    total: Tensor  # scalar, backprop this
    terms: dict[str, float]  # 'task', 'bi', 'mcm', 'kd' (detached floats; 0 when off)
    c: Tensor | None  # (B, M) complementarity distribution, detached


def _check(config: ModelConfig, dims: dict[str, int], num_outputs: int, task: str) -> None:
    """The model's arguments, before any layer is built."""
    if task not in TASKS:
        raise ConfigError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")
    if task == "regression" and num_outputs != 1:
        raise ConfigError(f"regression needs num_outputs 1, got {num_outputs}")
    if task == "classification" and num_outputs < 2:
        raise ConfigError(f"classification needs at least 2 classes, got {num_outputs}")
    if len(dims) < 2:
        raise ConfigError(f"Atsuko fuses at least two modalities, got {sorted(dims)}")
    if config.text_encoder not in TEXT_ENCODERS:
        raise ConfigError(
            f"model.text_encoder: expected one of {', '.join(TEXT_ENCODERS)}, "
            f"got {config.text_encoder!r}"
        )


class Atsuko(nn.Module):
    def __init__(self, *, config: ModelConfig, dims: dict[str, int], num_outputs: int, task: str):
        super().__init__()
        cfg = self.config = config
        _check(cfg, dims, num_outputs, task)
        self.task, self.num_outputs = task, num_outputs
        self.modalities = sorted(dims)
        d = cfg.hidden
        dims = dict(dims)
        self.text_bert = None
        if cfg.text_encoder == "bert" and not cfg.bert_freeze:  # frozen: states are features
            if "text" not in dims:
                raise ConfigError(
                    f"model.text_encoder 'bert' needs a 'text' modality, got {self.modalities}"
                )
            from atsuko.model.bert import BertTextEncoder

            self.text_bert = BertTextEncoder(cfg.bert_path, cfg.bert_layers)
            dims["text"] = self.text_bert.dim

        def per_modality(build) -> nn.ModuleDict:
            return nn.ModuleDict({m: build(m) for m in self.modalities})

        self.proj = per_modality(
            lambda m: InputProjection(
                kind=cfg.proj, dim_in=dims[m], dim=d, kernel=cfg.proj_kernel, dropout=cfg.dropout
            )
        )
        self.sbr = (
            per_modality(
                lambda m: SpectralBandRouting(
                    dim=d,
                    num_bands=cfg.num_bands,
                    split=cfg.band_split,
                    graph=cfg.graph,
                    knn_k=cfg.knn_k,
                    tau=cfg.tau_band,
                    top_k=cfg.band_top_k,
                    expert_mult=cfg.expert_mult,
                    dropout=cfg.dropout,
                )
            )
            if cfg.use_sbr
            else None
        )
        self.encoder = per_modality(
            lambda m: Encoder(dim=d, layers=cfg.layers, heads=cfg.heads, dropout=cfg.dropout)
        )
        self.cross = per_modality(
            lambda m: CrossModalBlock(dim=d, heads=cfg.heads, dropout=cfg.dropout)
        )
        self.router = ModalityRouter(
            modalities=self.modalities,
            dim=d,
            num_bands=cfg.num_bands if cfg.use_sbr else 0,
            tau=cfg.tau_mod,
            mix=cfg.router_mix,
        )
        self.head = nn.Sequential(
            nn.Linear(d, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, num_outputs)
        )
        self.mcm = (
            MarginalComplementarity(
                modalities=self.modalities,
                dim=d,
                num_outputs=num_outputs,
                task=task,
                tau_c=cfg.tau_c,
                c_ema=cfg.c_ema,
                dropout=cfg.dropout,
            )
            if cfg.use_mcm
            else None
        )

    def _inputs(
        self,
        features: dict[str, Tensor],
        lengths: dict[str, Tensor],
        extras: dict[str, Tensor] | None,
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        feats, lens = dict(features), dict(lengths)
        if self.text_bert is not None:
            if not extras or "text_bert" not in extras:
                raise DataError(
                    "model.text_encoder 'bert' needs the 'text_bert' token ids in "
                    "the batch extras; this feature file has none"
                )
            feats["text"], lens["text"] = self.text_bert(extras["text_bert"])
        for m in self.modalities:
            if m not in feats or m not in lens:
                raise DataError(
                    f"batch lacks modality '{m}' (features or lengths); the model "
                    f"was built for {self.modalities}"
                )
        # an empty sequence is read as one zero step, so attention always has a key
        return feats, {m: lens[m].clamp(min=1) for m in self.modalities}

    def forward(
        self,
        features: dict[str, Tensor],
        lengths: dict[str, Tensor],
        extras: dict[str, Tensor] | None = None,
        *,
        branches: bool | None = None,
    ) -> AtsukoOutput:
        """`branches`: run the MCM branches; None (default) in training only. `True` is for
        analysis (e.g. the complementarity distribution of a test split in eval mode)."""
        feats, lens = self._inputs(features, lengths, extras)
        mask, alpha, shallow, H, band_mask = {}, {}, {}, {}, {}
        for m in self.modalities:
            mask[m] = length_mask(lens[m], feats[m].shape[1])  # (B, T_m)
            x = self.proj[m](feats[m], mask[m])  # (B, T_m, d)
            if self.sbr is not None:
                x, alpha[m] = self.sbr[m](x, mask[m], lens[m])  # (B, T_m, d), (B, K)
                band_mask[m] = self.sbr[m].band_mask(lens[m], x.shape[1])  # (B, K)
            pooled_x = masked_mean(x, mask[m])  # (B, d)
            shallow[m] = torch.cat([pooled_x, alpha[m]], dim=-1) if alpha else pooled_x
            H[m] = self.encoder[m](x, mask[m])  # (B, T_m, d)

        h = {}
        for m in self.modalities:
            others = [j for j in self.modalities if j != m]
            context = torch.cat([H[j] for j in others], dim=1)  # (B, sum T_j, d)
            context_mask = torch.cat([mask[j] for j in others], dim=1)
            h[m] = masked_mean(self.cross[m](H[m], mask[m], context, context_mask), mask[m])

        w, log_w = self.router(shallow, h)  # (B, M) each
        z = torch.einsum("bm,bmd->bd", w, torch.stack([h[m] for m in self.modalities], dim=1))
        with torch.autocast(z.device.type, enabled=False):  # predictions are scored: float32
            pred = self.head(z.float())  # (B, out)
        pred = pred.squeeze(-1) if self.task == "regression" else pred
        bimodal = None
        if self.mcm is not None and (self.training if branches is None else branches):
            bimodal = self.mcm({m: masked_mean(H[m], mask[m]) for m in self.modalities})
        return AtsukoOutput(
            pred=pred,
            w=w,
            alpha=alpha,
            pooled=h,
            z=z,
            bimodal=bimodal,
            log_w=log_w,
            band_mask=band_mask,
        )

    def loss(self, out: AtsukoOutput, labels: Tensor, epoch: int) -> LossOutput:
        """Task loss (L1 regression / cross-entropy) plus, in training with MCM, the weighted
        bimodal, KL(c || w) and distillation terms; KL(c || w) is off while
        `epoch <= mcm_warmup_epochs` (epochs are 1-based)."""
        cfg = self.config
        full = per_sample_loss(out.pred, labels, self.task)  # (B,)
        task = full.mean()
        zero = task.new_zeros(())
        if out.bimodal is None or self.mcm is None:
            bi = mcm = kd = zero
            total, c = task, None
        else:
            t = self.mcm.losses(
                out.bimodal,
                labels=labels,
                full_loss=full,
                z=out.z,
                log_w=out.log_w if out.log_w is not None else out.w.log(),
            )
            bi, mcm, kd, c = t.bi, t.mcm, t.kd, t.c
            lambda_mcm = cfg.lambda_mcm if epoch > cfg.mcm_warmup_epochs else 0.0
            total = task + cfg.lambda_bi * bi + lambda_mcm * mcm + cfg.lambda_kd * kd
        values = torch.stack([t.detach().float() for t in (task, bi, mcm, kd)]).tolist()  # 1 sync
        return LossOutput(
            total=total, terms=dict(zip(("task", "bi", "mcm", "kd"), values, strict=True)), c=c
        )

    def optimizer_groups(self, weight_decay: float, bert_lr: float | None = None) -> list[dict]:
        """AdamW groups by rank: matrices decay; biases, norm weights (ndim 1) do not. A
        fine-tuned BERT encoder's parameters form their own groups at `bert_lr` (when given;
        the others take the optimiser's lr)."""
        bert = set() if self.text_bert is None else {id(p) for p in self.text_bert.parameters()}
        groups = []
        for own, extra in ((False, {}), (True, {} if bert_lr is None else {"lr": bert_lr})):
            params = [p for p in self.parameters() if p.requires_grad and (id(p) in bert) == own]
            groups += [
                {
                    "params": [p for p in params if p.ndim >= 2],
                    "weight_decay": weight_decay,
                    **extra,
                },
                {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, **extra},
            ]
        return [g for g in groups if g["params"]]
