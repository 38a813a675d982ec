"""Modality-level router with a dual path (pre- and post-attention): fusion weights `w`.

- pre path:  `s_pre_m  = v_pre  . tanh(W_pre  [pool(x~_m); alpha_m])` (shallow, band-aware)
- post path: `s_post_m = v_post . tanh(W_post h_m)` (deep, cross-attended)
- `w = softmax(s / tau_mod)` with `s = s_pre + s_post` (`mix='sum'`), or, for `mix='gate'`, a
  learned per-sample gate `g_m = sigmoid(u_m . [shallow_m; h_m])` and
  `s = 2 (g s_pre + (1 - g) s_post)` (the factor 2 makes `g = 1/2` equal to `sum`).

Every modality has its own path weights (modalities keyed by name, in sorted order).
Shapes: B batch, d width, K bands, M modalities.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from atsuko.errors import ConfigError

MIXES = ("sum", "gate")


def _scorer(dim_in: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))


class ModalityRouter(nn.Module):
    """shallow: m -> (B, d + K), deep: m -> (B, d)  ->  w (B, M), log w (B, M)."""

    def __init__(
        self,
        *,
        modalities: list[str],
        dim: int,
        num_bands: int = 0,
        tau: float = 1.0,
        mix: str = "sum",
    ):
        super().__init__()
        if mix not in MIXES:
            raise ConfigError(f"model.router_mix: expected one of {', '.join(MIXES)}, got {mix!r}")
        assert tau > 0, f"tau_mod must be positive, got {tau}"
        self.modalities, self.tau, self.mix = list(modalities), tau, mix
        self.pre = nn.ModuleDict({m: _scorer(dim + num_bands, dim) for m in self.modalities})
        self.post = nn.ModuleDict({m: _scorer(dim, dim) for m in self.modalities})
        if mix == "gate":
            self.gate = nn.ModuleDict(
                {m: nn.Linear(2 * dim + num_bands, 1) for m in self.modalities}
            )

    def scores(self, shallow: dict[str, Tensor], deep: dict[str, Tensor]) -> Tensor:
        """Unnormalised scores (B, M) before the temperature."""
        out = []
        for m in self.modalities:
            s_pre, s_post = self.pre[m](shallow[m]), self.post[m](deep[m])  # (B, 1) each
            if self.mix == "sum":
                out.append(s_pre + s_post)
            else:
                g = torch.sigmoid(self.gate[m](torch.cat([shallow[m], deep[m]], dim=-1)))
                out.append(2.0 * (g * s_pre + (1.0 - g) * s_post))
        return torch.cat(out, dim=-1)  # (B, M)

    def forward(self, shallow: dict[str, Tensor], deep: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        logits = self.scores(shallow, deep) / self.tau
        return torch.softmax(logits, dim=-1), torch.log_softmax(logits, dim=-1)
