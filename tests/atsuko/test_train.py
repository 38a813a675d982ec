"""The training loop and its CLI: contract, determinism, resume, divergence, bad input."""

import json
import subprocess
import sys

import pytest
import torch

from atsuko import checkpoint
from atsuko import config as cfg
from atsuko.data import load_from_config
from atsuko.model import Atsuko
from atsuko.train import NonFiniteLoss, fit, training_ends

SMALL = {"synthetic": True, "scale": 0.05, "epochs": 2, "hidden": 16, "heads": 2, "batch_size": 16}
SMALL["device"] = "cpu"  # exact equality holds on a CPU; on CUDA it needs train.deterministic


def small_config(tmp_path, **extra):
    return cfg.resolve(
        overrides={**SMALL, "cache_dir": str(tmp_path / "cache"), **extra}, dataset="mosi"
    )


@pytest.fixture(autouse=True)
def _deterministic_off():
    yield
    torch.use_deterministic_algorithms(False)  # a process-wide switch that a Trainer sets


@pytest.fixture(scope="module")
def data_and_config(tmp_path_factory):
    c = small_config(tmp_path_factory.mktemp("train"))
    return c, load_from_config(c.data)


def test_same_seed_same_metrics(data_and_config):
    c, data = data_and_config
    a = fit(c, data, log=None)
    b = fit(c, data, log=None)
    assert a.valid == b.valid and a.test == b.test
    other = fit(c.replace(seed=7), data, log=None)
    assert other.valid != a.valid


@pytest.mark.parametrize("deterministic", [False, True])
def test_resume_from_state_matches_an_uninterrupted_run(data_and_config, deterministic, tmp_path):
    c, data = data_and_config
    c = c.replace(epochs=3, patience=0, deterministic=deterministic)
    straight = fit(c, data, log=None)
    saved = tmp_path / "trainer.pt"

    def stop_after_one(record, trainer):
        torch.save(trainer.state_dict(), saved)
        return record.epoch == 1

    fit(c, data, on_epoch=stop_after_one, log=None)
    resumed = fit(c, data, state=checkpoint.load(saved), log=None)  # weights_only
    assert [r.epoch for r in resumed.history] == [1, 2, 3]
    assert [r.valid for r in resumed.history] == [r.valid for r in straight.history]
    assert resumed.test == straight.test


def test_outputs_and_test_scored_once(tmp_path, data_and_config, monkeypatch):
    from atsuko import train

    c, data = data_and_config
    calls = []
    original = train.Trainer.evaluate
    monkeypatch.setattr(
        train.Trainer, "evaluate", lambda self, split: calls.append(split) or original(self, split)
    )
    result = fit(c, data, out=tmp_path / "run", log=None)
    assert calls.count("test") == 1 and calls.count("valid") == len(result.history)
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert cfg.resolve(tmp_path / "run" / "config.yaml") == c
    assert json.loads((tmp_path / "run" / "results.json").read_text())["best_epoch"] >= 1
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    r = result.history[-1]
    assert set(r.router) >= {"w/audio", "w/text", "w/vision", "alpha/text/0"}
    assert sum(v for k, v in r.router.items() if k.startswith("w/")) == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize("patience,lr,last", [(1, 1e-12, 2), (0, 1e-12, 4)])
def test_training_ends_tells_the_last_epoch_before_it_runs(data_and_config, patience, lr, last):
    c, data = data_and_config
    c = c.replace(epochs=4, patience=patience, lr=lr)  # lr ~0: no epoch beats the first
    ends: list[tuple[int, bool]] = []
    fit(
        c,
        data,
        log=None,
        score_test=False,
        on_epoch=lambda r, _: ends.append((r.epoch, training_ends(r.epoch, r.best_epoch, c))),
    )
    assert ends == [(e, e == last) for e in range(1, last + 1)]


def test_non_finite_loss_raises(data_and_config, monkeypatch):
    c, data = data_and_config
    original = Atsuko.loss

    def poisoned(self, out, labels, epoch):
        result = original(self, out, labels, epoch)
        result.total = result.total * torch.tensor(float("nan"))
        return result

    monkeypatch.setattr(Atsuko, "loss", poisoned)
    with pytest.raises(NonFiniteLoss, match="epoch 1, step 1"):
        fit(c, data, log=None)


def test_non_finite_validation_score_raises(data_and_config, monkeypatch):
    """A finite loss but NaN predictions: an error like a NaN loss, never a run scored +-inf."""
    import atsuko.train as train

    c, data = data_and_config
    original = train.score

    def poisoned(name, pred, truth):
        return {**original(name, pred, truth), "MAE": float("nan")}

    monkeypatch.setattr(train, "score", poisoned)
    with pytest.raises(NonFiniteLoss, match="non-finite validation MAE .nan. at epoch 1"):
        fit(c, data, log=None)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "atsuko.train", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_cli_json_contract(tmp_path):
    cache = f"cache_dir={tmp_path}"
    args = ["--dataset", "mosi", "--synthetic", "--epochs", "1", "--seed", "3", "--json"]
    p = run_cli(*args, "--set", "scale=0.05", "--set", "hidden=16", "--set", cache)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout.strip().splitlines()[-1])
    assert doc["dataset"] == "mosi" and doc["seed"] == 3 and doc["best_epoch"] == 1
    assert set(doc["valid"]) == set(doc["test"]) >= {"Mult_acc_7", "Non0_acc_2", "MAE", "Corr"}
    assert "epoch   1/1" in p.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "mosi", "--bogus"], "unrecognized arguments: --bogus"),
        (["--dataset", "mosi", "--set", "tau_bnd=1"], "unknown parameter 'tau_bnd'"),
        (["--dataset", "mosi", "--data", "nowhere/aligned_50.pkl"], "--synthetic"),
        (["--config", "nowhere.yaml"], "config file not found: nowhere.yaml"),
    ],
)
def test_cli_bad_input_exit_2(args, message):
    p = run_cli(*args)
    assert p.returncode == 2
    assert message in p.stderr and "Traceback" not in p.stderr
