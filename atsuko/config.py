"""Typed, immutable run configuration and how it is resolved.

Precedence, lowest first: dataclass defaults < `configs/model/atsuko.yaml` < the dataset's
`defaults` in `configs/datasets/NAME.yaml` (then its `frozen_bert_defaults` where the run
trains on frozen BERT token states) < a `--config` YAML < `--set key=value` overrides.
A resolved `Config` is written beside every run's results and is itself a valid `--config`.
"""

from __future__ import annotations

import dataclasses
import getpass
import math
import os
import tempfile
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from atsuko.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DATASETS = ("mosi", "mosei", "sims", "simsv2", "mintrec")


def user_temp_dir(purpose: str) -> Path:
    """A per-user folder for `purpose` in the system temp dir: the default home of generated
    synthetic files and of a search's local copy of a URI."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"atsuko-{user}" / purpose


@dataclass(frozen=True)
class DataConfig:
    """Which data a run uses: a real file (`path`) or a generated stand-in (`synthetic`)."""

    dataset: str = "mosi"
    path: str | None = None  # feature file (MMSA pickle or .npz) or MIntRec folder
    synthetic: bool = False
    scale: float = 1.0  # synthetic: fraction of the real sample count
    synth_seed: int = 0  # synthetic: generator seed (fixed across training seeds)
    aligned: bool = True  # synthetic: aligned (one T) or unaligned (per-modality T)
    # where generated files are kept: synthetic data, frozen text states (default: temp)
    cache_dir: str | None = None
    # cross-validation (atsuko.data.folds): train and valid pooled and cut into `folds` folds
    # (0: the dataset's own splits); fold `fold` validates, the rest train; test untouched
    folds: int = 0
    fold: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """Every option of the Atsuko model (`atsuko.model`; docs/architecture.md lists the parts)."""

    hidden: int = 32
    layers: int = 1
    heads: int = 4
    dropout: float = 0.1
    proj: str = "linear"  # input projection: linear | conv
    proj_kernel: int = 3  # kernel of the conv projection
    # spectral-band routing
    use_sbr: bool = True
    graph: str = "path"  # path (closed-form DCT) | knn (eigh of a cosine k-NN graph)
    knn_k: int = 5
    num_bands: int = 3
    band_split: str = "uniform"  # uniform | log
    tau_band: float = 1.0
    band_top_k: int = 0  # 0 keeps every band
    expert_mult: int = 2  # band expert FFN width = expert_mult * hidden
    # modality router
    tau_mod: float = 1.0
    router_mix: str = "sum"  # sum | gate
    # marginal complementarity module
    use_mcm: bool = True
    tau_c: float = 1.0
    c_ema: float = 0.0  # 0: per-batch c; in (0, 1): moving-average momentum
    lambda_mcm: float = 0.1
    lambda_kd: float = 0.1
    lambda_bi: float = 0.5
    mcm_warmup_epochs: int = 1
    # text encoder
    # features (precomputed states) | bert (token ids through a BERT folder, fine-tuned or frozen)
    text_encoder: str = "features"
    bert_path: str | None = None  # local folder with a BERT config and weights
    # bert: encode the text once with the frozen encoder (cached) and train on its token states
    bert_freeze: bool = False
    # bert: the text states are the mean of the encoder's last `bert_layers` layers' token states
    bert_layers: int = 1


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and selection."""

    lr: float = 1e-3
    bert_lr: float = 5e-5  # the fine-tuned BERT encoder's own learning rate (MMSA's practice)
    weight_decay: float = 1e-4
    batch_size: int = 32
    epochs: int = 20
    patience: int = 5  # early stopping, epochs without a better validation score
    grad_clip: float = 1.0
    seed: int = 1111
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch threads; 0 leaves torch's default
    precision: str = "auto"  # training steps: auto (bf16 where CUDA has bf16 units) | bf16 | fp32
    deterministic: bool = False  # deterministic kernels (GPU runs then repeat exactly)
    select_metric: str | None = None  # default: the dataset's (MAE for regression, acc MIntRec)
    select_mode: str | None = None  # min | max


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def replace(self, **overrides: Any) -> Config:
        """Apply flat or dotted overrides (`tau_band=0.5`, `train.lr=3e-3`), type-checked."""
        return apply_overrides(self, overrides)


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def field_names(section: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(SECTIONS[section]))


def section_of(key: str) -> str:
    """The section that owns a bare key (`tau_band` -> `model`); names are unique across them."""
    owners = [s for s in SECTIONS if key in field_names(s)]
    if not owners:
        known = ", ".join(sorted(k for s in SECTIONS for k in field_names(s)))
        raise ConfigError(f"unknown parameter '{key}'; expected one of: {known}")
    return owners[0]


def field_type(section: str, key: str) -> Any:
    hints = typing.get_type_hints(SECTIONS[section])
    return hints[key]


def coerce(section: str, key: str, value: Any, where: str = "") -> Any:
    """Check `value` against the field's type; ints widen to floats; say what was expected."""
    expected = field_type(section, key)
    allowed = typing.get_args(expected) if isinstance(expected, types.UnionType) else (expected,)
    if value is None and type(None) in allowed:
        return None
    for kind in allowed:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
    names = " or ".join("null" if k is type(None) else k.__name__ for k in allowed)
    src = f" in {where}" if where else ""
    raise ConfigError(f"{section}.{key}{src}: expected {names}, got {value!r}")


def _split_key(key: str) -> tuple[str, str]:
    if "." in key:
        section, name = key.split(".", 1)
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown section '{section}' in '{key}'; expected data, model, train"
            )
        if name not in field_names(section):
            raise ConfigError(
                f"unknown parameter '{key}'; {section} has: {', '.join(field_names(section))}"
            )
        return section, name
    return section_of(key), key


def apply_overrides(config: Config, overrides: dict[str, Any], where: str = "") -> Config:
    grouped: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in overrides.items():
        section, name = _split_key(key)
        grouped[section][name] = coerce(section, name, value, where)
    return Config(**{s: dataclasses.replace(getattr(config, s), **grouped[s]) for s in SECTIONS})


def _flatten(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """`{model: {tau_band: 1}}` and `{tau_band: 1}` both become `{'model.tau_band': 1}`."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: section '{key}' must be a mapping, got {value!r}")
            for name, inner in value.items():
                flat[f"{key}.{name}"] = _number(inner)
        else:
            flat[key] = _number(value)
    return flat


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what and where (PyYAML's own text spans several lines)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping with safe_load; a missing or malformed file is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({yaml_problem(exc)})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(doc).__name__}")
    return doc


def source_overrides(synthetic: bool, path: str | None) -> dict[str, Any]:
    """The overrides of the `--synthetic` and `--data PATH` flags (a given path wins)."""
    if path:
        return {"data.path": path, "data.synthetic": False}
    return {"data.synthetic": True} if synthetic else {}


def parse_set(items: list[str]) -> dict[str, Any]:
    """`--set key=value` items; values are parsed as YAML scalars (`3e-3`, `true`, `log`)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: value is not a YAML scalar") from None
        out[key.strip()] = _number(value)
    return out


def _number(value: Any) -> Any:
    """YAML 1.1 reads `3e-3` as a string; take it as the number a user meant."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


FROZEN_BERT = "frozen_bert_defaults"


def dataset_defaults(dataset: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `defaults:` (every run) and `frozen_bert_defaults:` (runs on a frozen encoder's
    token states) blocks of `configs/datasets/NAME.yaml`, flattened; the file read once."""
    path = CONFIG_DIR / "datasets" / f"{dataset}.yaml"
    if not path.is_file():
        return {}, {}
    doc = read_yaml(path)
    every, frozen = (
        _flatten(doc.get(block) or {}, str(path)) for block in ("defaults", FROZEN_BERT)
    )
    return every, frozen


def resolve(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    dataset: str | None = None,
) -> Config:
    """Build a Config from the layered sources; every key and type is checked."""
    config = Config()
    base = CONFIG_DIR / "model" / "atsuko.yaml"
    if base.is_file():
        config = apply_overrides(config, _flatten(read_yaml(base), str(base)), str(base))
    user = _flatten(read_yaml(config_file), str(config_file)) if config_file else {}
    overrides = dict(overrides or {})
    name = dataset or overrides.get("dataset") or user.get("data.dataset") or user.get("dataset")
    name = name or config.data.dataset
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset '{name}'; expected one of: {', '.join(DATASETS)}")
    where = f"configs/datasets/{name}.yaml"
    every, frozen = dataset_defaults(name)
    config = apply_overrides(config, every, where)
    if dataset:
        overrides["data.dataset"] = dataset
    later = [(user, str(config_file) if config_file else ""), (overrides, "--set")]
    if _on_frozen_bert(config, later):  # settled by every layer, the later ones included
        config = apply_overrides(config, frozen, where)
    for values, source in later:
        config = apply_overrides(config, values, source)
    return validate(config)


def _on_frozen_bert(config: Config, later: list[tuple[dict[str, Any], str]]) -> bool:
    for values, source in later:
        config = apply_overrides(config, values, source)
    return config.model.text_encoder == "bert" and config.model.bert_freeze


CHOICES = {
    ("model", "proj"): ("linear", "conv"),
    ("model", "graph"): ("path", "knn"),
    ("model", "band_split"): ("uniform", "log"),
    ("model", "router_mix"): ("sum", "gate"),
    ("model", "text_encoder"): ("features", "bert"),
    ("train", "device"): ("auto", "cpu", "cuda"),
    ("train", "precision"): ("auto", "bf16", "fp32"),
    ("train", "select_mode"): (None, "min", "max"),
    ("data", "dataset"): DATASETS,
}


SEED_LIMIT = 2**32  # numpy's seeds: integers 0 <= seed < 2**32
# each number's range as (test, what is expected); every number must also be finite (NaN and
# infinities slip through `<` and `>` tests)
POSITIVE = (lambda v: v > 0, "a positive value")
NON_NEGATIVE = (lambda v: v >= 0, "a value >= 0")
UNIT = (lambda v: 0 <= v < 1, "a value in [0, 1)")
SEED = (lambda v: 0 <= v < SEED_LIMIT, f"a seed 0..{SEED_LIMIT - 1}")
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "data.scale": POSITIVE,
    "data.synth_seed": SEED,
    "data.folds": NON_NEGATIVE,
    "data.fold": NON_NEGATIVE,
    **dict.fromkeys(
        (
            "model.hidden",
            "model.layers",
            "model.heads",
            "model.proj_kernel",
            "model.knn_k",
            "model.bert_layers",
        ),
        POSITIVE,
    ),
    **dict.fromkeys(
        ("model.num_bands", "model.expert_mult", "model.tau_band", "model.tau_mod", "model.tau_c"),
        POSITIVE,
    ),
    "model.dropout": UNIT,
    "model.c_ema": UNIT,
    **dict.fromkeys(
        ("model.lambda_mcm", "model.lambda_kd", "model.lambda_bi", "model.mcm_warmup_epochs"),
        NON_NEGATIVE,
    ),
    "model.band_top_k": NON_NEGATIVE,
    **dict.fromkeys(("train.lr", "train.bert_lr", "train.batch_size", "train.epochs"), POSITIVE),
    **dict.fromkeys(
        ("train.weight_decay", "train.patience", "train.grad_clip", "train.threads"),
        NON_NEGATIVE,
    ),
    "train.seed": SEED,
}


def validate(config: Config) -> Config:
    """Range and choice checks that types alone do not catch; every number must be finite."""
    for (section, key), allowed in CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in allowed:
            shown = ", ".join(str(a) for a in allowed if a is not None)
            raise ConfigError(f"{section}.{key}: expected one of {shown}, got {value!r}")
    for name, (holds, expected) in RANGES.items():
        section, key = name.split(".")
        value = getattr(getattr(config, section), key)
        if not math.isfinite(value) or not holds(value):
            raise ConfigError(f"{name}: expected {expected}, got {value}")
    m = config.model
    if m.hidden % m.heads:
        raise ConfigError(f"model.hidden ({m.hidden}) must be divisible by model.heads ({m.heads})")
    if m.band_top_k > m.num_bands:
        raise ConfigError(
            f"model.band_top_k: expected 0..num_bands ({m.num_bands}), got {m.band_top_k}"
        )
    _check_text_encoder(m)
    _check_folds(config.data)
    return config


def _check_folds(d: DataConfig) -> None:
    if d.folds == 1:
        raise ConfigError("data.folds: expected 0 (the dataset's own splits) or at least 2, got 1")
    if d.fold and not d.folds:
        raise ConfigError(f"data.fold {d.fold} needs data.folds (the number of folds, >= 2)")
    if d.fold >= max(d.folds, 1):
        raise ConfigError(
            f"data.fold: expected 0..{d.folds - 1} (data.folds {d.folds}), got {d.fold}"
        )


def _check_text_encoder(m: ModelConfig) -> None:
    """A frozen encoder is a BERT folder whose states replace the text features."""
    if m.bert_freeze and m.text_encoder != "bert":
        raise ConfigError(
            f"model.bert_freeze: needs model.text_encoder 'bert', got {m.text_encoder!r}"
        )
    if m.text_encoder == "bert" and not m.bert_path:
        raise ConfigError(
            "model.bert_path: required when model.text_encoder is 'bert' "
            "(a local folder with a BERT config and weights)"
        )


SYNTHETIC_ONLY = ("scale", "synth_seed", "aligned", "cache_dir")  # data keys of the stand-in


def check_pins(config: Config, pinned: dict[str, Any], flags: dict[str, str] | None = None) -> None:
    """`--set` keys that the resolved run would ignore are refused: a key that a given flag
    also sets (`flags`: key -> the flag; the flag would win), and the generated stand-in's own
    keys on a run that reads real data."""
    for key in pinned:
        name = key.split(".")[-1]
        if name in (flags or {}):
            raise ConfigError(f"--set {key} and {flags[name]} both set {name}: give one of them")
        if key.removeprefix("data.") in SYNTHETIC_ONLY and not config.data.synthetic:
            raise ConfigError(
                f"--set {key}: sets the generated stand-in data, but this run reads real "
                "data; drop it, or add --synthetic"
            )


def from_dict(doc: dict[str, Any]) -> Config:
    """Rebuild a Config from `to_dict()` output (as written to results)."""
    return validate(apply_overrides(Config(), _flatten(doc, "config")))


def write(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
