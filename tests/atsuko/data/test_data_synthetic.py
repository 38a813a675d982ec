"""The synthetic generator: sizes, labels, sample types, and the planted band structure."""

from __future__ import annotations

import numpy as np
import pytest

from atsuko.data import get_spec, load
from atsuko.data.synth_write import synthesize
from atsuko.data.synthetic import (
    DRIVER,
    MINTREC_TRAIN_COUNTS,
    MOSI_TEXT_COUNTS,
    MOSI_TEXT_MIN,
    SHARES,
    apportion,
    band_groups,
    class_labels,
    dct_basis,
    draw_truth,
    split_sizes,
    text_token_lengths,
    valid_lengths,
)


@pytest.fixture(scope="module")
def mosi_big(tmp_path_factory):
    """Enough rows (385 / 69 / 206) for the band-structure regression to be steady."""
    return load(
        synthesize(get_spec("mosi"), tmp_path_factory.mktemp("mosi_big"), scale=0.3, seed=5)
    )


def formula(z: np.ndarray) -> np.ndarray:
    return 2.5 * z.sum(1) + 1.5 * z[:, 1] * z[:, 2]


def test_split_sizes_scale_with_a_floor():
    spec = get_spec("mosi")
    assert split_sizes(spec, 1.0) == spec.splits
    assert split_sizes(spec, 0.05) == {"train": 64, "valid": 20, "test": 34}
    assert split_sizes(spec, 1e-6) == {"train": 20, "valid": 20, "test": 20}


def test_dct_basis_is_orthonormal_and_bands_as_planned():
    basis = dct_basis(50)
    np.testing.assert_allclose(basis.T @ basis, np.eye(50), atol=1e-10)
    assert [(g[0], g[-1]) for g in band_groups(50)] == [(0, 16), (17, 33), (34, 49)]


def test_sample_types_and_drivers():
    truth = draw_truth(1000, np.random.default_rng(0))
    counts = np.bincount(truth.decider, minlength=4)
    assert counts.tolist() == apportion(SHARES, 1000).tolist() == [500, 200, 200, 100]
    z = truth.drivers
    active = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1]], bool)[truth.decider]
    assert np.abs(z[~active]).max() <= 0.15
    assert np.abs(z[active]).max() > 0.9 and np.abs(z[active]).max() <= 1.0


def test_mosi_labels_follow_the_formula_in_thirds(mosi_aligned):
    dataset = load(mosi_aligned)
    for split in dataset.splits.values():
        y = split.labels.numpy().astype(np.float64)
        assert y.min() >= -3 and y.max() <= 3
        np.testing.assert_allclose(y * 3, np.round(y * 3), atol=1e-5)  # thirds of a point
        expected = np.clip(formula(split.extras["drivers"].numpy()), -3, 3)
        assert np.abs(y - expected).max() < 1 / 6 + 0.5  # quantisation + label noise
        assert np.corrcoef(y, expected)[0, 1] > 0.98


def test_sims_labels_scaled_to_unit_range(tmp_path):
    dataset = load(synthesize(get_spec("sims"), tmp_path, scale=0.05, seed=0, aligned=False))
    y = np.concatenate([s.labels.numpy() for s in dataset.splits.values()])
    z = np.concatenate([s.extras["drivers"].numpy() for s in dataset.splits.values()])
    assert y.min() >= -1 and y.max() <= 1
    assert len(np.unique(np.round(y * 3, 4))) > 20  # continuous, not thirds
    assert np.abs(y - np.clip(formula(z) / 3, -1, 1)).max() < 0.2
    assert set(dataset.splits["train"].extras) >= {"regression_labels_T", "regression_labels_A"}


def test_standardised_with_training_statistics(mosi_unaligned):
    train = load(mosi_unaligned, "mosi").splits["train"]
    for m, x in train.features.items():
        steps = np.arange(x.shape[1])[None, :] < train.lengths[m].numpy()[:, None]
        valid = x.numpy()[steps]  # (frames, d)
        np.testing.assert_allclose(valid.mean(0), 0, atol=1e-3)
        np.testing.assert_allclose(valid.std(0), 1, atol=1e-2)


def _band_grams(x: np.ndarray, lengths: np.ndarray, comps: np.ndarray) -> list[np.ndarray]:
    """Per band, the upper triangle of the (r, r) second moments of each sample's band part."""
    out = [[] for _ in range(3)]
    bases = {int(n): dct_basis(int(n)) for n in np.unique(lengths)}
    for xi, length in zip(x, lengths, strict=True):
        z = xi[:length] @ comps  # (L, d) -> (L, r)
        basis = bases[int(length)]
        for k, group in enumerate(band_groups(int(length))):
            c = basis[:, group].T @ z  # (|band|, r) band coefficients
            out[k].append((c.T @ c / length)[np.triu_indices(z.shape[1])])
    return [np.array(o) for o in out]


def _angle_fit(train: np.ndarray, z_train, test: np.ndarray, z_test) -> float:
    """Fit (cos 2θ, sin 2θ) of θ = z π/3 linearly on train; the correlation of θ̂ with z on test."""
    a, b = np.c_[train, np.ones(len(train))], np.c_[test, np.ones(len(test))]
    theta = z_train * np.pi / 3
    w, *_ = np.linalg.lstsq(a, np.c_[np.cos(2 * theta), np.sin(2 * theta)], rcond=None)
    pred = b @ w
    return float(np.corrcoef(np.arctan2(pred[:, 1], pred[:, 0]) / 2, z_test)[0, 1])


def _top_axes(frames: np.ndarray, r: int) -> np.ndarray:
    """(d, r) orthonormal top principal axes by subspace iteration (the data has rank ~r)."""
    q = np.random.default_rng(0).standard_normal((frames.shape[1], r))
    for _ in range(4):
        q = np.linalg.qr(frames.T @ (frames @ q))[0]
    return q


def planted_correlations(dataset, modalities) -> dict[str, list[float]]:
    """For each modality and band: how well the band's direction in latent space reveals the
    modality's driver (test-split correlation of a linear read-out fitted on train)."""
    train, test = dataset.splits["train"], dataset.splits["test"]
    out = {}
    for m in modalities:
        r = dataset.planted["latent_channels"][m]
        x, lengths = train.features[m].numpy(), train.lengths[m].numpy()
        frames = np.concatenate([xi[:n] for xi, n in zip(x, lengths, strict=True)])
        comps = _top_axes(frames - frames.mean(0), r)
        g_train = _band_grams(x, lengths, comps)
        g_test = _band_grams(test.features[m].numpy(), test.lengths[m].numpy(), comps)
        z_train = train.extras["drivers"][:, DRIVER[m]].numpy()
        z_test = test.extras["drivers"][:, DRIVER[m]].numpy()
        out[m] = [_angle_fit(g_train[k], z_train, g_test[k], z_test) for k in range(3)]
    return out


def test_planted_band_carries_the_driver(mosi_big):
    corr = planted_correlations(mosi_big, ("text", "audio", "vision"))
    for m, per_band in corr.items():
        planted = mosi_big.planted["bands"][m]
        assert per_band[planted] > 0.95, (m, per_band)
        others = [abs(c) for k, c in enumerate(per_band) if k != planted]
        assert max(others) < 0.35, (m, per_band)


def test_planted_band_unaligned(mosi_unaligned):
    dataset = load(mosi_unaligned, "mosi")
    corr = planted_correlations(dataset, ("audio", "vision"))
    for m, per_band in corr.items():
        assert int(np.argmax(per_band)) == dataset.planted["bands"][m], (m, per_band)
        assert per_band[dataset.planted["bands"][m]] > 0.9, (m, per_band)


def test_mintrec_class_frequencies_match_the_real_ones():
    real = np.array(MINTREC_TRAIN_COUNTS) / sum(MINTREC_TRAIN_COUNTS)
    population = class_labels(draw_truth(200_000, np.random.default_rng(9)).score)
    shares = np.bincount(population, minlength=20) / len(population)
    np.testing.assert_allclose(shares, real, atol=0.003)
    for i, n in enumerate(get_spec("mintrec").splits.values()):  # the real split sizes
        truth = draw_truth(n, np.random.default_rng(i))
        labels = class_labels(truth.score)
        counts = np.bincount(labels, minlength=20)
        assert 0.5 * np.abs(counts / n - real).sum() < 0.15  # total variation: sampling noise
        assert counts.min() > 0
        # learnable: the class rises with the noiseless score of the drivers
        ranks = np.argsort(np.argsort(formula(truth.drivers)))
        assert np.corrcoef(ranks, labels)[0, 1] > 0.95


def test_mintrec_counts_are_the_published_train_split(real_data):
    rows = (real_data / "mintrec" / "train.tsv").read_text().splitlines()[1:]
    classes = get_spec("mintrec").classes
    labels = [r.split("\t")[-1] for r in rows]
    assert [labels.count(c) for c in classes] == list(MINTREC_TRAIN_COUNTS)


def test_mosi_text_lengths_are_those_of_label_csv(real_data):
    import csv

    texts = [r["text"] for r in csv.DictReader(open(real_data / "mosi" / "label.csv"))]
    real = text_token_lengths(texts)
    counts = np.bincount(real, minlength=MOSI_TEXT_MIN + len(MOSI_TEXT_COUNTS))
    assert counts[:MOSI_TEXT_MIN].sum() == 0
    assert tuple(counts[MOSI_TEXT_MIN:].tolist()) == MOSI_TEXT_COUNTS
    drawn = valid_lengths(20_000, 50, False, np.random.default_rng(0), "text")
    for below in (6, 8, 12, 20):  # the generator's rates are the real ones
        assert abs(np.mean(drawn < below) - np.mean(real < below)) < 0.01, below
    assert abs(np.mean(real < 6) - 0.03) < 0.005 and abs(np.mean(real < 8) - 0.15) < 0.01


def test_unaligned_lengths_include_short_sequences():
    rng = np.random.default_rng(1)
    for steps in (50, 375, 500):
        lengths = valid_lengths(20_000, steps, False, rng, "audio")
        assert lengths.max() == steps
        assert set(np.unique(lengths[lengths <= 3]).tolist()) == {0, 1, 2, 3}
        assert 0.02 < np.mean(lengths <= 3) < 0.04  # a realistic few, not a flood
    assert (valid_lengths(50, 50, True, rng, "audio") == 50).all()  # aligned: every step


def test_unaligned_files_with_empty_sequences_load(tmp_path):
    path = synthesize(get_spec("mosi"), tmp_path, scale=0.1, seed=2, aligned=False)
    dataset = load(path)
    lengths = np.concatenate(
        [s.lengths[m].numpy() for s in dataset.splits.values() for m in ("audio", "vision")]
    )
    assert lengths.min() == 1 and np.mean(lengths <= 3) > 0  # 0 read as one step
    assert any("no valid step read as 1 step" in note for note in dataset.notes)


def test_mintrec_synthetic_layout(mintrec_synth):
    names = {p.name for p in mintrec_synth.iterdir()}
    assert names == {
        "train.tsv", "dev.tsv", "test.tsv", "video_feats.pkl", "audio_feats.pkl",
        "text_feats.pkl", "planted.json",
    }  # fmt: skip
    header = (mintrec_synth / "train.tsv").read_text().splitlines()[0]
    assert header.split("\t") == ["season", "episode", "clip", "text", "label"]
    dataset = load(mintrec_synth)
    assert dataset.spec.name == "mintrec" and dataset.spec.num_outputs == 20
    assert {k: len(s) for k, s in dataset.splits.items()} == {"train": 20, "valid": 20, "test": 20}
    assert dataset.dims == {"text": 768, "audio": 768, "vision": 256}
    for split in dataset.splits.values():
        assert split.labels.dtype.is_floating_point is False
        assert 0 <= int(split.labels.min()) and int(split.labels.max()) < 20
        assert split.extras["decider"].shape == (len(split),)
    assert dataset.planted["bands"] == {"text": 0, "audio": 2, "vision": 1}
