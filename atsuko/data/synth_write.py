"""Write a synthetic dataset in exactly the real format, so the real loader reads it.

MMSA datasets: `OUT/<file>` (e.g. aligned_50.pkl) with the real keys per split, plus the truth
(top-level `planted`; per split `decider` and `drivers`). MIntRec: the folder `OUT` with the
three tsv files, video/audio/text feature pickles and `planted.json`.
Tested in `tests/atsuko/data/test_data_synthetic.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atsuko.data import mintrec, mmsa
from atsuko.data.registry import SPLITS, DatasetSpec
from atsuko.data.synthetic import DRIVER, Synth, SynthSplit, generate

UNIMODAL_LABELS = ("sims", "simsv2")  # these files carry regression_labels_T/_A/_V
WORDS = (
    "i you we they it this that is was not really so very just think know want like feel "
    "good bad great sorry thanks okay well oh yeah no what why how here there now then time "
    "going make take see look tell said"
).split()
CLS, SEP, VOCAB = 101, 102, (1000, 30000)  # BERT ids: [CLS], [SEP], ordinary word pieces


def _text_bert(lengths: np.ndarray, steps: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 3, L) float32 like the real files: token ids, attention mask, token type ids."""
    n = len(lengths)
    valid = np.arange(steps)[None, :] < lengths[:, None]  # (N, L)
    ids = rng.integers(*VOCAB, size=(n, steps)) * valid
    ids[:, 0] = CLS
    ids[np.arange(n), lengths - 1] = SEP
    return np.stack([ids, valid, np.zeros_like(ids)], axis=1).astype(np.float32)


def _mmsa_split(spec: DatasetSpec, name: str, split: SynthSplit, aligned: bool, seed: int) -> dict:
    n = len(split.labels)
    y = split.labels
    polarity = np.sign(y).astype(np.int64) + 1  # 0 negative, 1 neutral, 2 positive
    out = {
        "id": np.array([f"synthetic_{name}_{i:05d}$_$0" for i in range(n)], dtype=object),
        "raw_text": np.array([f"synthetic clip {i}" for i in range(n)], dtype=object),
        **split.features,
        "text_bert": _text_bert(
            split.lengths["text"],
            split.features["text"].shape[1],
            np.random.default_rng([seed, SPLITS.index(name)]),
        ),
        "regression_labels": y,
        "classification_labels": polarity.astype(np.float32),
        "annotations": np.array(["Negative", "Neutral", "Positive"], dtype=object)[polarity],
        "decider": split.truth.decider,
        "drivers": split.truth.drivers,
    }
    if not aligned:
        out["audio_lengths"] = split.lengths["audio"]
        out["vision_lengths"] = split.lengths["vision"]
    if spec.name in UNIMODAL_LABELS:
        low, high = spec.label_range or (-1.0, 1.0)
        for m, suffix in (("text", "T"), ("audio", "A"), ("vision", "V")):
            z = split.truth.drivers[:, DRIVER[m]]
            out[f"regression_labels_{suffix}"] = np.clip(2.5 * z * high / 3.0, low, high)
    return out


def _mintrec(synth: Synth, folder: Path, seed: int) -> Path:
    spec = synth.spec
    rng = np.random.default_rng(seed)
    rows, truth = {}, {}
    tables: dict[str, dict] = {"video": {}, "audio": {}, "text": {}}
    for j, name in enumerate(SPLITS, start=1):
        split = synth.splits[name]
        rows[name] = []
        for i, label in enumerate(split.labels.tolist()):
            key_parts = ("S00", f"E{j:02d}", str(i))
            key = "_".join(key_parts)
            words = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 13))))
            rows[name].append((*key_parts, words + ".", spec.classes[label]))
            video, audio, text = (
                split.features[m][i, : split.lengths[m][i]] for m in ("vision", "audio", "text")
            )
            tables["video"][key] = [frame[None, :] for frame in video]  # T x (1, d), as MIntRec
            tables["audio"][key] = audio
            tables["text"][key] = text
            truth[key] = {
                "decider": int(split.truth.decider[i]),
                "drivers": [float(v) for v in split.truth.drivers[i]],
            }
    return mintrec.write(folder, spec, rows, tables, {"planted": synth.planted, "truth": truth})


def write_synth(synth: Synth, out: Path, seed: int = 0) -> Path:
    """Write `synth` under `out`; return the file (MMSA) or folder (MIntRec) to load."""
    spec = synth.spec
    if spec.format == "mintrec":
        return _mintrec(synth, out, seed)
    splits = {
        name: _mmsa_split(spec, name, synth.splits.pop(name), synth.aligned, seed)
        for name in SPLITS
    }
    return mmsa.write(out / spec.default_file(synth.aligned), splits, synth.planted)


def synthesize(
    spec: DatasetSpec, out: str | Path, *, scale: float = 1.0, seed: int = 0, aligned: bool = True
) -> Path:
    """Generate a synthetic `spec` dataset and write it under `out` in the real format."""
    return write_synth(generate(spec, scale=scale, seed=seed, aligned=aligned), Path(out), seed)
