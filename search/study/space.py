"""Search-space YAML -> an Optuna define-by-run space, checked before any trial starts.

The file (see `configs/search/default.yaml`) has one mapping, `params`, from an `atsuko.config`
field name to its distribution: `int`, `float` (either with `log: true`) or `categorical`, and an
optional `when:` condition on parameters listed above it. Every mistake (unknown parameter,
low above high, a value of the wrong type, bad YAML) is a `ConfigError` naming the file and key.
The space object itself is the define-by-run function: it only calls `trial.suggest_*`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from atsuko import config as cfg
from atsuko.config import Config
from atsuko.errors import ConfigError

DEFAULT_SPACE = cfg.CONFIG_DIR / "search" / "default.yaml"
KINDS = ("int", "float", "categorical")
SPEC_KEYS = {
    "int": {"type", "low", "high", "step", "log", "when"},
    "float": {"type", "low", "high", "step", "log", "when"},
    "categorical": {"type", "choices", "when"},
}


@dataclass(frozen=True)
class Condition:
    """`when: {key: value | [values] | {min: x, max: y}}` for one key."""

    key: str
    values: tuple[Any, ...] | None = None  # allowed values (equality)
    low: float | None = None
    high: float | None = None

    def holds(self, value: Any) -> bool:
        if value is None:
            return False
        if self.values is not None:
            return value in self.values
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class Param:
    """One searched config field and its distribution."""

    name: str  # bare atsuko.config field name, e.g. 'tau_band'
    kind: str  # int | float | categorical
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    when: tuple[Condition, ...] = ()

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.kind == "int":
            return optuna.distributions.IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        if self.kind == "float":
            return optuna.distributions.FloatDistribution(
                float(self.low), float(self.high), log=self.log, step=self.step
            )
        return optuna.distributions.CategoricalDistribution(list(self.choices))

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "int":
            step = int(self.step or 1)
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=step, log=self.log
            )
        if self.kind == "float":
            return trial.suggest_float(
                self.name, float(self.low), float(self.high), step=self.step, log=self.log
            )
        return trial.suggest_categorical(self.name, list(self.choices))

    def active(self, values: dict[str, Any]) -> bool:
        return all(c.holds(values.get(c.key)) for c in self.when)


@dataclass(frozen=True)
class Space:
    """An ordered list of parameters; calling it on an Optuna trial samples one configuration."""

    params: tuple[Param, ...]
    source: str = ""
    pinned: tuple[str, ...] = field(default=())  # keys removed because --set fixed them

    def __call__(self, trial: optuna.Trial) -> None:
        """Define-by-run: only `trial.suggest_*` calls, in file order, honouring `when:`."""
        values: dict[str, Any] = {}
        for p in self.params:
            if p.active(values):
                values[p.name] = p.suggest(trial)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {p.name: p.distribution() for p in self.params}

    def apply(self, base: Config, params: dict[str, Any]) -> Config:
        """The trial's full configuration: the base with the sampled values applied."""
        return base.replace(**{k: v for k, v in params.items() if k in self.names})


def _number(value: Any, where: str, integer: bool = False) -> float | int:
    """A bound or step: a YAML number, or a string like `1e-4` (YAML 1.1 reads it as text)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if integer:
        if float(value) != int(value):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    return float(value)


def _field_kind(section: str, key: str) -> set[str]:
    """Which Python scalar types a config field accepts ('int', 'float', 'str', 'bool')."""
    hint = cfg.field_type(section, key)
    args = getattr(hint, "__args__", (hint,))
    return {a.__name__ for a in args if a is not type(None)}


def _condition(key: str, spec: Any, where: str) -> Condition:
    if isinstance(spec, dict):
        unknown = set(spec) - {"min", "max"}
        if unknown or not spec:
            raise ConfigError(f"{where}: a range condition has keys min and/or max, got {spec!r}")
        low = _number(spec["min"], f"{where}.min") if "min" in spec else None
        high = _number(spec["max"], f"{where}.max") if "max" in spec else None
        if low is not None and high is not None and low > high:
            raise ConfigError(f"{where}: min ({low}) is above max ({high})")
        return Condition(key, low=low, high=high)
    values = tuple(spec) if isinstance(spec, list) else (spec,)
    return Condition(key, values=values)


def _check_value(base: Config, name: str, value: Any, where: str) -> Any:
    """Type-check a candidate value and run the config's own range checks on it."""
    section = cfg.section_of(name)
    try:
        value = cfg.coerce(section, name, value)
        cfg.validate(base.replace(**{name: value}))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return value


def _param(name: str, spec: Any, where: str, base: Config) -> Param:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping with 'type', got {spec!r}")
    kind = spec.get("type")
    if kind not in KINDS:
        raise ConfigError(f"{where}.type: expected one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(spec) - SPEC_KEYS[kind])
    if unknown:
        allowed = ", ".join(sorted(SPEC_KEYS[kind]))
        raise ConfigError(
            f"{where}: unknown key '{unknown[0]}' for type {kind}; expected {allowed}"
        )
    section = cfg.section_of(name)
    accepts = _field_kind(section, name)
    when = []
    for key, cond in (spec.get("when") or {}).items():
        cwhere = f"{where}.when.{key}"
        bare = key.split(".", 1)[-1]
        try:
            cfg.section_of(bare)
        except ConfigError as exc:
            raise ConfigError(f"{cwhere}: {exc}") from None
        if bare == name:
            raise ConfigError(f"{cwhere}: a parameter cannot depend on itself")
        when.append(_condition(bare, cond, cwhere))
    if spec.get("when") is not None and not isinstance(spec.get("when"), dict):
        raise ConfigError(f"{where}.when: expected a mapping of parameter: condition")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.choices: expected a non-empty list, got {choices!r}")
        checked = []
        for i, choice in enumerate(choices):
            if isinstance(choice, str) and ("float" in accepts or "int" in accepts):
                choice = _number(choice, f"{where}.choices[{i}]", integer="float" not in accepts)
            if not (choice is None or isinstance(choice, bool | int | float | str)):
                raise ConfigError(f"{where}.choices[{i}]: expected a scalar, got {choice!r}")
            checked.append(_check_value(base, name, choice, f"{where}.choices[{i}]"))
        if len(set(map(repr, checked))) != len(checked):
            raise ConfigError(f"{where}.choices: duplicate values in {choices!r}")
        return Param(name, kind, choices=tuple(checked), when=tuple(when))
    if kind == "int" and "int" not in accepts:
        raise ConfigError(
            f"{where}.type: {section}.{name} takes {'/'.join(sorted(accepts))}, not int"
        )
    if kind == "float" and "float" not in accepts:
        raise ConfigError(
            f"{where}.type: {section}.{name} takes {'/'.join(sorted(accepts))}, not float"
            + ("; use type: int or categorical" if "int" in accepts else "")
        )
    for key in ("low", "high"):
        if key not in spec:
            raise ConfigError(f"{where}: missing '{key}'")
    integer = kind == "int"
    low = _number(spec["low"], f"{where}.low", integer)
    high = _number(spec["high"], f"{where}.high", integer)
    if low > high:
        raise ConfigError(f"{where}: low ({low}) is above high ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log: expected true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got {low}")
    step = None
    if spec.get("step") is not None:
        step = _number(spec["step"], f"{where}.step", integer)
        if step <= 0:
            raise ConfigError(f"{where}.step: expected a positive step, got {step}")
        if log:
            raise ConfigError(f"{where}: step and log cannot be combined")
    _check_value(base, name, low, f"{where}.low")
    _check_value(base, name, high, f"{where}.high")
    return Param(name, kind, low=low, high=high, step=step, log=log, when=tuple(when))


def load_space(
    path: str | Path | None, base: Config, pinned: dict[str, Any] | None = None
) -> Space:
    """Read and check a space file against `base`; keys in `pinned` are left out of the space.

    Conditions on keys that are not searched (pinned or absent) are decided here from `base`,
    so a parameter whose condition can never hold is dropped before the search starts.
    """
    path = Path(path) if path is not None else DEFAULT_SPACE
    doc = cfg.read_yaml(path)
    unknown = sorted(set(doc) - {"params"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key '{unknown[0]}'; expected 'params'")
    params_doc = doc.get("params")
    if not isinstance(params_doc, dict) or not params_doc:
        raise ConfigError(f"{path}: 'params' must be a non-empty mapping of parameter: spec")
    pinned_bare = {k.split(".", 1)[-1] for k in (pinned or {})}
    params: dict[str, Param] = {}
    for raw_name, spec in params_doc.items():
        where = f"{path}: params.{raw_name}"
        if not isinstance(raw_name, str):
            raise ConfigError(f"{where}: parameter names are strings")
        name = raw_name.split(".", 1)[-1]
        try:
            section = cfg.section_of(name)
            if "." in raw_name and raw_name.split(".", 1)[0] != section:
                raise ConfigError(f"'{name}' belongs to section '{section}'")
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if section == "data":
            raise ConfigError(f"{where}: data.{name} describes the dataset and cannot be searched")
        if name in params:
            raise ConfigError(f"{where}: '{name}' appears twice")
        param = _param(name, spec, where, base)
        if name in pinned_bare:
            continue
        params[name] = param
    names = {k.split(".", 1)[-1] for k in params_doc if isinstance(k, str)}
    kept: dict[str, Param] = {}
    dropped: set[str] = set()
    for name, param in params.items():
        dynamic, alive = [], True
        for c in param.when:
            if c.key in kept:
                dynamic.append(c)
            elif c.key in dropped:
                alive = False
            elif c.key in names and c.key not in pinned_bare:
                raise ConfigError(
                    f"{path}: params.{name}.when.{c.key}: a condition may only use parameters "
                    "listed above it"
                )
            else:  # not searched: decided now from the base configuration
                alive = alive and c.holds(getattr(getattr(base, cfg.section_of(c.key)), c.key))
        if alive:
            kept[name] = dataclasses.replace(param, when=tuple(dynamic))
        else:
            dropped.add(name)
    if not kept:
        raise ConfigError(f"{path}: every parameter is pinned by --set; nothing left to search")
    return Space(tuple(kept.values()), source=str(path), pinned=tuple(sorted(pinned_bare & names)))
