"""The resolved flags of one search, the base configuration they imply, and their saved copy.

`--smoke-test` fills in a tiny budget for whatever was not given explicitly. The settings are
saved as `search.json` under `--out`; `--resume OUT` reads them back, so a resumed search runs
with exactly the settings it started with. `--out` is a folder or a URI (see
`search.runtime.storage`).
Tested in `tests/search/test_run.py`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atsuko import config as cfg
from atsuko.config import Config
from atsuko.errors import ConfigError
from search import layout
from search.runtime.storage import Storage

FINAL_SEED0 = 1111  # the field reports seeds 1111..1115

SMOKE = {  # --smoke-test: tiny and fast, for CI (explicit flags still win)
    "num_samples": 3,
    "max_epochs": 2,
    "concurrency": 2,
    "final_seeds": 2,
    "scale": 0.02,
}
DEFAULTS = {
    "num_samples": 20,
    "max_epochs": None,  # the configuration's train.epochs
    "concurrency": None,  # as many trials as the cluster's CPUs (GPUs) hold
    "final_seeds": 5,
    "scale": None,  # synthetic data at the configuration's data.scale
}
# flags that --resume allows beside it (where and how to run, not what to search) ...
RESUME_FLAGS = ("address", "dashboard_host", "dashboard_port", "metrics_port")
# ... and what to add to the outputs once the search ends (read by search.workflow)
AFTER_SEARCH_FLAGS = ("diagnostics", "diagnostics_epochs", "importance")


# ASHA's defaults (`search/run.py` without flags), chosen on the replay comparison of the
# recorded curves (README, "Search efficiency on recorded curves")
GRACE_DIVISOR = 8  # first rung at max-epochs / GRACE_DIVISOR
REDUCTION_FACTOR = 4  # each rung keeps the best 1 / REDUCTION_FACTOR of the trials reaching it
BRACKETS = 1


def default_grace(max_epochs: int) -> int:
    """ASHA's first rung (epochs) when `--grace-period` is not given."""
    return max(1, max_epochs // GRACE_DIVISOR)


ONSET_DIVISOR = 5  # --scheduler onset judges a trial at max-epochs / ONSET_DIVISOR ...
ONSET_MIN = 2  # ... and never before its second epoch (the first is often still at the baseline)


def default_onset(max_epochs: int) -> int:
    """The epoch of the learning-onset stop when `--onset-epoch` is not given."""
    return min(max_epochs, max(ONSET_MIN, round(max_epochs / ONSET_DIVISOR)))


@dataclass
class Settings:
    dataset: str | None = None
    synthetic: bool = False
    data: str | None = None
    config: str | None = None
    sets: list[str] = field(default_factory=list)
    space: str | None = None
    num_samples: int = 20
    max_epochs: int | None = None
    concurrency: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    sampler: str = "tpe"
    scheduler: str = "asha"
    grace_period: int | None = None
    reduction_factor: int = REDUCTION_FACTOR
    brackets: int = BRACKETS
    onset_epoch: int | None = None  # --scheduler onset: default_onset(max epochs)
    seed: int = 0
    time_budget: float | None = None
    epoch_budget: int | None = None
    max_failures: int = 1
    final_seeds: int = 5
    warm_start: list[str] = field(default_factory=list)  # earlier searches' --out locations
    warm_start_k: int = 5  # configurations taken from them
    final_top_k: int = 3
    final_margin: float = 1.0  # standard errors a trial's paired gain must beat the default by
    final_cv: bool = False  # each final seed validates on its own fold of train and valid
    scale: float | None = None
    smoke_test: bool = False
    out: str = ""
    address: str | None = None
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int | None = None
    metrics_port: int | None = None

    @property
    def storage(self) -> Storage:
        """Where the outputs go: `--out` as a folder, or a URI and its local working folder."""
        return Storage(self.out)

    @property
    def out_dir(self) -> Path:
        """The local folder of the driver's files (`--out` itself unless it is a URI)."""
        return self.storage.local_dir

    @property
    def seeds(self) -> list[int]:
        return [FINAL_SEED0 + i for i in range(self.final_seeds)]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def from_args(ns: Any) -> Settings:
    """Settings from parsed flags (None = not given): smoke-test and defaults fill the rest."""
    given = {k: v for k, v in vars(ns).items() if v is not None and v is not False}
    if ns.resume:
        return _for_resume(ns, given)
    if not ns.dataset:
        raise ConfigError("--dataset is required (one of: " + ", ".join(cfg.DATASETS) + ")")
    fill = SMOKE if ns.smoke_test else DEFAULTS
    values = {k: given.get(k, fill[k]) for k in fill}
    synthetic = bool(ns.synthetic or (ns.smoke_test and not ns.data))
    out = ns.out or str(Path("runs") / "search" / f"{ns.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    keep = {f.name for f in dataclasses.fields(Settings)}
    plain = {k: v for k, v in given.items() if k in keep and k not in values}
    settings = Settings(**{**plain, **values, "synthetic": synthetic, "out": out})
    check(settings)
    return settings


def _for_resume(ns: Any, given: dict[str, Any]) -> Settings:
    allowed = RESUME_FLAGS + AFTER_SEARCH_FLAGS
    extra = sorted(k for k in given if k not in (*allowed, "resume"))
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in allowed)
        raise ConfigError(
            f"--resume continues a search with the settings saved in it; drop "
            f"--{extra[0].replace('_', '-')} (allowed beside --resume: {flags})"
        )
    settings = load(ns.resume)
    for key in RESUME_FLAGS:
        if key in given:
            setattr(settings, key, given[key])
    return settings


def check(s: Settings) -> None:
    """Cross-flag checks that argparse cannot express (those that need the resolved
    configuration are in `base_config`)."""
    if s.final_cv and s.final_seeds < 2:
        raise ConfigError(
            f"--final-cv cuts train and valid into one fold per final seed: it needs "
            f"--final-seeds 2 or more, got {s.final_seeds}"
        )
    if s.concurrency is not None and s.concurrency > s.num_samples:
        raise ConfigError(
            f"--concurrency {s.concurrency}: at most --num-samples ({s.num_samples}) trials can "
            "run at once; lower it or raise --num-samples"
        )
    Storage(s.out)  # an --out URI that pyarrow cannot open ends here, before anything starts


def base_config(s: Settings) -> tuple[Config, dict[str, Any]]:
    """The configuration every trial starts from, and the keys `--set` pinned.

    Precedence as `atsuko.train`: defaults < dataset defaults < `--config` < `--set`; then the
    search's own settings (epochs, threads per trial, device, synthetic scale).
    """
    pinned = cfg.parse_set(s.sets)
    _refuse_resource_pins(pinned)
    overrides = {**pinned, **cfg.source_overrides(s.synthetic, s.data)}
    if s.scale is not None and "scale" not in pinned and "data.scale" not in pinned:
        overrides["data.scale"] = s.scale
    if s.max_epochs is not None:
        overrides["train.epochs"] = s.max_epochs
    overrides["train.threads"] = max(1, int(s.cpus_per_trial))
    overrides["train.device"] = "cuda" if s.gpus_per_trial > 0 else "cpu"
    config = cfg.resolve(s.config, overrides, dataset=s.dataset)
    _name_replaced_resources(s.config, overrides)
    cfg.check_pins(config, pinned, _flags_of_keys(s))
    _check_grace(s, config.train.epochs)
    if s.final_cv and config.data.folds:
        raise ConfigError(
            f"--final-cv cuts train and valid into folds itself, but the configuration sets "
            f"data.folds {config.data.folds}; drop one of them"
        )
    return config, pinned


# config keys a search sets itself from each trial's resources, and the flags that set them
RESOURCE_KEYS = {
    "device": "--gpus-per-trial (a trial runs on cuda when it is above 0)",
    "threads": "--cpus-per-trial (a trial's torch threads)",
}


def _refuse_resource_pins(pinned: dict[str, Any]) -> None:
    """`--set device=...`/`threads=...` would be replaced by the per-trial resources: refused."""
    for key in pinned:
        name = key.removeprefix("train.")
        if name in RESOURCE_KEYS:
            raise ConfigError(
                f"--set {key}: a search sets each trial's {name} from its resources; "
                f"use {RESOURCE_KEYS[name]} instead"
            )


def _name_replaced_resources(config_file: str | None, overrides: dict[str, Any]) -> None:
    """A `--config` file's device/threads cannot apply to a trial (its resources set them): said
    in one line where the file asks for something else (`auto` asks for nothing)."""
    if not config_file:
        return
    train = cfg.read_yaml(config_file).get("train") or {}
    for name, flag in RESOURCE_KEYS.items():
        asked, used = train.get(name), overrides[f"train.{name}"]
        if asked is not None and asked not in ("auto", used):
            print(
                f"note: {config_file}: train.{name} {asked} is replaced by each trial's "
                f"{used}, from {flag}",
                flush=True,
            )


def _flags_of_keys(s: Settings) -> dict[str, str]:
    """The config keys that given flags of the search set (key -> flag)."""
    flags = {"dataset": "--dataset", "path": "--data" if s.data else None}
    if s.max_epochs is not None:
        flags["epochs"] = "--max-epochs" + (" (or --smoke-test, which sets it)" * s.smoke_test)
    return {k: v for k, v in flags.items() if v}


def _check_grace(s: Settings, epochs: int) -> None:
    """ASHA's first rung, and the onset stop's epoch, must come before a trial's last epoch
    (the resolved `train.epochs`, which `--max-epochs` sets)."""
    source = "--max-epochs" if s.max_epochs is not None else "the configuration's train.epochs"
    if s.grace_period is not None and s.grace_period > epochs:
        raise ConfigError(
            f"--grace-period {s.grace_period} is above the {epochs} epochs of a trial "
            f"({source}): the scheduler's first rung must come before the last epoch"
        )
    if s.onset_epoch is not None and s.onset_epoch > epochs:
        raise ConfigError(
            f"--onset-epoch {s.onset_epoch} is above the {epochs} epochs of a trial ({source}): "
            "the onset stop must come before the last epoch"
        )


def save(s: Settings, base: Config) -> None:
    out = s.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / layout.SETTINGS).write_text(json.dumps(s.to_json(), indent=2) + "\n")
    cfg.write(base, out / layout.BASE_CONFIG)


def load(folder: str | Path) -> Settings:
    """The settings saved by the search in `folder`, a folder or a URI (for --resume).

    From a URI, the driver's files are first copied into its local working folder.
    """
    store = Storage(folder, flag="--resume").fetch()
    shown = store.uri if store.remote else folder
    path = store.local_dir / layout.SETTINGS
    if not path.is_file():
        raise ConfigError(
            f"--resume {shown}: no {layout.SETTINGS} there; expected the --out folder of a search"
        )
    try:
        doc = json.loads(path.read_text())
        settings = Settings(**doc)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable search settings ({exc})") from None
    settings.out = store.location
    return settings


def load_base(folder: str | Path) -> Config:
    """The base configuration saved next to the search (exactly what its trials used)."""
    return cfg.from_dict(cfg.read_yaml(Path(folder) / layout.BASE_CONFIG))
