"""Config resolution: layered precedence, type checks, clear errors, lossless round trip."""

import dataclasses
import tempfile
import typing
from pathlib import Path

import pytest

from atsuko import config as cfg
from atsuko.errors import ConfigError


def test_precedence_dataset_defaults_then_file_then_set(tmp_path):
    base = cfg.resolve(dataset="mosei")
    assert base.train.batch_size == 64  # configs/datasets/mosei.yaml defaults
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  tau_band: 0.3\ntrain:\n  batch_size: 8\n")
    c = cfg.resolve(f, {"batch_size": 4}, dataset="mosei")
    assert c.model.tau_band == 0.3 and c.train.batch_size == 4
    assert c.data.dataset == "mosei"


FROZEN = {"model.text_encoder": "bert", "model.bert_freeze": True, "model.bert_path": "minilm"}


def test_frozen_bert_defaults_apply_only_on_frozen_states(tmp_path):
    """MOSI's `frozen_bert_defaults` sit above its `defaults` and below a --config and --set,
    and apply only where the layers together ask for frozen BERT states."""
    assert cfg.resolve(dataset="mosi").model.hidden == 32
    assert cfg.resolve(None, {**FROZEN, "model.bert_freeze": False}, "mosi").model.hidden == 32
    frozen = cfg.resolve(None, dict(FROZEN), "mosi")
    assert (frozen.model.hidden, frozen.model.layers, frozen.train.lr) == (128, 3, 0.00062)
    assert frozen.model.bert_layers == 4 and frozen.train.batch_size == 32  # `defaults` kept
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  text_encoder: bert\n  bert_freeze: true\n  bert_path: m\n  layers: 2\n")
    from_file = cfg.resolve(f, {"model.hidden": 64}, dataset="mosi")
    assert (from_file.model.hidden, from_file.model.layers, from_file.model.num_bands) == (64, 2, 2)
    assert cfg.resolve(None, dict(FROZEN), "mosei").model.hidden == 32  # no such block there


def test_config_file_names_the_dataset(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("data:\n  dataset: sims\n")
    assert cfg.resolve(f).data.dataset == "sims"


def test_set_parses_numbers_and_dotted_keys():
    over = cfg.parse_set(["lr=3e-3", "model.use_mcm=false", "band_split=log"])
    c = cfg.resolve(overrides=over)
    assert c.train.lr == pytest.approx(3e-3)
    assert c.model.use_mcm is False and c.model.band_split == "log"


def test_ints_widen_to_floats_but_not_the_reverse():
    assert cfg.resolve(overrides={"tau_band": 2}).model.tau_band == 2.0
    with pytest.raises(ConfigError, match=r"model.num_bands .*expected int, got 2.5"):
        cfg.resolve(overrides={"num_bands": 2.5})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"tau_bnd": 1.0}, "unknown parameter 'tau_bnd'"),
        ({"model.lr": 1.0}, "unknown parameter 'model.lr'"),
        ({"optim.lr": 1.0}, "unknown section 'optim'"),
        ({"graph": "grid"}, "model.graph: expected one of path, knn"),
        ({"tau_mod": 0.0}, "model.tau_mod: expected a positive value"),
        ({"hidden": 30}, "divisible by model.heads"),
        ({"band_top_k": 9}, "model.band_top_k"),
        ({"dropout": 1.0}, "model.dropout"),
        ({"use_sbr": "yes"}, "model.use_sbr .*expected bool"),
        ({"scale": float("nan")}, "data.scale: expected a positive value, got nan"),
        ({"lr": float("inf")}, "train.lr: expected a positive value, got inf"),
        ({"tau_band": float("-inf")}, "model.tau_band: expected a positive value"),
        ({"weight_decay": -1}, "train.weight_decay: expected a value >= 0, got -1"),
        ({"grad_clip": float("nan")}, "train.grad_clip: expected a value >= 0"),
        ({"lambda_kd": float("inf")}, "model.lambda_kd: expected a value >= 0"),
        ({"dropout": float("nan")}, "model.dropout: expected a value in"),
        ({"seed": -1}, "train.seed: expected a seed 0..4294967295, got -1"),
        ({"seed": 2**32}, "train.seed: expected a seed"),
        ({"synth_seed": -3}, "data.synth_seed: expected a seed"),
        ({"patience": -1}, "train.patience"),
        ({"threads": -2}, "train.threads"),
        ({"proj_kernel": 0}, "model.proj_kernel"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        cfg.resolve(overrides=overrides)


def test_every_number_of_the_config_has_a_range():
    """A new numeric field cannot skip validation (NaN, infinities, sign, range)."""
    numeric = {
        f"{section}.{f.name}"
        for section, kind in cfg.SECTIONS.items()
        for f in dataclasses.fields(kind)
        if typing.get_type_hints(kind)[f.name] in (int, float)
    }
    assert numeric == set(cfg.RANGES)


def test_bad_yaml_is_one_line_with_its_place(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: [lr: 1\n")
    with pytest.raises(ConfigError) as err:
        cfg.read_yaml(path)
    assert len(str(err.value).splitlines()) == 1 and "at line 2, column 1" in str(err.value)


def test_nan_from_a_config_file_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: .nan\n")
    with pytest.raises(ConfigError, match="train.lr: expected a positive value, got nan"):
        cfg.resolve(path)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        cfg.resolve(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        cfg.resolve(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        cfg.resolve(listy)
    section = tmp_path / "section.yaml"
    section.write_text("model: 3\n")
    with pytest.raises(ConfigError, match="section 'model' must be a mapping"):
        cfg.resolve(section)


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="unknown dataset 'iemocap'"):
        cfg.resolve(dataset="iemocap")


def test_set_needs_key_value():
    with pytest.raises(ConfigError, match="expected key=value"):
        cfg.parse_set(["lr"])


def test_written_config_round_trips(tmp_path):
    c = cfg.resolve(overrides={"tau_c": 0.25, "synthetic": True, "scale": 0.1}, dataset="mintrec")
    cfg.write(c, tmp_path / "config.yaml")
    assert cfg.resolve(tmp_path / "config.yaml") == c
    assert cfg.from_dict(c.to_dict()) == c


def test_model_yaml_repeats_the_dataclass_defaults():
    """The dataclasses are the one source of every default: `configs/model/atsuko.yaml` only
    repeats them for readers (and layers nothing new), key for key, value for value."""
    doc = cfg.read_yaml(cfg.CONFIG_DIR / "model" / "atsuko.yaml")
    defaults = cfg.Config().to_dict()
    assert set(doc) <= set(defaults)
    for section, values in doc.items():
        assert set(values) <= set(defaults[section]), section
        for key, value in values.items():
            assert value == defaults[section][key], f"{section}.{key}: {value!r} in the YAML"


def test_user_temp_dir_is_per_user_under_the_system_temp_dir(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "ana")
    assert cfg.user_temp_dir("search") == Path(tempfile.gettempdir()) / "atsuko-ana" / "search"

    def no_user():
        raise KeyError("no such user")

    monkeypatch.setattr("getpass.getuser", no_user)
    assert cfg.user_temp_dir("x").parent.name.startswith("atsuko-")


def test_source_overrides_a_given_path_wins():
    assert cfg.source_overrides(False, None) == {}
    assert cfg.source_overrides(True, None) == {"data.synthetic": True}
    given = {"data.path": "f.pkl", "data.synthetic": False}
    assert cfg.source_overrides(True, "f.pkl") == given == cfg.source_overrides(False, "f.pkl")
