"""Orthogonal spectral bands of a temporal graph: bases, band edges, cached projectors.

Each sample's valid steps form a graph. Its Laplacian eigenvectors, ascending by eigenvalue,
run from low to high graph frequency; `K` contiguous groups of them span `K` orthogonal
subspaces, and the band component `x^(k) = U_k U_k^T x` is the projection onto the k-th one.
So the bands of a sequence sum to it, are mutually orthogonal along time (per channel) and
split its energy exactly.

- `graph='path'` (default): step t linked to t+1. The Laplacian's eigenbasis is the closed-form
  DCT-II, so no eigen-solver runs; the projectors `P_k` are built once per (length, K, split),
  kept in a byte-bounded cache and applied to all bands with one batched product.
- `graph='knn'`: a per-sample cosine k-NN affinity of the features, eigenbasis by `eigh`
  (data-adaptive, slower; the graph is built from detached features, so no gradient flows
  through the eigen-solver).

Variable lengths (padding at the end): every sample's basis spans its own valid steps; samples
are grouped by length and each group takes one batched product. Padding stays zero.

Shapes: B batch, T time (padded), L a valid length, d channels, K bands.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atsuko.errors import ConfigError, DataError

SPLITS = ("uniform", "log")
GRAPHS = ("path", "knn")


def band_edges(length: int, num_bands: int, split: str = "uniform") -> tuple[int, ...]:
    """Edges `e_0 = 0 < e_1 < ... < e_K = length` of K contiguous, non-empty frequency bands.

    `uniform`: equal groups (the first ones take the remainder: 50 -> 17, 17, 16).
    `log`: edges evenly spaced in log(1 + index), so low frequencies get finer bands.
    """
    if split not in SPLITS:
        raise ConfigError(f"model.band_split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if num_bands < 1:
        raise ConfigError(f"model.num_bands: expected a positive value, got {num_bands}")
    if num_bands > length:
        raise ConfigError(
            f"model.num_bands ({num_bands}) exceeds the valid length {length} of a sequence: "
            f"every band needs at least one graph frequency; lower model.num_bands to at most "
            f"{length} or drop sequences shorter than {num_bands} steps"
        )
    if split == "uniform":
        return tuple(-(-i * length // num_bands) for i in range(num_bands + 1))
    raw = [round((length + 1) ** (i / num_bands)) - 1 for i in range(num_bands + 1)]
    edges = [0]
    for i in range(1, num_bands):  # strictly increasing, leaving one index for each later band
        edges.append(min(max(raw[i], edges[-1] + 1), length - (num_bands - i)))
    edges.append(length)
    return tuple(edges)


def dct_basis(length: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Orthonormal DCT-II basis (L, L): column k is the path Laplacian's k-th eigenvector,
    `u_k(n) = c_k cos(pi k (n + 1/2) / L)`, eigenvalue `2 - 2 cos(pi k / L)` (ascending)."""
    n = torch.arange(length, dtype=torch.float64)
    k = torch.arange(length, dtype=torch.float64)
    basis = torch.cos(math.pi * torch.outer(n + 0.5, k) / length)  # (L, L): [n, k]
    scale = torch.full((length,), math.sqrt(2.0 / length), dtype=torch.float64)
    scale[0] = math.sqrt(1.0 / length)
    return (basis * scale).to(dtype)


def path_eigenvalues(length: int) -> Tensor:
    """Eigenvalues of the path-graph Laplacian in the order of `dct_basis`'s columns."""
    k = torch.arange(length, dtype=torch.float64)
    return 2.0 - 2.0 * torch.cos(math.pi * k / length)


def band_masks(edges: tuple[int, ...], device: torch.device | None = None) -> Tensor:
    """(K, L) 0/1 indicator of which eigenvector index belongs to which band."""
    length = edges[-1]
    index = torch.arange(length, device=device)
    lo = torch.tensor(edges[:-1], device=device)[:, None]
    hi = torch.tensor(edges[1:], device=device)[:, None]
    return ((index >= lo) & (index < hi)).float()  # (K, L)


def projectors_from_basis(basis: Tensor, edges: tuple[int, ...]) -> Tensor:
    """`P_k = U_k U_k^T` for each band: (..., L, L) basis -> (..., K, L, L)."""
    return torch.stack(
        [
            basis[..., lo:hi] @ basis[..., lo:hi].transpose(-1, -2)
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ],
        dim=-3,
    )


class ProjectorCache:
    """Least-recently-used cache of path-graph projectors, bounded in bytes.

    Keyed by (length, K, split, device, dtype). Aligned data needs one entry; unaligned data one
    per distinct valid length (MOSI unaligned, every length present: about 0.7 GB at K=3).
    """

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple, Tensor] = OrderedDict()
        self.bytes = 0

    def get(self, length: int, num_bands: int, split: str, device, dtype) -> Tensor:
        key = (length, num_bands, split, str(device), dtype)
        hit = self.entries.get(key)
        if hit is not None:
            self.entries.move_to_end(key)
            return hit
        edges = band_edges(length, num_bands, split)
        value = projectors_from_basis(dct_basis(length), edges).to(device=device, dtype=dtype)
        self.entries[key] = value
        self.bytes += value.numel() * value.element_size()
        while self.bytes > self.max_bytes and len(self.entries) > 1:
            _, old = self.entries.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()
        return value

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


PROJECTORS = ProjectorCache()


def path_projectors(
    length: int,
    num_bands: int,
    split: str = "uniform",
    *,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Cached (K, L, L) projectors of the path graph's bands."""
    return PROJECTORS.get(length, num_bands, split, device or torch.device("cpu"), dtype)


def knn_laplacian(x: Tensor, k: int) -> Tensor:
    """Laplacian (b, L, L) of a symmetric cosine k-NN graph over the steps of each sequence.

    Edge weights are the (non-negative part of the) cosine similarity; `k` is capped at L - 1.
    """
    b, length, _ = x.shape
    k = min(k, length - 1)
    if k < 1:
        return x.new_zeros(b, length, length)
    unit = F.normalize(x, dim=-1)
    sim = unit @ unit.transpose(1, 2)  # (b, L, L)
    eye = torch.eye(length, dtype=torch.bool, device=x.device)
    top = sim.masked_fill(eye, float("-inf")).topk(k, dim=-1).indices  # (b, L, k)
    adj = torch.zeros_like(sim).scatter(-1, top, sim.gather(-1, top).clamp(min=0))
    adj = torch.maximum(adj, adj.transpose(1, 2))
    return torch.diag_embed(adj.sum(-1)) - adj


def knn_basis(x: Tensor, k: int) -> Tensor:
    """Eigenbasis (b, L, L) of the cosine k-NN Laplacian, ascending eigenvalues; no gradient."""
    with torch.no_grad(), torch.autocast(x.device.type, enabled=False):  # eigh needs fp32
        lap = knn_laplacian(x.detach().float(), k)
        return torch.linalg.eigh(lap).eigenvectors  # (b, L, L): [n, eigen index]


class BandDecomposition(nn.Module):
    """Split (B, T, d) sequences into K orthogonal bands (B, K, T, d); no parameters."""

    def __init__(
        self, *, num_bands: int, split: str = "uniform", graph: str = "path", knn_k: int = 5
    ):
        super().__init__()
        if graph not in GRAPHS:
            raise ConfigError(f"model.graph: expected one of {', '.join(GRAPHS)}, got {graph!r}")
        band_edges(num_bands, num_bands, split)  # validates split and num_bands early
        if graph == "knn" and knn_k < 1:
            raise ConfigError(f"model.knn_k: expected a positive value, got {knn_k}")
        self.num_bands, self.split, self.graph, self.knn_k = num_bands, split, graph, knn_k

    def extra_repr(self) -> str:
        return f"num_bands={self.num_bands}, split={self.split}, graph={self.graph}"

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        B, T, _ = x.shape
        with torch.profiler.record_function("atsuko.band_projection"):
            lens = [T] * B if lengths is None else lengths.tolist()
            if min(lens) < 1 or max(lens) > T:
                raise DataError(
                    f"valid lengths must lie in 1..{T} (the padded length), got "
                    f"{min(lens)}..{max(lens)}"
                )
            groups: dict[int, list[int]] = {}
            for i, n in enumerate(lens):
                groups.setdefault(n, []).append(i)
            if len(groups) == 1 and lens[0] == T:
                return self._bands(x)
            order, pieces = [], []
            for n, rows in groups.items():
                index = torch.tensor(rows, device=x.device)
                bands = self._bands(x[index, :n])  # (b, K, L, d)
                pieces.append(F.pad(bands, (0, 0, 0, T - n)))  # (b, K, T, d), zero padding
                order.extend(rows)
            inverse = torch.argsort(torch.tensor(order, device=x.device))
            return torch.cat(pieces)[inverse]  # (B, K, T, d) in the input's row order

    def _bands(self, x: Tensor) -> Tensor:
        """Bands of sequences that share one valid length: (b, L, d) -> (b, K, L, d)."""
        length = x.shape[1]
        if self.graph == "path":
            proj = path_projectors(
                length, self.num_bands, self.split, device=x.device, dtype=x.dtype
            )  # (K, L, L)
            return torch.einsum("kts,bsd->bktd", proj, x)
        edges = band_edges(length, self.num_bands, self.split)
        basis = knn_basis(x, self.knn_k).to(x.dtype)  # (b, L, L)
        coef = basis.transpose(1, 2) @ x  # (b, L, d): graph-frequency coefficients
        masked = basis[:, None] * band_masks(edges, x.device).to(x.dtype)[None, :, None]
        return masked @ coef[:, None]  # (b, K, L, L) @ (b, 1, L, d) -> (b, K, L, d)
