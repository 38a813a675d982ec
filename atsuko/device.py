"""Where and how a `Trainer` computes: the device, the precision of its training steps, the
deterministic option, its RNG state on the device, and which splits it keeps on the GPU.

Precision (`train.precision`): `auto` trains in bf16 autocast on a CUDA device with bf16 units
(compute capability 8.0 and later: A100, A10G, L4, H100) and in float32 elsewhere (CPU, V100,
T4, where bf16 is emulated and slow); `bf16` asks for it (a CPU runs it through CPU autocast; a
CUDA device without bf16 units is refused) and `fp32` turns it off. Only the training steps use
it: evaluation, and so every score that selects epochs and configurations, runs in float32, and
the model's head always does.

Splits on the GPU: a trial packed with others on one GPU (Ray's `--gpus-per-trial 0.25`) may
use its share of the device's memory, not whatever is free when it starts (four trials
starting together would each see the whole GPU free). Half of that budget may hold data (the
rest is for the model, the optimiser and activations); the splits that fit, in the order they
are used (train, then valid), are moved once, the others are sent batch by batch. The test
split is never moved: trials do not score it, and a run scores it once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from typing import Any

import torch

from atsuko.data import Split
from atsuko.errors import ConfigError

PRECISIONS = ("auto", "bf16", "fp32")
DATA_SHARE = 0.5  # of a trial's GPU budget, for data moved whole
ON_DEVICE = ("train", "valid")  # the splits worth moving, in the order they are used
CUBLAS_DETERMINISTIC = ":4096:8"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but torch sees no CUDA device")
    return torch.device(name)


def bf16_native(device: torch.device) -> bool:
    """Whether a CUDA device computes bf16 in hardware (not `is_bf16_supported()`'s default,
    which also says yes where it is emulated)."""
    if torch.version.hip:
        return bool(torch.cuda.is_bf16_supported())
    return torch.cuda.get_device_properties(device).major >= 8


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the training steps (None: float32) for `train.precision`."""
    if precision not in PRECISIONS:
        expected = ", ".join(PRECISIONS)
        raise ConfigError(f"train.precision: expected one of {expected}, got {precision!r}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if bf16_native(device):
            return torch.bfloat16
        if precision == "bf16":
            name = torch.cuda.get_device_name(device)
            raise ConfigError(
                f"train.precision is 'bf16' but {name} has no bf16 units; use auto or fp32"
            )
        return None
    return torch.bfloat16 if precision == "bf16" and device.type == "cpu" else None


@contextlib.contextmanager
def compute(device: torch.device, dtype: torch.dtype | None, deterministic: bool) -> Iterator[None]:
    """Autocast to `dtype` (None: none), and under the deterministic option attention on its
    plain-math kernel (the fused kernels' backward adds in a varying order on CUDA)."""
    with contextlib.ExitStack() as stack:
        if dtype is not None:
            stack.enter_context(torch.autocast(device.type, dtype=dtype))
        if deterministic:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        yield


def set_deterministic(on: bool, device: torch.device) -> None:
    """`train.deterministic`: deterministic kernels or an error naming the op that has none.

    Set for every Trainer, on or off (the setting is per process, and Ray reuses a worker for
    the next trial). cuBLAS reads CUBLAS_WORKSPACE_CONFIG when the process first uses it: it is
    set here when missing, which holds if this is the process's first CUDA work; export it
    before starting the process (or the Ray workers) to be sure.
    """
    if on and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    if on:
        torch.backends.cudnn.benchmark = False


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The generator state of `device` (dropout draws from it), for checkpoints: only the
    device this run uses, so a checkpoint resumes on a machine with another number of GPUs."""
    return {"cuda": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def to_cpu(obj: Any) -> Any:
    """`obj` with every tensor in it on the CPU (dicts, lists and tuples walked)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def assigned_gpu_share() -> float:
    """This process's share of its GPU: the GPU amount Ray assigned to this worker (a trial or
    task with `num_gpus=0.25` gets 0.25), 1.0 outside a Ray worker or with a whole GPU."""
    ray = sys.modules.get("ray")  # a process that never imported Ray is not a Ray worker
    if ray is None:
        return 1.0
    try:
        if not ray.is_initialized():
            return 1.0
        gpus = float(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))
    except (AssertionError, AttributeError, RuntimeError):  # the driver: not a worker
        return 1.0
    return min(gpus, 1.0) if gpus > 0 else 1.0


def gpu_budget(*, total: int, free: int, reserved: int, allocated: int, share: float) -> int:
    """Bytes this process may still take on its GPU: its share of the device less what its
    tensors hold, and never more than is free (to the device, plus this process's own cached
    but unused blocks, which a reused worker keeps from its last trial)."""
    own = max(0, int(share * total) - allocated)
    return max(0, min(own, free + max(0, reserved - allocated)))


def splits_to_move(sizes: dict[str, int], budget: int) -> list[str]:
    """The splits (in `sizes`' order) that fit together in DATA_SHARE of `budget`."""
    room, chosen = DATA_SHARE * budget, []
    for name, size in sizes.items():
        if size <= room:
            chosen.append(name)
            room -= size
    return chosen


def cuda_budget(device: torch.device, share: float) -> int:
    free, _ = torch.cuda.mem_get_info(device)
    return gpu_budget(
        total=torch.cuda.get_device_properties(device).total_memory,
        free=free,
        reserved=torch.cuda.memory_reserved(device),
        allocated=torch.cuda.memory_allocated(device),
        share=share,
    )


def split_bytes(split: Split) -> int:
    tensors = [*split.features.values(), *split.lengths.values(), *split.extras.values()]
    return sum(t.numel() * t.element_size() for t in [*tensors, split.labels])


def split_to(split: Split, device: torch.device) -> Split:
    """The whole split on `device`, moved once (batches are then drawn by index there)."""
    move = lambda d: {k: v.to(device) for k, v in d.items()}  # noqa: E731
    return dataclasses.replace(
        split,
        features=move(split.features),
        lengths=move(split.lengths),
        labels=split.labels.to(device),
        extras=move(split.extras),
    )


def place_splits(
    splits: dict[str, Split], device: torch.device, share: float
) -> tuple[dict[str, Split], list[str]]:
    """`splits` with those that fit this process's GPU budget moved there, and their names."""
    if device.type != "cuda":
        return dict(splits), []
    sizes = {name: split_bytes(splits[name]) for name in ON_DEVICE if name in splits}
    moved = splits_to_move(sizes, cuda_budget(device, share))
    return {n: split_to(s, device) if n in moved else s for n, s in splits.items()}, moved
