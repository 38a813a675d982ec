"""Band decomposition: orthonormal bases, bands that partition them, for both graphs."""

import pytest
import torch

from atsuko.errors import ConfigError, DataError
from atsuko.model.bands import (
    BandDecomposition,
    ProjectorCache,
    band_edges,
    dct_basis,
    knn_basis,
    knn_laplacian,
    path_eigenvalues,
    path_projectors,
    projectors_from_basis,
)

ATOL = 1e-4


def padded(lengths, T=20, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    valid = (torch.arange(T)[None, :] < lengths[:, None]).float()[..., None]
    return torch.randn(len(lengths), T, d, generator=g) * valid, lengths


def check_invariants(x, bands):
    """Sum to x; mutually orthogonal along time per channel; energy kept."""
    assert torch.allclose(bands.sum(1), x, atol=ATOL)
    gram = torch.einsum("bjtd,bktd->bjkd", bands, bands)  # (B, K, K, d)
    K = bands.shape[1]
    off = gram * (1 - torch.eye(K))[None, :, :, None]
    assert off.abs().max() < ATOL
    energy = (bands**2).sum((1, 2))  # (B, d)
    assert torch.allclose(energy, (x**2).sum(1), atol=ATOL, rtol=1e-4)


def test_uniform_edges_match_the_recipe():
    assert band_edges(50, 3, "uniform") == (0, 17, 34, 50)
    assert band_edges(7, 7, "uniform") == tuple(range(8))
    assert band_edges(10, 1, "log") == (0, 10)


@pytest.mark.parametrize("split", ["uniform", "log"])
@pytest.mark.parametrize("length", [1, 2, 5, 8, 50, 375, 500])
def test_every_band_is_non_empty_when_the_sequence_is_at_least_k_long(split, length):
    for K in range(1, min(length, 8) + 1):
        edges = band_edges(length, K, split)
        assert edges[0] == 0 and edges[-1] == length and len(edges) == K + 1
        assert all(a < b for a, b in zip(edges[:-1], edges[1:], strict=True))


def test_log_split_is_finer_at_low_frequency():
    sizes = torch.diff(torch.tensor(band_edges(50, 3, "log")))
    assert sizes[0] < sizes[1] < sizes[2]


def _edges_before(length, num_bands, split):
    """band_edges as it was before short sequences were allowed (length >= num_bands)."""
    if split == "uniform":
        return tuple(-(-i * length // num_bands) for i in range(num_bands + 1))
    raw = [round((length + 1) ** (i / num_bands)) - 1 for i in range(num_bands + 1)]
    edges = [0]
    for i in range(1, num_bands):
        edges.append(min(max(raw[i], edges[-1] + 1), length - (num_bands - i)))
    return (*edges, length)


@pytest.mark.parametrize("split", ["uniform", "log"])
def test_edges_of_sequences_at_least_k_long_are_unchanged(split):
    for length in range(1, 601):
        for K in range(1, min(length, 12) + 1):
            assert band_edges(length, K, split) == _edges_before(length, K, split)


@pytest.mark.parametrize("split", ["uniform", "log"])
def test_shorter_sequences_have_empty_bands(split):
    for K in range(2, 13):
        for length in range(1, K):
            edges = band_edges(length, K, split)
            assert edges[0] == 0 and edges[-1] == length and len(edges) == K + 1
            assert all(a <= b for a, b in zip(edges[:-1], edges[1:], strict=True))
            assert edges[1] >= 1, "band 0 holds the constant frequency"
            filled = sum(b > a for a, b in zip(edges[:-1], edges[1:], strict=True))
            if split == "uniform":  # one frequency per band, at its relative position
                assert filled == length
            else:  # log position: the high frequencies may share a band
                assert 1 <= filled <= length
        assert band_edges(1, K, split) == (0,) + (1,) * K  # one step fills band 0 only
    assert band_edges(3, 8, "uniform") == (0, 1, 1, 2, 2, 2, 3, 3, 3)  # ceil(3 i / 8)
    with pytest.raises(DataError, match="at least one valid step"):
        band_edges(0, 3)


@pytest.mark.parametrize("graph", ["path", "knn"])
@pytest.mark.parametrize("split", ["uniform", "log"])
def test_short_sequences_split_into_their_existing_bands(graph, split):
    lengths = [20, 1, 2, 3, 7, 5]
    x, lens = padded(lengths, T=20)
    x = (x + 2) * (x != 0)  # connected k-NN graphs: no repeated eigenvalue across bands
    dec = BandDecomposition(num_bands=8, split=split, graph=graph, knn_k=3)
    bands = dec(x, lens)
    check_invariants(x, bands)
    present = dec.band_mask(lens, 20)
    assert present.shape == (6, 8) and present[:, 0].all()
    filled = [len(set(band_edges(n, 8, split))) - 1 for n in lengths]
    assert present.sum(1).tolist() == filled
    assert bands[~present].abs().max() == 0, "an empty band carries zeros"
    for i, n in enumerate(lengths):
        assert bands[i, :, n:].abs().sum() == 0, "padding stays zero"
        alone = dec(x[i : i + 1, :n])  # the same sample, unpadded
        assert torch.allclose(bands[i : i + 1, :, :n], alone, atol=ATOL)


def test_one_host_sync_per_call_whatever_the_lengths(monkeypatch):
    """No loop over length groups: one `tolist` per call, no `item`, no new host tensors."""
    calls = {"tolist": 0, "item": 0, "tensor": 0}
    for name in ("tolist", "item"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _name=name, _original=original, **k):
            calls[_name] += 1
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    x, lens = padded(list(range(3, 23)), T=22)
    original_tensor = torch.tensor

    def tensor(*a, **k):
        calls["tensor"] += 1
        return original_tensor(*a, **k)

    for graph in ("path", "knn"):
        dec = BandDecomposition(num_bands=4, graph=graph)
        dec(x, lens)  # warm the edge table
        calls.update(tolist=0, item=0, tensor=0)
        monkeypatch.setattr(torch, "tensor", tensor)
        dec(x, lens)
        monkeypatch.setattr(torch, "tensor", original_tensor)
        assert calls == {"tolist": 1, "item": 0, "tensor": 0}, graph


def test_bad_choices_are_config_errors():
    with pytest.raises(ConfigError, match="band_split"):
        band_edges(10, 2, "mel")
    with pytest.raises(ConfigError, match="graph"):
        BandDecomposition(num_bands=2, graph="ring")


def test_dct_basis_is_orthonormal():
    U = dct_basis(37)
    assert torch.allclose(U.T @ U, torch.eye(37, dtype=U.dtype), atol=1e-10)


@pytest.mark.parametrize("length", [2, 9, 50])
def test_closed_form_equals_eigh_of_the_path_laplacian(length):
    adj = torch.diag(torch.ones(length - 1, dtype=torch.float64), 1)
    adj = adj + adj.T
    lap = torch.diag(adj.sum(1)) - adj
    values, vectors = torch.linalg.eigh(lap)
    assert torch.allclose(values, path_eigenvalues(length), atol=1e-10)
    U = dct_basis(length)
    assert torch.allclose(lap @ U, U * path_eigenvalues(length), atol=1e-10)
    for split in ("uniform", "log"):
        edges = band_edges(length, min(3, length), split)
        # eigenvalues are distinct, so the band projectors agree whatever the eigenvector signs
        ref = projectors_from_basis(vectors, edges)
        assert torch.allclose(projectors_from_basis(U, edges), ref, atol=1e-10)


@pytest.mark.parametrize("graph", ["path", "knn"])
@pytest.mark.parametrize("split", ["uniform", "log"])
def test_aligned_bands_are_an_orthogonal_split(graph, split):
    x, _ = padded([20, 20, 20], T=20)
    bands = BandDecomposition(num_bands=4, split=split, graph=graph, knn_k=3)(x)
    assert bands.shape == (3, 4, 20, 6)
    check_invariants(x, bands)


@pytest.mark.parametrize("graph", ["path", "knn"])
def test_variable_lengths_use_each_samples_own_basis(graph):
    lengths = [20, 13, 7, 13, 3]
    x, lens = padded(lengths, T=20)
    dec = BandDecomposition(num_bands=3, graph=graph, knn_k=2)
    bands = dec(x, lens)
    check_invariants(x, bands)
    for i, n in enumerate(lengths):
        assert bands[i, :, n:].abs().sum() == 0, "padding stays zero"
        alone = dec(x[i : i + 1, :n])  # the same sample, unpadded
        assert torch.allclose(bands[i : i + 1, :, :n], alone, atol=ATOL)


def test_path_bands_are_low_mid_high_frequency():
    T = 30
    t = torch.arange(T, dtype=torch.float64)
    low = torch.cos(torch.pi * 1 * (t + 0.5) / T)
    high = torch.cos(torch.pi * 28 * (t + 0.5) / T)
    x = (low + high).float()[None, :, None]  # (1, T, 1)
    bands = BandDecomposition(num_bands=3)(x)
    assert torch.allclose(bands[0, 0, :, 0], low.float(), atol=ATOL)
    assert bands[0, 1].abs().max() < ATOL
    assert torch.allclose(bands[0, 2, :, 0], high.float(), atol=ATOL)


def test_gradients_flow_through_the_projection():
    x, lens = padded([20, 11], T=20)
    x.requires_grad_(True)
    BandDecomposition(num_bands=3)(x, lens)[:, 1].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_lengths_beyond_the_padded_length_are_a_data_error():
    x, _ = padded([20], T=20)
    with pytest.raises(DataError, match="valid lengths"):
        BandDecomposition(num_bands=2)(x, torch.tensor([21]))


def test_projectors_are_cached_and_bounded():
    P = path_projectors(23, 3, "log")
    assert path_projectors(23, 3, "log") is P
    assert P.shape == (3, 23, 23) and P.dtype == torch.float32
    cache = ProjectorCache(max_bytes=3 * 10 * 10 * 4 * 2)  # room for two (3, 10, 10) entries
    for n in (10, 10, 10):
        cache.get(n, 3, "uniform", torch.device("cpu"), torch.float32)
    first = cache.get(10, 3, "uniform", torch.device("cpu"), torch.float32)
    cache.get(9, 3, "uniform", torch.device("cpu"), torch.float32)
    cache.get(8, 3, "uniform", torch.device("cpu"), torch.float32)
    assert len(cache.entries) <= 2 and cache.bytes <= cache.max_bytes
    assert cache.get(10, 3, "uniform", torch.device("cpu"), torch.float32) is not first


def test_knn_graph_is_a_symmetric_laplacian():
    x, _ = padded([15, 15], T=15)
    lap = knn_laplacian(x, 4)
    assert torch.allclose(lap, lap.transpose(1, 2))
    assert torch.allclose(lap.sum(-1), torch.zeros(2, 15), atol=1e-5)
    U = knn_basis(x, 4)
    assert torch.allclose(U.transpose(1, 2) @ U, torch.eye(15).expand(2, 15, 15), atol=1e-4)
    assert not U.requires_grad
    assert knn_laplacian(x[:, :1], 4).abs().sum() == 0  # one step: no edges
