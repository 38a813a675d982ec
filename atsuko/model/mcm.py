"""Marginal Complementarity Module (MCM): bimodal branches and the losses they supervise.

For each modality m, a light branch `f_{-m}` fuses the pooled unimodal encoder features of the
*other* modalities (taken before cross-modal attention, so they carry nothing of m) with its
own small head: `z_{-m}`, `y_{-m}`. Then, per sample,

- `delta_m = loss(y_{-m}, y) - loss(y_hat, y)` (detached): how much removing m hurts;
- `c = softmax(delta / tau_c)` over modalities, no gradient; with `c_ema > 0` the per-sample
  `c` is mixed with a moving average of the batch-mean `c` (a buffer):
  `c <- c_ema * running + (1 - c_ema) * c`, `running <- mean_B(c)` after the update;
- `L_mcm = KL(c || w)` (batch mean), `L_kd = mean_m ||g_m(z_{-m}) - stopgrad(z)||^2 / d`
  (mean over width, so lambda_kd does not depend on `hidden`), `L_bi = mean_m loss(y_{-m}, y)`.

The branches run only in training; `Atsuko` skips them in eval mode.
Shapes: B batch, d width, M modalities, C classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TASKS = ("regression", "classification")


@dataclass
class BimodalOutput:
    preds: dict[str, Tensor]  # m -> y_{-m}: (B,) regression | (B, C) logits
    z: dict[str, Tensor]  # m -> z_{-m}: (B, d)


@dataclass
class MCMTerms:
    bi: Tensor  # scalar, mean_m loss(y_{-m}, y)
    mcm: Tensor  # scalar, KL(c || w)
    kd: Tensor  # scalar, feature distillation
    c: Tensor  # (B, M), detached


def per_sample_loss(pred: Tensor, target: Tensor, task: str) -> Tensor:
    """(B,) task loss per sample: absolute error (regression) or cross-entropy (classes).

    Regression uses L1, the field's choice for MOSI/MOSEI/SIMS (the metrics report MAE)."""
    if task == "regression":
        if pred.shape != target.shape:
            raise ValueError(
                f"regression: prediction {tuple(pred.shape)} and labels "
                f"{tuple(target.shape)} must both be (B,)"
            )
        return (pred.float() - target.float()).abs()
    if task == "classification":
        if pred.ndim != 2 or target.shape != pred.shape[:1]:
            raise ValueError(
                f"classification: expected logits (B, C) and labels (B,), got "
                f"{tuple(pred.shape)} and {tuple(target.shape)}"
            )
        return F.cross_entropy(pred.float(), target.long(), reduction="none")
    raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")


def complementarity(delta: Tensor, tau: float) -> Tensor:
    """`softmax(delta / tau)` over modalities: (B, M) -> (B, M), rows sum to one, no gradient."""
    return torch.softmax(delta.detach().float() / tau, dim=-1)


def kl_to_router(c: Tensor, log_w: Tensor) -> Tensor:
    """`KL(c || w)`, batch mean; `c` (B, M) is a fixed target, `log_w` (B, M) the router's."""
    if c.shape != log_w.shape or c.ndim != 2:
        raise ValueError(
            f"c and log w must both be (B, M), got {tuple(c.shape)}, {tuple(log_w.shape)}"
        )
    return F.kl_div(log_w.float(), c.detach().float(), reduction="batchmean")


class MarginalComplementarity(nn.Module):
    """Bimodal branches `f_{-m}`, their heads, the distillation maps `g_m` and the `c` buffer."""

    def __init__(
        self,
        *,
        modalities: list[str],
        dim: int,
        num_outputs: int,
        task: str,
        tau_c: float = 1.0,
        c_ema: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        assert len(modalities) >= 2, "MCM needs at least two modalities"
        assert tau_c > 0 and 0 <= c_ema < 1, f"tau_c > 0 and 0 <= c_ema < 1, got {tau_c}, {c_ema}"
        self.modalities, self.task = list(modalities), task
        self.tau_c, self.c_ema = tau_c, c_ema
        n_in = (len(self.modalities) - 1) * dim
        self.fuse = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(n_in, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim)
                )
                for m in self.modalities
            }
        )
        self.head = nn.ModuleDict({m: nn.Linear(dim, num_outputs) for m in self.modalities})
        self.distill = nn.ModuleDict({m: nn.Linear(dim, dim) for m in self.modalities})
        M = len(self.modalities)
        self.register_buffer("c_running", torch.full((M,), 1.0 / M))

    def others(self, m: str) -> list[str]:
        return [j for j in self.modalities if j != m]

    def forward(self, unimodal: dict[str, Tensor]) -> BimodalOutput:
        """unimodal: m -> (B, d) pooled encoder features (before cross-modal attention)."""
        preds, zs = {}, {}
        for m in self.modalities:
            z = self.fuse[m](torch.cat([unimodal[j] for j in self.others(m)], dim=-1))  # (B, d)
            y = self.head[m](z)  # (B, out)
            preds[m] = y.squeeze(-1) if self.task == "regression" else y
            zs[m] = z
        return BimodalOutput(preds=preds, z=zs)

    def target(self, delta: Tensor) -> Tensor:
        """The complementarity distribution (B, M) from marginal contributions (B, M)."""
        c = complementarity(delta, self.tau_c)
        if self.c_ema > 0:
            c = self.c_ema * self.c_running.to(c) + (1.0 - self.c_ema) * c
            if self.training:
                self.c_running.copy_(c.mean(0).to(self.c_running))
        return c.detach()

    def losses(
        self, bimodal: BimodalOutput, *, labels: Tensor, full_loss: Tensor, z: Tensor, log_w: Tensor
    ) -> MCMTerms:
        """full_loss: (B,) per-sample task loss of the full model; z (B, d); log_w (B, M)."""
        bi_losses = torch.stack(
            [per_sample_loss(bimodal.preds[m], labels, self.task) for m in self.modalities], dim=-1
        )  # (B, M)
        c = self.target(bi_losses.detach() - full_loss.detach()[:, None])
        kd = torch.stack(
            [
                F.mse_loss(self.distill[m](bimodal.z[m]).float(), z.detach().float())
                for m in self.modalities
            ]
        ).mean()
        return MCMTerms(bi=bi_losses.mean(), mcm=kl_to_router(c, log_w), kd=kd, c=c)
