"""Orthogonal spectral bands of a temporal graph: bases, band edges, cached projectors.

Each sample's valid steps form a graph. Its Laplacian eigenvectors, ascending by eigenvalue,
run from low to high graph frequency; `K` contiguous groups of them span `K` orthogonal
subspaces, and the band component `x^(k) = U_k U_k^T x` is the projection onto the k-th one.
So the bands of a sequence sum to it, are mutually orthogonal along time (per channel) and
split its energy exactly.

- `graph='path'` (default): step t linked to t+1. The Laplacian's eigenbasis is the closed-form
  DCT-II, so no eigen-solver runs; for a batch of full-length sequences the projectors `P_k`
  are built once per (length, K, split), kept in a byte-bounded cache and applied to all bands
  with one batched product.
- `graph='knn'`: a per-sample cosine k-NN affinity of the features, eigenbasis by `eigh`
  (data-adaptive, slower; the graph is built from detached features, so no gradient flows
  through the eigen-solver).

Variable lengths (padding at the end): every sample's basis spans its own valid steps. The
whole batch is projected at once, with no loop over lengths and one host sync per call (the
batch's largest length and band widths): the path graph's DCT bases are computed on the device
from the lengths (an exact integer phase `k (2n + 1) mod 4L`), the k-NN graph's Laplacians are
padded with an isolated, high-frequency block that `eigh` sorts past the valid eigenvectors.
Each band then takes one batched product over its own window of eigenvectors. Padding stays
zero.

Short sequences: a sample with fewer valid steps than bands has fewer graph frequencies than
bands (see `band_edges`); the bands it cannot fill are empty for it, carry zeros, and
`band_mask` says which bands a sample has.

Shapes: B batch, T time (padded), L a valid length, d channels, K bands, W a band's width.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atsuko.errors import ConfigError, DataError

SPLITS = ("uniform", "log")
GRAPHS = ("path", "knn")


def band_edges(length: int, num_bands: int, split: str = "uniform") -> tuple[int, ...]:
    """Edges `0 = e_0 <= e_1 <= ... <= e_K = length` of K contiguous frequency bands: band k
    holds the eigenvector indices `e_k .. e_{k+1} - 1`.

    `uniform`: equal groups (the first ones take the remainder: 50 -> 17, 17, 16), edges
    `ceil(i L / K)`.
    `log`: edges evenly spaced in log(1 + index), so low frequencies get finer bands.

    When `length >= num_bands` every band is non-empty (edges strictly increasing). A shorter
    sequence (down to one step) has fewer frequencies than bands: each frequency goes to the
    band of its relative position, the edges repeat, and a repeated edge is an empty band.
    Band 0 always holds the constant (lowest) frequency; a one-step sequence fills band 0 only.
    `num_bands < 1`, an unknown split or a length below 1 is an error.
    """
    if split not in SPLITS:
        raise ConfigError(f"model.band_split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if num_bands < 1:
        raise ConfigError(f"model.num_bands: expected a positive value, got {num_bands}")
    if length < 1:
        raise DataError(f"a sequence needs at least one valid step, got length {length}")
    if split == "uniform":
        return tuple(-(-i * length // num_bands) for i in range(num_bands + 1))
    raw = [round((length + 1) ** (i / num_bands)) - 1 for i in range(num_bands + 1)]
    edges = [0]
    if length < num_bands:  # non-decreasing (empty bands allowed); band 0 holds index 0
        edges.extend(min(max(raw[i], 1), length) for i in range(1, num_bands))
    else:  # strictly increasing, leaving one index for each later band
        for i in range(1, num_bands):
            edges.append(min(max(raw[i], edges[-1] + 1), length - (num_bands - i)))
    edges.append(length)
    return tuple(edges)


@functools.lru_cache(maxsize=64)
def _edge_table(steps: int, num_bands: int, split: str, device: str) -> Tensor:
    """(steps + 1, K + 1) int64 on `device`: row L holds `band_edges(L)` (row 0: zeros)."""
    rows = [(0,) * (num_bands + 1)]
    rows += [band_edges(n, num_bands, split) for n in range(1, steps + 1)]
    return torch.tensor(rows, dtype=torch.int64, device=device)


def edge_table(steps: int, num_bands: int, split: str, device) -> Tensor:
    """Band edges of every valid length up to `steps`, cached per device: index it by lengths."""
    return _edge_table(steps, num_bands, split, str(torch.device(device)))


def band_mask(lengths: Tensor, steps: int, num_bands: int, split: str = "uniform") -> Tensor:
    """(B,) valid lengths -> (B, K) bool: which bands each sample has (non-empty band)."""
    edges = edge_table(steps, num_bands, split, lengths.device)[lengths.clamp(0, steps)]
    return edges[:, 1:] > edges[:, :-1]


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
    """Least-recently-used cache of path-graph projectors and bases, bounded in bytes.

    Projectors (K, L, L) for batches of one length, keyed by (length, K, split, device, dtype):
    aligned data needs one entry. Bases `dct_basis(L)` zero-padded to (T, T) for batches of
    mixed lengths, keyed by (length, T, device, dtype): unaligned data one per distinct valid
    length (MOSI unaligned, every length present: about 0.7 GB).
    """

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple, Tensor] = OrderedDict()
        self.bytes = 0

    def _cached(self, key: tuple, build) -> Tensor:
        hit = self.entries.get(key)
        if hit is not None:
            self.entries.move_to_end(key)
            return hit
        value = build()
        self.entries[key] = value
        self.bytes += value.numel() * value.element_size()
        while self.bytes > self.max_bytes and len(self.entries) > 1:
            _, old = self.entries.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()
        return value

    def get(self, length: int, num_bands: int, split: str, device, dtype) -> Tensor:
        def build() -> Tensor:
            edges = band_edges(length, num_bands, split)
            return projectors_from_basis(dct_basis(length), edges).to(device=device, dtype=dtype)

        return self._cached((length, num_bands, split, str(device), dtype), build)

    def basis(self, length: int, steps: int, device, dtype) -> Tensor:
        """`dct_basis(length)` transposed (eigenvectors as rows), zero-padded to (T, T)."""

        def build() -> Tensor:
            padded = F.pad(dct_basis(length).T, (0, steps - length, 0, steps - length))
            return padded.contiguous().to(device=device, dtype=dtype)

        return self._cached(("basis", length, steps, str(device), dtype), build)

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


def knn_basis_padded(x: Tensor, lengths: Tensor, k: int) -> Tensor:
    """Per-sample k-NN eigenbases of sequences of different lengths, in one batched `eigh`:
    (B, T, d), (B,) -> (B, T, T) whose first L_b columns are sample b's `knn_basis` (up to the
    sign of each eigenvector) on its valid steps, about zero on padding; no gradient.

    Neighbours are chosen among valid steps only, and the padding steps form an isolated block
    with a diagonal above the Gershgorin bound `2 max degree` of the valid Laplacian, so `eigh`
    sorts their eigenvectors after the valid ones."""
    B, T, _ = x.shape
    with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
        x = x.detach().float()
        valid = torch.arange(T, device=x.device)[None, :] < lengths[:, None]  # (B, T)
        pair = valid[:, :, None] & valid[:, None, :]  # (B, T, T)
        k = min(k, T - 1)
        if k >= 1:
            unit = F.normalize(x, dim=-1)
            eye = torch.eye(T, dtype=torch.bool, device=x.device)
            sim = (unit @ unit.transpose(1, 2)).masked_fill(eye | ~pair, float("-inf"))
            top = sim.topk(k, dim=-1).indices  # (B, T, k)
            adj = torch.zeros_like(sim).scatter(-1, top, sim.gather(-1, top).clamp(min=0))
            adj = torch.maximum(adj, adj.transpose(1, 2))  # zero on padding rows and columns
        else:
            adj = x.new_zeros(B, T, T)
        degree = adj.sum(-1)  # (B, T)
        high = 2 * degree.amax(-1, keepdim=True) + 1  # (B, 1): above every valid eigenvalue
        lap = torch.diag_embed(torch.where(valid, degree, high)) - adj
        return torch.linalg.eigh(lap).eigenvectors  # (B, T, T)


def path_basis(lengths: list[int], steps: int, *, device=None, dtype=torch.float32) -> Tensor:
    """Per-sample DCT-II bases as rows: B lengths -> (B, steps, steps), sample b's
    `dct_basis(L_b).T` (row j: the j-th eigenvector) in its top-left corner, zeros elsewhere.
    Each length's basis is built once and cached on the device; a batch is one stack of
    cached tensors (no host-device copy once warm)."""
    device = device or torch.device("cpu")
    return torch.stack([PROJECTORS.basis(n, steps, device, dtype) for n in lengths])


def project_windows(rows: Tensor, x: Tensor, edges: Tensor, widths: list[int]) -> Tensor:
    """Bands of a batch from per-sample bases: `rows` (B, S, S) holds each sample's
    eigenvectors as rows (`rows[b, j, n] = u_j(n)`, S >= T), x (B, T, d), edges (B, K + 1),
    the batch's widest window per band -> (B, K, T, d). Band k of sample b is
    `U_k U_k^T x_b` over its eigenvectors `e_k .. e_{k+1} - 1`: one batched product per band
    over a window of `widths[k]` rows (coefficients past the sample's own band masked)."""
    B, T, d = x.shape
    S = rows.shape[1]
    coef = rows[:, :T, :T] @ x  # (B, T, d): graph-frequency coefficients (S >= T)
    flat_rows, flat_coef = rows.reshape(B * S, S), coef.reshape(B * T, d)
    out = []
    for k, width in enumerate(widths):
        if width == 0:  # no sample of the batch has this band
            out.append(x.new_zeros(B, T, d))
            continue
        index = edges[:, k : k + 1] + torch.arange(width, device=x.device)  # (B, W)
        keep = (index < edges[:, k + 1 : k + 2]).to(x.dtype)[..., None]  # (B, W, 1)
        index = index.clamp(max=T - 1)
        base = torch.arange(B, device=x.device)[:, None]
        window = flat_rows.index_select(0, (base * S + index).reshape(-1))  # (B W, S)
        window = window.view(B, width, S)[:, :, :T]  # (B, W, T)
        picked = flat_coef.index_select(0, (base * T + index).reshape(-1)).view(B, width, d)
        out.append(window.transpose(1, 2) @ (picked * keep))  # (B, T, W) @ (B, W, d)
    return torch.stack(out, dim=1)


class BandDecomposition(nn.Module):
    """Split (B, T, d) sequences into K orthogonal bands (B, K, T, d); no parameters."""

    def __init__(
        self, *, num_bands: int, split: str = "uniform", graph: str = "path", knn_k: int = 5
    ):
        super().__init__()
        if graph not in GRAPHS:
            raise ConfigError(f"model.graph: expected one of {', '.join(GRAPHS)}, got {graph!r}")
        band_edges(1, num_bands, split)  # validates split and num_bands early
        if graph == "knn" and knn_k < 1:
            raise ConfigError(f"model.knn_k: expected a positive value, got {knn_k}")
        self.num_bands, self.split, self.graph, self.knn_k = num_bands, split, graph, knn_k

    def extra_repr(self) -> str:
        return f"num_bands={self.num_bands}, split={self.split}, graph={self.graph}"

    def band_mask(self, lengths: Tensor | None, steps: int, batch: int = 1) -> Tensor:
        """(B, K) bool: which bands each sample has (all of them once its length >= K)."""
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.int64)
        return band_mask(lengths.clamp(1, steps), steps, self.num_bands, self.split)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        B, T, _ = x.shape
        with torch.profiler.record_function("atsuko.band_projection"):
            if lengths is None:
                return self._bands(x)
            lengths = lengths.to(x.device)
            lens = lengths.tolist()  # the one host sync of the call
            low, high = min(lens), max(lens)
            if low < 1 or high > T:
                raise DataError(
                    f"valid lengths must lie in 1..{T} (the padded length), got {low}..{high}"
                )
            if low == high == T:  # aligned data: the cached projectors (or one eigh)
                return self._bands(x)
            if low == high:
                return F.pad(self._bands(x[:, :high]), (0, 0, 0, T - high))
            edges = edge_table(T, self.num_bands, self.split, x.device)[lengths]  # (B, K + 1)
            present = [self._edges(n) for n in set(lens)]  # the batch's distinct lengths
            widths = [  # the widest window of each band in this batch
                max(e[k + 1] - e[k] for e in present) for k in range(self.num_bands)
            ]
            x = x[:, :high]  # the batch's longest sequence: no frequency lies beyond it
            if self.graph == "path":
                rows = path_basis(lens, T, device=x.device, dtype=x.dtype)  # (B, T, T)
                bands = project_windows(rows, x, edges, widths)
            else:
                basis = knn_basis_padded(x, lengths, self.knn_k).to(x.dtype)  # (B, n, j)
                bands = project_windows(basis.transpose(1, 2).contiguous(), x, edges, widths)
                valid = torch.arange(high, device=x.device)[None, :] < lengths[:, None]
                bands = bands * valid[:, None, :, None].to(x.dtype)  # exact zeros on padding
            return F.pad(bands, (0, 0, 0, T - high))  # (B, K, T, d), zero padding

    def _edges(self, length: int) -> tuple[int, ...]:
        return band_edges(length, self.num_bands, self.split)

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
