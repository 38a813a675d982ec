"""The search-space YAML: the default space, define-by-run sampling, and every bad space."""

from __future__ import annotations

import optuna
import pytest

from atsuko.config import resolve, validate
from atsuko.errors import ConfigError
from search.study.space import DEFAULT_SPACE, load_space

SWEPT = {
    *("num_bands", "band_split", "tau_band", "tau_mod", "tau_c"),
    *("lambda_mcm", "lambda_kd", "lambda_bi", "lr", "dropout"),
    *("hidden", "layers", "weight_decay", "batch_size"),
}


@pytest.fixture(scope="module")
def base():
    return resolve(None, {"data.synthetic": True}, dataset="mosei")


def write(tmp_path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def sample(space, n: int, seed: int = 0) -> list[dict]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        space(trial)
        out.append(trial.params)
        study.tell(trial, 0.0)
    return out


def test_default_space_sweeps_the_papers_parameters_with_every_kind(base):
    space = load_space(None, base)
    assert set(space.names) == SWEPT
    kinds = {p.kind for p in space.params}
    assert kinds == {"int", "float", "categorical"}
    assert any(p.log for p in space.params) and any(p.when for p in space.params)
    assert space.source == str(DEFAULT_SPACE)


def test_samples_are_valid_configs_and_conditions_hold(base):
    space = load_space(None, base)
    seen_single = False
    for params in sample(space, 40):
        config = space.apply(base, params)
        validate(config)
        assert config.model.tau_mod == params["tau_mod"] and config.train.lr == params["lr"]
        if params["num_bands"] == 1:
            seen_single = True
            assert "band_split" not in params and "tau_band" not in params
            assert config.model.tau_band == base.model.tau_band  # the base value applies
        else:
            assert {"band_split", "tau_band"} <= set(params)
    assert seen_single


def test_distributions_match_what_is_sampled(base):
    space = load_space(None, base)
    dists = space.distributions()
    for params in sample(space, 10):
        for key, value in params.items():
            assert dists[key]._contains(dists[key].to_internal_repr(value))


def test_pinned_keys_leave_the_space_and_decide_conditions(base, tmp_path):
    pinned = base.replace(num_bands=1)
    space = load_space(None, pinned, pinned={"num_bands": 1})
    assert "num_bands" not in space.names and "band_split" not in space.names
    assert "tau_band" not in space.names and space.pinned == ("num_bands",)
    space = load_space(None, base.replace(num_bands=4), pinned={"model.num_bands": 4})
    assert {"band_split", "tau_band"} <= set(space.names)
    assert all(not p.when for p in space.params)


def test_numbers_written_as_yaml_strings_are_accepted(base, tmp_path):
    space = load_space(
        write(tmp_path, "params:\n  lr: {type: float, low: 1e-4, high: 1e-2, log: true}\n"), base
    )
    assert space.params[0].low == pytest.approx(1e-4)


P = "params:\n  "
BAD = {  # case: (file text, what the message must name)
    "unknown parameter": (P + "tau_bands: {type: float, low: 0.1, high: 1}", "tau_bands"),
    "low above high": (P + "lr: {type: float, low: 0.1, high: 0.01}", "params.lr: low"),
    "float for an int field": (P + "hidden: {type: float, low: 8, high: 64}", "hidden.type"),
    "bound not a number": (P + "lr: {type: float, low: fast, high: 0.1}", "params.lr.low"),
    "int with a fraction": (P + "layers: {type: int, low: 1.5, high: 3}", "params.layers.low"),
    "choice of the wrong type": (
        P + "band_split: {type: categorical, choices: [uniform, 3]}",
        "params.band_split.choices[1]",
    ),
    "choice out of range": (
        P + "band_split: {type: categorical, choices: [uniform, cubic]}",
        "params.band_split.choices[1]",
    ),
    "empty choices": (P + "hidden: {type: categorical, choices: []}", "params.hidden.choices"),
    "unknown type": (P + "lr: {type: gaussian, low: 0, high: 1}", "params.lr.type"),
    "unknown key": (P + "lr: {type: float, low: 0.001, high: 0.1, lg: true}", "'lg'"),
    "log of zero": (P + "lambda_bi: {type: float, low: 0, high: 1, log: true}", "lambda_bi"),
    "outside the range": (P + "dropout: {type: float, low: 0.1, high: 1.0}", "dropout.high"),
    "missing high": (P + "lr: {type: float, low: 0.001}", "missing 'high'"),
    "spec not a mapping": (P + "lr: 0.01", "params.lr"),
    "data key": (P + "scale: {type: float, low: 0.1, high: 1}", "params.scale"),
    "condition on a later parameter": (
        P + "tau_band: {type: float, low: 0.1, high: 1, when: {num_bands: {min: 2}}}\n"
        "  num_bands: {type: int, low: 1, high: 4}",
        "when.num_bands",
    ),
    "condition on an unknown key": (
        P + "tau_band: {type: float, low: 0.1, high: 1, when: {bands: 2}}",
        "when.bands",
    ),
    "bad condition range": (
        P + "num_bands: {type: int, low: 1, high: 4}\n"
        "  tau_band: {type: float, low: 0.1, high: 1, when: {num_bands: {min: 3, max: 2}}}",
        "when.num_bands",
    ),
    "no params": ("space: {}", "top-level key 'space'"),
    "empty params": ("params: {}", "'params'"),
    "bad YAML": (P + "lr: {type: float, low: [0.1", "not valid YAML"),
    "not a mapping": ("- lr", "mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_wrong_space_is_a_config_error_naming_the_key(case, base, tmp_path):
    text, expected = BAD[case]
    path = write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as err:
        load_space(path, base)
    message = str(err.value)
    assert expected in message, message
    assert str(path) in message or "unknown parameter" in message


def test_missing_space_file(base, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_space(tmp_path / "nope.yaml", base)


def test_everything_pinned_is_an_error(base, tmp_path):
    path = write(tmp_path, "params:\n  lr: {type: float, low: 0.001, high: 0.1}\n")
    with pytest.raises(ConfigError, match="nothing left to search"):
        load_space(path, base, pinned={"lr": 0.01})
