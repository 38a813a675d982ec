"""Synthetic stand-ins with planted structure (README, "The synthetic stand-in").

Each sample has three drivers z = (z_text, z_audio, z_vision) and a type that says which are
active (~U(-1, 1)) and which idle (~U(-0.15, 0.15)): 50% text, 20% audio, 20% vision, 10% audio
and vision together. The score is `2.5 (z_t + z_a + z_v) + 1.5 z_a z_v + N(0, 0.1^2)`.
Labels: MOSI / MOSEI the score clipped to [-3, 3] and rounded to thirds; SIMS / SIMSv2 the
score / 3 clipped to [-1, 1]; MIntRec the slice of the score axis whose expected shares are
the published train-split class frequencies (a fixed function of the drivers: learnable, with
about 73% accuracy for an oracle that knows the noiseless score).

Modality m codes its driver in one band of DCT-II coefficients over its valid steps (K = 3
equal groups; text low, audio high, vision mid): a random waveform of that band with RMS 1,
pointed in latent space along `cos(z pi/3) e1 + sin(z pi/3) e2` (direction, not amplitude,
so per-frame normalisation keeps it). The other two bands of the same latent channels hold
distractors of RMS `1.5 exp(0.6 N(0, 1))`. Latent channels (text 8, audio 3, vision 4) map to
the real widths by one fixed random projection (unit-norm rows times sqrt(d / r)), plus iid
noise of std 0.1; features are standardised with training-split statistics over valid steps.
Legend: N rows, T steps, d width, r latent channels.
Tested in `tests/atsuko/data/test_data_synthetic.py`.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np

from atsuko.data.registry import SPLITS, DatasetSpec

GENERATOR_VERSION = 2  # 2: unaligned files hold short sequences and real MOSI text lengths
NUM_BANDS = 3
PLANTED_BANDS = {"text": 0, "audio": 2, "vision": 1}
LATENT = {"text": 8, "audio": 3, "vision": 4}
DECIDERS = ("text", "audio", "vision", "audio+vision")
SHARES = (0.5, 0.2, 0.2, 0.1)
DRIVER = {"text": 0, "audio": 1, "vision": 2}  # column of each modality's driver in z
ACTIVE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=bool)  # decider -> z on
IDLE = 0.15
NOISE_STD = 0.1
LABEL_NOISE = 0.1
DISTRACTOR_RMS, DISTRACTOR_SPREAD = 1.5, 0.6
MIN_ROWS = 20  # per split, whatever the scale
MIN_LENGTH, MIN_FRACTION = 8, 0.4  # unaligned valid lengths ~ U[max(8, 0.4 T), T] ...
SHORT_SHARE, SHORT_MAX = 0.03, 3  # ... but for audio and vision, 3% of rows hold 0 to 3 steps
# Unaligned text lengths: BERT tokens `[CLS] words [SEP]` of the 2195 CMU-MOSI segments of
# label.csv (words split on spaces, MMSA's limit of 50 tokens), counts of lengths 3, 4, ..., 50:
# 3.1% of segments are under 6 tokens, 15.5% under 8, the median is 12.
MOSI_TEXT_MIN = 3
# fmt: off
MOSI_TEXT_COUNTS = (
    5, 21, 42, 106, 166, 159, 172, 182, 159, 135, 121, 103, 97, 84, 79, 65, 48, 53, 48, 48, 42,
    26, 27, 21, 25, 18, 14, 20, 14, 11, 6, 11, 7, 2, 6, 2, 5, 5, 1, 6, 3, 2, 2, 1, 4, 2, 2, 17,
)
# fmt: on
MOSI_TEXT_MAX = MOSI_TEXT_MIN + len(MOSI_TEXT_COUNTS) - 1  # 50
LABEL_STEP = {"mosi": 1 / 3, "mosei": 1 / 3}  # labels at thirds of a point, as in the real files
CHUNK = 1 << 22  # elements per working slice (16 MiB of float32)
# MIntRec: class counts of the published train split (1334 rows, thuiar/MIntRec train.tsv),
# in the registry's class order (Complain ... Ask for help). Synthetic classes follow them.
# fmt: off
MINTREC_TRAIN_COUNTS = (
    172, 127, 82, 74, 70, 35, 38, 32, 31, 31, 52, 57, 170, 73, 66, 63, 51, 43, 36, 31,
)
# fmt: on
REFERENCE_DRAW, REFERENCE_SEED = 200_000, 1334


@dataclass
class Truth:
    drivers: np.ndarray  # (N, 3) float32: z_text, z_audio, z_vision
    decider: np.ndarray  # (N,) int64 index into DECIDERS
    score: np.ndarray  # (N,) float64, the noisy label formula before clipping


@dataclass
class SynthSplit:
    features: dict[str, np.ndarray]  # m -> (N, T_m, d_m) float32, zero after the valid steps
    lengths: dict[str, np.ndarray]  # m -> (N,) int64
    labels: np.ndarray  # (N,) float32 | int64 class indices
    truth: Truth


@dataclass
class Synth:
    spec: DatasetSpec
    aligned: bool
    planted: dict
    splits: dict[str, SynthSplit]


def _rng(seed: int, *tags: str | int) -> np.random.Generator:
    """A generator per (seed, tags): streams never depend on the order they are drawn in."""
    words = [int(t) if isinstance(t, int) else zlib.crc32(t.encode()) for t in tags]
    return np.random.default_rng(np.random.SeedSequence([seed, *words]))


def split_sizes(spec: DatasetSpec, scale: float) -> dict[str, int]:
    return {s: max(MIN_ROWS, round(spec.splits[s] * scale)) for s in SPLITS}


def apportion(weights: np.ndarray | tuple, total: int) -> np.ndarray:
    """Integer counts proportional to `weights` summing to `total` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def dct_basis(length: int) -> np.ndarray:
    """Orthonormal DCT-II basis, (length, length); column k = u_k(n) = c_k cos(pi k (n + 1/2) / L),
    the eigenvectors of the path-graph Laplacian, low to high frequency."""
    n = np.arange(length)[:, None] + 0.5
    k = np.arange(length)[None, :]
    basis = np.cos(np.pi * k * n / length) * math.sqrt(2.0 / length)
    basis[:, 0] = math.sqrt(1.0 / length)
    return basis


def band_groups(length: int, num_bands: int = NUM_BANDS) -> list[np.ndarray]:
    """Coefficient indices of K contiguous, equal (to one) groups: 50 -> 0-16, 17-33, 34-49."""
    return np.array_split(np.arange(length), num_bands)


def draw_truth(n: int, rng: np.random.Generator) -> Truth:
    """Sample types in exact 50/20/20/10 shares, drivers, and the noisy score."""
    decider = rng.permutation(np.repeat(np.arange(len(DECIDERS)), apportion(SHARES, n)))
    active = ACTIVE[decider]  # (N, 3)
    z = np.where(active, rng.uniform(-1, 1, (n, 3)), rng.uniform(-IDLE, IDLE, (n, 3)))
    score = 2.5 * z.sum(1) + 1.5 * z[:, 1] * z[:, 2] + LABEL_NOISE * rng.standard_normal(n)
    return Truth(drivers=z.astype(np.float32), decider=decider.astype(np.int64), score=score)


def regression_labels(spec: DatasetSpec, score: np.ndarray) -> np.ndarray:
    """The score on the dataset's range ([-3, 3] as is; [-1, 1] scaled by 1/3), clipped;
    MOSI and MOSEI quantised to thirds."""
    low, high = spec.label_range or (-3.0, 3.0)
    y = np.clip(score * (high / 3.0), low, high)
    step = LABEL_STEP.get(spec.name)
    if step:
        y = np.round(y / step) * step
    return y.astype(np.float32)


def class_edges(score: np.ndarray, counts: tuple[int, ...]) -> np.ndarray:
    """Score thresholds that split `score` into classes with the shares of `counts`: class c
    holds the c-th slice of the score axis, so the class follows from the drivers."""
    ordered = np.sort(score)
    cuts = np.cumsum(apportion(counts, len(ordered)))[:-1]
    edges = []
    for c in cuts:
        if c <= 0:
            edges.append(-np.inf)
        elif c >= len(ordered):
            edges.append(np.inf)
        else:
            edges.append((ordered[c - 1] + ordered[c]) / 2)
    return np.array(edges)


@functools.cache
def reference_edges() -> np.ndarray:
    """Class thresholds of the score's own distribution (a fixed draw of 200 000 samples): the
    class is one fixed function of the drivers in every split, seed and scale."""
    truth = draw_truth(REFERENCE_DRAW, np.random.default_rng(REFERENCE_SEED))
    return class_edges(truth.score, MINTREC_TRAIN_COUNTS)


def class_labels(score: np.ndarray) -> np.ndarray:
    """MIntRec class indices: the score's slice, so the expected class shares are the real
    ones (each split is a random sample of them)."""
    return np.searchsorted(reference_edges(), score, side="right").astype(np.int64)


def text_token_lengths(texts: list[str], limit: int = MOSI_TEXT_MAX) -> np.ndarray:
    """Token counts of `[CLS] words [SEP]` (words split on spaces), at most `limit`."""
    return np.minimum(np.array([len(t.split()) + 2 for t in texts], dtype=np.int64), limit)


def text_lengths(n: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """Text lengths drawn from CMU-MOSI's (MOSI_TEXT_COUNTS), at most `steps`."""
    counts = np.asarray(MOSI_TEXT_COUNTS, dtype=np.float64)
    draw = rng.choice(len(counts), size=n, p=counts / counts.sum()) + MOSI_TEXT_MIN
    return np.minimum(draw, steps).astype(np.int64)


def valid_lengths(
    n: int, steps: int, aligned: bool, rng: np.random.Generator, modality: str = ""
) -> np.ndarray:
    """Aligned: every step. Unaligned: text as real MOSI utterances; audio and vision mostly
    U[max(8, 0.4 T), T], a few (SHORT_SHARE) of 0 to 3 steps, as real segments can be."""
    if aligned:
        return np.full(n, steps, dtype=np.int64)
    if modality == "text":
        lengths = text_lengths(n, steps, rng)
    else:
        low = min(steps, max(MIN_LENGTH, math.ceil(MIN_FRACTION * steps)))
        lengths = rng.integers(low, steps + 1, size=n).astype(np.int64)
        short = np.flatnonzero(rng.random(n) < SHORT_SHARE)
        lengths[short] = rng.integers(0, min(SHORT_MAX, steps) + 1, size=len(short))
    lengths[0] = steps  # the padded length is reached, as in real files
    return lengths


def _latent(z: np.ndarray, lengths: np.ndarray, steps: int, m: str, dirs: np.ndarray, rng):
    """(N, T, r) latent sequences: the driver in the planted band, distractors in the others."""
    r = LATENT[m]
    band = PLANTED_BANDS[m]
    out = np.zeros((len(z), steps, r), dtype=np.float32)
    for length in np.unique(lengths):
        if length == 0:
            continue  # an empty sequence: nothing to plant
        rows = np.flatnonzero(lengths == length)
        n = len(rows)
        basis = dct_basis(int(length))
        groups = band_groups(int(length))
        wave = rng.standard_normal((n, len(groups[band]))) @ basis[:, groups[band]].T  # (n, L)
        wave /= np.sqrt(np.mean(wave**2, axis=1, keepdims=True)) + 1e-12  # RMS 1
        theta = z[rows] * np.pi / 3
        direction = np.cos(theta)[:, None] * dirs[0] + np.sin(theta)[:, None] * dirs[1]  # (n, r)
        x = wave[:, :, None] * direction[:, None, :]  # (n, L, r)
        for k, group in enumerate(groups):
            if k == band:
                continue
            d = basis[:, group] @ rng.standard_normal((n, len(group), r))  # (n, L, r)
            rms = np.sqrt(np.mean(np.sum(d**2, axis=2), axis=1)) + 1e-12  # (n,)
            amp = DISTRACTOR_RMS * np.exp(DISTRACTOR_SPREAD * rng.standard_normal(n))
            x += d * (amp / rms)[:, None, None]
        out[rows, :length] = x
    return out


def _zero_padding(x: np.ndarray, lengths: np.ndarray) -> None:
    """Set the steps after each row's valid length to 0, in place."""
    steps = x.shape[1]
    for i in np.flatnonzero(lengths < steps):
        x[i, lengths[i] :] = 0.0


def _chunk_rows(x: np.ndarray) -> int:
    return max(1, CHUNK // max(1, x[0].size))


def _project(latent: np.ndarray, lengths: np.ndarray, proj: np.ndarray, rng) -> np.ndarray:
    """(N, T, r) @ (r, d) + noise on the valid steps -> (N, T, d) float32, slice by slice."""
    n, steps, r = latent.shape
    d = proj.shape[1]
    out = np.empty((n, steps, d), dtype=np.float32)
    rows = _chunk_rows(out)
    noise = np.empty(rows * steps * d, dtype=np.float32)
    for start in range(0, n, rows):
        part = out[start : start + rows]
        flat = part.reshape(-1, d)  # (c, T, d) -> (c T, d), a view
        np.matmul(latent[start : start + rows].reshape(-1, r), proj, out=flat)
        buf = noise[: flat.size].reshape(flat.shape)
        rng.standard_normal(dtype=np.float32, out=buf)
        buf *= NOISE_STD
        flat += buf
        _zero_padding(part, lengths[start : start + rows])
    return out


def _standardise(splits: dict[str, SynthSplit], m: str) -> None:
    """Per-feature mean and std over the valid steps of train, applied in place to every split."""
    train = splits["train"]
    x, lengths = train.features[m], train.lengths[m]
    d = x.shape[-1]
    total = np.zeros(d)
    square = np.zeros(d)
    rows = _chunk_rows(x)
    for start in range(0, len(x), rows):
        part = x[start : start + rows].reshape(-1, d)  # (c, T, d) -> (c T, d)
        total += part.sum(axis=0, dtype=np.float64)  # padding is zero: valid steps only
        square += np.square(part).sum(axis=0, dtype=np.float64)
    count = float(lengths.sum())
    mean = total / count
    std = np.sqrt(np.maximum(square / count - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    mean32, inv32 = mean.astype(np.float32), (1.0 / std).astype(np.float32)
    for split in splits.values():
        x, lengths = split.features[m], split.lengths[m]
        rows = _chunk_rows(x)
        for start in range(0, len(x), rows):
            part = x[start : start + rows]
            part -= mean32
            part *= inv32
            _zero_padding(part, lengths[start : start + rows])


def planted_info(spec: DatasetSpec, *, scale: float, seed: int, aligned: bool) -> dict:
    return {
        "bands": dict(PLANTED_BANDS),
        "num_bands": NUM_BANDS,
        "band_split": "uniform",
        "deciders": list(DECIDERS),
        "dataset": spec.name,
        "variant": spec.variant(aligned),
        "scale": float(scale),
        "seed": int(seed),
        "latent_channels": dict(LATENT),
        "generator_version": GENERATOR_VERSION,
    }


def generate(
    spec: DatasetSpec, *, scale: float = 1.0, seed: int = 0, aligned: bool = True
) -> Synth:
    """Draw a synthetic dataset with `spec`'s shapes (aligned if it has that variant)."""
    variant = spec.variant(aligned)
    shapes = spec.shapes[variant]
    sizes = split_sizes(spec, scale)
    structure = _rng(seed, spec.name, "structure")
    dirs, proj = {}, {}
    for m in spec.modalities:
        r, d = LATENT[m], shapes[m][1]
        q, _ = np.linalg.qr(structure.standard_normal((r, 2)))
        dirs[m] = q.T  # (2, r): orthonormal e1, e2
        rows = structure.standard_normal((r, d))
        proj[m] = (rows / np.linalg.norm(rows, axis=1, keepdims=True) * math.sqrt(d / r)).astype(
            np.float32
        )
    truths = {s: draw_truth(sizes[s], _rng(seed, spec.name, "truth", s)) for s in SPLITS}
    if spec.task == "classification":
        labels = {s: class_labels(t.score) for s, t in truths.items()}
    else:
        labels = {s: regression_labels(spec, t.score) for s, t in truths.items()}
    splits = {}
    for s in SPLITS:
        features, lengths = {}, {}
        for m in spec.modalities:
            rng = _rng(seed, spec.name, variant, s, m)
            steps = shapes[m][0]
            lengths[m] = valid_lengths(sizes[s], steps, variant == "aligned", rng, m)
            latent = _latent(truths[s].drivers[:, DRIVER[m]], lengths[m], steps, m, dirs[m], rng)
            features[m] = _project(latent, lengths[m], proj[m], rng)
        splits[s] = SynthSplit(
            features=features, lengths=lengths, labels=labels[s], truth=truths[s]
        )
    for m in spec.modalities:
        _standardise(splits, m)
    return Synth(
        spec=spec,
        aligned=variant == "aligned",
        planted=planted_info(spec, scale=scale, seed=seed, aligned=aligned),
        splits=splits,
    )
