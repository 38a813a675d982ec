"""A readable summary of a loaded dataset, as `python -m atsuko.data check` prints it.

Tested in `tests/atsuko/data/test_data_cli.py` (`check`'s output).
"""

from __future__ import annotations

import torch

from atsuko.data.dataset import Dataset, Split


def _labels(dataset: Dataset, split: Split) -> str:
    y = split.labels
    if not len(y):
        return "no rows"
    if dataset.spec.task == "classification":
        counts = torch.bincount(y, minlength=dataset.spec.num_outputs)
        return (
            f"{int((counts > 0).sum())}/{dataset.spec.num_outputs} classes present, "
            f"largest {int(counts.max())} rows, smallest {int(counts.min())}"
        )
    return f"range [{float(y.min()):.4g}, {float(y.max()):.4g}], mean {float(y.mean()):.3g}"


def describe(dataset: Dataset) -> str:
    spec = dataset.spec
    lines = [
        f"dataset: {spec.name} ({spec.title}), {spec.task}"
        + (
            f", labels in [{spec.label_range[0]:g}, {spec.label_range[1]:g}]"
            if spec.label_range
            else ""
        )
        + (f", {spec.num_outputs} classes" if spec.classes else ""),
        f"source: {dataset.source}",
    ]
    for name, split in dataset.splits.items():
        lines.append(f"{name}: {len(split)} rows; labels {_labels(dataset, split)}")
        for m, x in split.features.items():
            n, steps, d = x.shape
            lengths = split.lengths[m]
            span = f"{int(lengths.min())}-{int(lengths.max())}" if n else "-"
            lines.append(f"  {m:<7} (N, T, d) = ({n}, {steps}, {d}), valid steps {span}")
        if split.extras:
            shown = ", ".join(
                f"{k} {tuple(v.shape[1:]) or ''}".strip() for k, v in split.extras.items()
            )
            lines.append(f"  extras: {shown}")
    total = sum(dataset.nonfinite.values())
    lines.append(f"non-finite values replaced with 0: {total}")
    for key, count in dataset.nonfinite.items():
        lines.append(f"  {key}: {count}")
    if dataset.planted:
        p = dataset.planted
        bands = ", ".join(f"{m} band {k}" for m, k in p.get("bands", {}).items())
        lines.append(
            f"synthetic: planted {bands} of {p.get('num_bands')} ({p.get('band_split')}); "
            f"deciders {', '.join(p.get('deciders', []))}; "
            f"seed {p.get('seed')}, scale {p.get('scale')}"
        )
    for note in dataset.notes:
        lines.append(f"note: {note}")
    lines.append("usable: yes")
    return "\n".join(lines)
