"""Spectral-band routing (SBR) for one modality: band experts, band router, enhanced features.

`x~ = LayerNorm(x + sum_k alpha_k E_k(x^(k)))` with `alpha = softmax(W pool(x) / tau_band)`,
optionally keeping only the `top_k` largest weights (renormalised).

Shapes: B batch, T time, d width, K bands, h expert width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atsuko.model.bands import BandDecomposition
from atsuko.model.encoders import masked_mean


def mean_band_weights(alpha: Tensor, mask: Tensor | None = None) -> list[float]:
    """(N, K) band weights -> K means, each over the samples that have that band (`mask`
    (N, K), from `band_mask`); 0.0 for a band no sample has. Without short sequences (every
    length >= K) this is the plain mean over samples."""
    alpha = alpha.float()
    if mask is None:
        return alpha.mean(0).tolist()
    mask = mask.to(alpha.device, torch.bool)
    count = mask.sum(0)  # (K,)
    total = (alpha * mask).sum(0)
    return (total / count.clamp(min=1)).tolist()


class BandExperts(nn.Module):
    """One position-wise FFN `d -> h -> d` per band, all bands in one batched product.

    Biases are stored flat (ndim 1), so name/rank-based optimizer groups skip their decay.
    """

    def __init__(self, *, num_bands: int, dim: int, hidden: int):
        super().__init__()
        self.num_bands, self.dim, self.hidden = num_bands, dim, hidden
        self.weight1 = nn.Parameter(torch.empty(num_bands, dim, hidden))
        self.bias1 = nn.Parameter(torch.empty(num_bands * hidden))
        self.weight2 = nn.Parameter(torch.empty(num_bands, hidden, dim))
        self.bias2 = nn.Parameter(torch.empty(num_bands * dim))
        for weight, bias, fan_in in (
            (self.weight1, self.bias1, dim),
            (self.weight2, self.bias2, hidden),
        ):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default range
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def forward(self, bands: Tensor) -> Tensor:
        K = self.num_bands
        hid = torch.einsum("bktd,kdh->bkth", bands, self.weight1)
        hid = F.gelu(hid + self.bias1.view(K, 1, self.hidden))  # (B, K, T, h)
        out = torch.einsum("bkth,khd->bktd", hid, self.weight2)
        return out + self.bias2.view(K, 1, self.dim)  # (B, K, T, d)


class BandRouter(nn.Module):
    """`alpha = softmax(W pool(x) / tau)`: (B, d) -> (B, K), optional top-k renormalised.

    With `mask` (B, K) the softmax runs over each sample's existing bands only: an empty band
    (a sequence shorter than K) gets weight 0 and the others still sum to 1."""

    def __init__(self, *, dim: int, num_bands: int, tau: float = 1.0, top_k: int = 0):
        super().__init__()
        assert tau > 0, f"tau_band must be positive, got {tau}"
        assert 0 <= top_k <= num_bands, f"band_top_k must lie in 0..{num_bands}, got {top_k}"
        self.proj = nn.Linear(dim, num_bands)
        self.tau, self.top_k = tau, top_k

    def forward(self, pooled: Tensor, mask: Tensor | None = None) -> Tensor:
        logits = self.proj(pooled) / self.tau  # (B, K)
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))  # band 0 always exists
        alpha = torch.softmax(logits, dim=-1)  # (B, K)
        if 0 < self.top_k < alpha.shape[-1]:
            keep = torch.zeros_like(alpha).scatter(-1, alpha.topk(self.top_k, dim=-1).indices, 1.0)
            alpha = alpha * keep
            alpha = alpha / alpha.sum(-1, keepdim=True)
        return alpha


class SpectralBandRouting(nn.Module):
    """Band-enhanced features of one modality: (B, T, d) -> (B, T, d), alpha (B, K).

    `band_mask(lengths, T)` (B, K) says which bands each sample has; `alpha` is 0 on the
    others (and their components are zero)."""

    def __init__(
        self,
        *,
        dim: int,
        num_bands: int,
        split: str = "uniform",
        graph: str = "path",
        knn_k: int = 5,
        tau: float = 1.0,
        top_k: int = 0,
        expert_mult: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.decompose = BandDecomposition(
            num_bands=num_bands, split=split, graph=graph, knn_k=knn_k
        )
        self.router = BandRouter(dim=dim, num_bands=num_bands, tau=tau, top_k=top_k)
        self.experts = BandExperts(num_bands=num_bands, dim=dim, hidden=expert_mult * dim)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def band_mask(self, lengths: Tensor, steps: int) -> Tensor:
        """(B, K) bool: the non-empty bands of each sample."""
        return self.decompose.band_mask(lengths, steps)

    def forward(self, x: Tensor, mask: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        bands = self.decompose(x, lengths)  # (B, K, T, d)
        alpha = self.router(masked_mean(x, mask), self.band_mask(lengths, x.shape[1]))  # (B, K)
        mixed = torch.einsum("bk,bktd->btd", alpha, self.experts(bands))
        out = self.norm(x + self.drop(mixed)) * mask[..., None]  # padding stays zero
        return out, alpha
