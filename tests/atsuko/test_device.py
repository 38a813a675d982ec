"""Device, precision and determinism (`atsuko.device`), tested on the CPU with a mocked
`torch.cuda` where the decision is about a GPU; `scripts/gpu-check.sh` checks the real thing."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from atsuko import config as cfg
from atsuko import device as dev
from atsuko import gpu_check
from atsuko.data import Split
from atsuko.errors import ConfigError
from atsuko.train import Trainer, fit

REPO = Path(__file__).resolve().parents[2]
GB = 10**9
CUDA = torch.device("cuda")
SMALL = {"synthetic": True, "scale": 0.05, "epochs": 1, "hidden": 16, "heads": 2}
SMALL.update({"batch_size": 16, "device": "cpu"})


def fake_cuda(monkeypatch, *, total=24 * GB, free=24 * GB, allocated=0, reserved=0, major=8):
    """torch.cuda as a process on a `total`-byte GPU would see it (no CUDA needed)."""
    props = SimpleNamespace(total_memory=total, major=major, name="Fake GPU")
    for name, value in {
        "is_available": lambda: True,
        "mem_get_info": lambda device=None: (free, total),
        "get_device_properties": lambda device=None: props,
        "get_device_name": lambda device=None: props.name,
        "memory_allocated": lambda device=None: allocated,
        "memory_reserved": lambda device=None: reserved,
    }.items():
        monkeypatch.setattr(torch.cuda, name, value)


@pytest.fixture
def mosei_sized(monkeypatch):
    """Three stand-in splits whose sizes are MOSEI unaligned's (8.5 GB in all); moving one
    records its name instead of copying it."""
    sizes = {"train": 6.8 * GB, "valid": 0.85 * GB, "test": 0.85 * GB}
    splits = {
        name: Split(features={}, lengths={}, labels=torch.zeros(1), ids=[name]) for name in sizes
    }
    monkeypatch.setattr(dev, "split_bytes", lambda s: int(sizes[s.ids[0]]))
    monkeypatch.setattr(dev, "split_to", lambda s, device: f"{s.ids[0]} on {device}")
    return splits, sizes


def test_packed_trials_move_only_what_their_share_holds(monkeypatch, mosei_sized):
    splits, sizes = mosei_sized
    fake_cuda(monkeypatch)  # four trials starting together all see a free 24 GB card
    moved = [dev.place_splits(splits, CUDA, share=0.25)[1] for _ in range(4)]
    assert all("train" not in m and "test" not in m for m in moved)
    assert sum(sizes[n] for m in moved for n in m) <= 0.5 * 24 * GB  # the old rule: 34 GB
    placed, alone = dev.place_splits(splits, CUDA, share=1.0)
    assert alone == ["train", "valid"]  # a whole GPU takes both; test stays on the host
    assert placed["train"] == "train on cuda" and placed["test"] is splits["test"]


@pytest.mark.parametrize(
    "state, moved",
    [
        ({"free": 18 * GB, "reserved": 6 * GB}, ["train", "valid"]),  # own cache is not used
        ({"free": 5 * GB}, ["valid"]),  # another process holds most of the card
        ({"allocated": 20 * GB, "reserved": 20 * GB, "free": 4 * GB}, ["valid"]),  # own tensors
    ],
)
def test_budget_counts_own_tensors_not_own_cache(monkeypatch, mosei_sized, state, moved):
    fake_cuda(monkeypatch, **state)
    assert dev.place_splits(mosei_sized[0], CUDA, share=1.0)[1] == moved


def test_gpu_budget_and_split_choice_are_plain_arithmetic():
    kw = {"total": 24 * GB, "free": 24 * GB, "reserved": 0, "allocated": 0}
    assert dev.gpu_budget(**kw, share=0.25) == 6 * GB
    assert dev.gpu_budget(**{**kw, "free": 2 * GB}, share=0.5) == 2 * GB  # never above free
    assert dev.gpu_budget(**{**kw, "allocated": 7 * GB}, share=0.25) == 0
    assert dev.splits_to_move({"train": 4, "valid": 1}, budget=8) == ["train"]
    assert dev.splits_to_move({"train": 5, "valid": 1}, budget=8) == ["valid"]


def fake_ray(monkeypatch, resources, initialized=True):
    """A Ray whose worker was assigned `resources` (a callable, as the runtime context's)."""
    context = SimpleNamespace(get_assigned_resources=resources)
    fake = SimpleNamespace(is_initialized=lambda: initialized, get_runtime_context=lambda: context)
    monkeypatch.setitem(sys.modules, "ray", fake)


def driver_resources():
    raise AssertionError("This method is only available when the process is a worker")


@pytest.mark.parametrize(
    "resources, initialized, share",
    [
        (lambda: {"CPU": 1.0, "GPU": 0.25}, True, 0.25),  # packed four to a GPU
        (lambda: {"CPU": 1.0, "GPU": 2.0}, True, 1.0),  # two GPUs: the budget is per device
        (lambda: {"CPU": 1.0, "GPU": 0.0}, True, 1.0),  # no GPU share: a CPU trial
        (lambda: {"CPU": 1.0}, True, 1.0),
        (driver_resources, True, 1.0),  # the driver: not a worker
        (lambda: {"GPU": 0.25}, False, 1.0),  # Ray imported, never started
    ],
    ids=["quarter", "two-gpus", "zero-gpu", "cpu-only", "driver", "not-started"],
)
def test_the_share_is_what_ray_assigned_to_one_device(monkeypatch, resources, initialized, share):
    fake_ray(monkeypatch, resources, initialized)
    assert dev.assigned_gpu_share() == share


def test_the_share_is_whole_without_ray(monkeypatch):
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    assert dev.assigned_gpu_share() == 1.0


def test_a_trainer_budgets_its_gpu_data_by_the_share_ray_assigned(monkeypatch, small):
    c, data = small
    shares = []

    def place(splits, device, share):
        shares.append(share)
        return dict(splits), []

    monkeypatch.setattr(dev, "place_splits", place)
    fake_ray(monkeypatch, lambda: {"CPU": 1.0, "GPU": 0.25})
    Trainer(c, data)
    Trainer(c, data, gpu_share=0.5)  # given explicitly, it wins
    assert shares == [0.25, 0.5]


@pytest.mark.slow
def test_a_ray_task_reads_its_gpu_fraction():
    import ray

    ray.init(num_cpus=1, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        share = ray.remote(num_cpus=1, num_gpus=0.25)(dev.assigned_gpu_share)
        assert ray.get(share.remote()) == 0.25
        assert dev.assigned_gpu_share() == 1.0  # the driver
    finally:
        ray.shutdown()


@pytest.mark.parametrize(
    "precision, kind, major, expected",
    [
        ("auto", "cuda", 8, torch.bfloat16),
        ("auto", "cuda", 7, None),  # V100, T4: bf16 only emulated
        ("bf16", "cuda", 9, torch.bfloat16),
        ("fp32", "cuda", 9, None),
        ("auto", "cpu", 8, None),
        ("bf16", "cpu", 8, torch.bfloat16),  # CPU autocast
    ],
)
def test_precision(monkeypatch, precision, kind, major, expected):
    fake_cuda(monkeypatch, major=major)
    assert dev.autocast_dtype(precision, torch.device(kind)) == expected


def test_bf16_refused_where_the_gpu_has_none(monkeypatch):
    fake_cuda(monkeypatch, major=7)
    with pytest.raises(ConfigError, match="Fake GPU has no bf16 units; use auto or fp32"):
        dev.autocast_dtype("bf16", CUDA)
    with pytest.raises(ConfigError, match="train.precision: expected one of auto, bf16, fp32"):
        cfg.resolve(overrides={"precision": "fp16"})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    c = cfg.resolve(
        overrides={**SMALL, "cache_dir": str(tmp_path_factory.mktemp("device"))}, dataset="mosi"
    )
    from atsuko.data import load_from_config

    return c, load_from_config(c.data)


def test_bf16_steps_float32_scores(small):
    """Training steps run under bf16 autocast; predictions and scores are float32, equal to
    those of the same weights in a float32 trainer."""
    c, data = small
    held = {}
    on_epoch = lambda _, t: held.update(t=t)  # noqa: E731
    fit(c.replace(precision="bf16"), data, log=None, score_test=False, on_epoch=on_epoch)
    bf16 = held["t"]
    with bf16._autocast():
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    ev = bf16.evaluate("valid")
    assert ev.pred.dtype == np.float32
    fp32 = Trainer(c.replace(precision="fp32"), data)
    fp32.model.load_state_dict(bf16.model.state_dict())
    reference = fp32.evaluate("valid").metrics
    assert ev.metrics == pytest.approx(reference, abs=1e-3)
    batch = data.splits["valid"].take(torch.arange(8))
    bf16.model.train(False)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = bf16.model(batch.features, batch.lengths, batch.extras)
    assert out.pred.dtype == torch.float32  # the head runs outside autocast


def test_deterministic_option_and_attention_kernel(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        dev.set_deterministic(True, CUDA)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        with dev.compute(torch.device("cpu"), None, deterministic=True):
            assert torch.backends.cuda.math_sdp_enabled()
            assert not torch.backends.cuda.flash_sdp_enabled()
            assert not torch.backends.cuda.mem_efficient_sdp_enabled()
    finally:
        dev.set_deterministic(False, torch.device("cpu"))
    assert not torch.are_deterministic_algorithms_enabled()


def test_cuda_rng_state_is_saved_and_restored(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: torch.tensor([7, 8]))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: calls.append(s.tolist()))
    state = dev.rng_state(CUDA)
    assert state["cuda"].tolist() == [7, 8] and dev.rng_state(torch.device("cpu")) == {}
    dev.set_rng_state({"torch": torch.tensor([1]), **state}, CUDA)
    dev.set_rng_state(state, torch.device("cpu"))  # a CPU run ignores it
    assert calls == [[7, 8]]


def test_checkpoints_and_best_pt_hold_cpu_tensors(small, tmp_path):
    c, data = small
    fit(c, data, out=tmp_path / "run", log=None, score_test=False)
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)  # no map_location
    assert {t.device.type for t in best["model"].values()} == {"cpu"}
    nested = {"a": [torch.ones(1), (torch.zeros(2), 3)], "b": None}
    moved = dev.to_cpu(nested)
    assert isinstance(moved["a"][1], tuple) and moved["a"][1][1] == 3 and moved["b"] is None


def test_gpu_check_without_cuda_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device here" in lines[0]


def test_gpu_check_script_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the script would run the whole check")
    env = {"PATH": "/usr/bin:/bin", "PY": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    p = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu-check.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("\n") == 1 and "no CUDA device here" in p.stdout


@pytest.mark.slow
def test_gpu_check_runs_its_checks_on_the_cpu(capsys):
    assert gpu_check.main(["--device", "cpu", "--scale", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "same seed twice: identical" in out and "resumed: identical" in out
    assert "best.pt tensors on cpu" in out and "every check holds" in out
