"""The dataset registry: one `DatasetSpec` per `configs/datasets/NAME.yaml`.

The spec says what a dataset is (files, modalities, task, labels, metrics). Loaders take
shapes from the arrays; `shapes` and `splits` here only drive the synthetic stand-in.
Tested in `tests/atsuko/data/test_data_registry.py`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from atsuko.config import CONFIG_DIR, read_yaml
from atsuko.errors import ConfigError

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    format: str  # mmsa | mintrec
    files: dict[str, str]  # mmsa: aligned/unaligned -> file; mintrec: role -> file in the folder
    modalities: tuple[str, ...]
    task: str  # regression | classification
    label_range: tuple[float, float] | None
    classes: tuple[str, ...] | None
    splits: dict[str, int]  # real split sizes
    shapes: dict[str, dict[str, tuple[int, int]]]  # aligned/unaligned -> m -> (T, d)
    metrics: tuple[str, ...]
    select_metric: str
    select_mode: str

    @property
    def num_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" and self.classes else 1

    @property
    def variants(self) -> tuple[str, ...]:
        """Which of 'aligned' / 'unaligned' this dataset comes in."""
        return tuple(v for v in ("aligned", "unaligned") if v in self.shapes)

    def variant(self, aligned: bool) -> str:
        """'aligned' when asked for and available, else 'unaligned'."""
        return "aligned" if aligned and "aligned" in self.shapes else "unaligned"

    def default_file(self, aligned: bool = True) -> str:
        """The file name (MMSA) or '' (MIntRec: a folder) a real copy is expected under."""
        if self.format == "mintrec":
            return ""
        return self.files[self.variant(aligned)]


def dataset_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (CONFIG_DIR / "datasets").glob("*.yaml")))


def _require(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise ConfigError(f"{where}: missing key '{key}'")
    value = doc[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}: '{key}' must be a {names}, got {value!r}")
    return value


@functools.cache
def get_spec(name: str) -> DatasetSpec:
    """The registry entry for `name`; an unknown name is a ConfigError listing the known ones."""
    path = CONFIG_DIR / "datasets" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown dataset '{name}'; expected one of: {', '.join(dataset_names())}"
        )
    doc = read_yaml(path)
    where = str(path)
    fmt = _require(doc, "format", str, where)
    task = _require(doc, "task", str, where)
    if fmt not in ("mmsa", "mintrec"):
        raise ConfigError(f"{where}: format must be mmsa or mintrec, got {fmt!r}")
    if task not in ("regression", "classification"):
        raise ConfigError(f"{where}: task must be regression or classification, got {task!r}")
    label_range = doc.get("label_range")
    classes = doc.get("classes")
    if task == "regression" and (not isinstance(label_range, list) or len(label_range) != 2):
        raise ConfigError(f"{where}: a regression dataset needs label_range: [low, high]")
    if task == "classification" and (not isinstance(classes, list) or not classes):
        raise ConfigError(f"{where}: a classification dataset needs a list of classes")
    shapes = {
        variant: {m: (int(t), int(d)) for m, (t, d) in per.items()}
        for variant, per in _require(doc, "shapes", dict, where).items()
    }
    select = _require(doc, "select", dict, where)
    splits = _require(doc, "splits", dict, where)
    for s in SPLITS:
        if s not in splits:
            raise ConfigError(f"{where}: splits must give a size for '{s}'")
    return DatasetSpec(
        name=_require(doc, "name", str, where),
        title=str(doc.get("title", name)),
        format=fmt,
        files=dict(_require(doc, "files", dict, where)),
        modalities=tuple(_require(doc, "modalities", list, where)),
        task=task,
        label_range=(float(label_range[0]), float(label_range[1])) if label_range else None,
        classes=tuple(str(c) for c in classes) if classes else None,
        splits={s: int(splits[s]) for s in SPLITS},
        shapes=shapes,
        metrics=tuple(_require(doc, "metrics", list, where)),
        select_metric=str(select.get("metric")),
        select_mode=str(select.get("mode")),
    )
