"""Figure 3 of `search.bench`: does the dataset live once per node?

Peak memory of the whole local Ray node (the driver's process tree, summed as PSS) with 4
concurrent trials against 1, on the MOSEI-sized synthetic file. Trials train one epoch under a
Tune time budget: the peak is reached once every trial holds its data and trains. A trial whose
private memory (USS) exceeds half the dataset holds its own copy of it; then the 4-trial run is
only made when it fits in this machine's memory (else projected from the 1-trial run), and the
same two runs are repeated with Ray's zero-copy tensor serialisation to show what sharing gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psutil

from search.bench.runner import (
    FIXED,
    GB,
    ZERO_COPY_ENV,
    BenchError,
    Plan,
    Runner,
    say,
    settings_doc,
    write_space,
)


@dataclass
class MemoryRun:
    trials: int
    peak: int  # bytes, the whole node at its peak
    settled: int  # bytes, the whole node while all its trials run (median)
    seen: int  # most trial actors alive at once
    trial_pss: int  # the largest trial actor at any time, proportional
    trial_uss_peak: int  # the largest trial actor at any time, private pages only
    trial_uss: int  # a trial's private pages once settled (past deserialising its data)
    driver_peak: int  # the driver process alone (it serialises the dataset into the store)
    by_role: dict[str, int]  # at the peak


def _memory_run(
    runner: Runner, plan: Plan, scale: float, trials: int, zero_copy: bool
) -> MemoryRun:
    work = runner.work
    tag = f"memory-{trials}{'-zero-copy' if zero_copy else ''}"
    say(f"memory: {trials} trial(s){' with zero-copy tensors' if zero_copy else ''}")
    doc = settings_doc(
        work / tag,
        dataset="mosei",
        scale=scale,
        space=str(write_space(work / "space-fixed.yaml", FIXED)),
        sets=["patience=0"],
        num_samples=trials,
        concurrency=trials,
        cpus_per_trial=0.5,  # 4 trials at once on 2 CPUs; one torch thread each either way
        max_epochs=1,
        sampler="random",
        scheduler="none",
        time_budget=plan.memory_budget_s,
    )
    env = {ZERO_COPY_ENV: "1"} if zero_copy else None
    _, sampler = runner.run(tag, {"kind": "search", "settings": doc}, sample=True, env=env)
    assert sampler is not None
    peak = sampler.peak()
    pss, uss = sampler.largest_trial()
    if sampler.most_trials() < trials:
        raise BenchError(
            f"{tag}: saw at most {sampler.most_trials()} of {trials} trials at once; "
            "raise the plan's memory time budget"
        )
    return MemoryRun(
        trials=trials,
        peak=peak.total,
        settled=sampler.settled(),
        seen=sampler.most_trials(),
        trial_pss=pss,
        trial_uss_peak=uss,
        trial_uss=sampler.steady_trial_private(),
        driver_peak=sampler.largest_by_role("driver"),
        by_role=dict(peak.by_role),
    )


def _pick_scale(file_bytes: int, available: int) -> float:
    """Full size if one trial fits even when it copies the data (the driver's copy and its
    serialisation buffers, the object store, the trial's copy while it deserialises), else the
    largest of 1/2, 1/4, 1/8 that does."""
    for scale in (1.0, 0.5, 0.25, 0.125):
        if 4.2 * file_bytes * scale + 1.0 * GB <= 0.95 * available:
            return scale
    raise BenchError(
        f"too little free memory for the memory figure ({available / GB:.1f} GB available)"
    )


def memory_section(plan: Plan, runner: Runner) -> dict[str, Any]:
    """Figure 3: peak memory of the Ray node with 4 trials against 1, MOSEI-sized data."""
    full = runner.synth("mosei", 1.0)
    scale = _pick_scale(full["bytes"], psutil.virtual_memory().available)
    data_bytes = runner.synth("mosei", scale)["bytes"] if scale < 1 else full["bytes"]
    out: dict[str, Any] = {"memory_scale": scale, "memory_dataset_file_bytes": data_bytes}
    one = _memory_run(runner, plan, scale, 1, zero_copy=False)
    copies = one.trial_uss > 0.5 * data_bytes
    out.update(
        memory_peak_1_bytes=one.peak,
        memory_driver_peak_bytes=one.driver_peak,
        memory_trial_pss_bytes=one.trial_pss,
        memory_trial_private_bytes=one.trial_uss,
        memory_trial_private_peak_bytes=one.trial_uss_peak,
        memory_trial_holds_copy=copies,
        memory_by_role_1=one.by_role,
    )
    # 3 more trials add at least their settled private memory (their own peaks come on top)
    at_least = one.peak + 3 * one.trial_uss
    available = psutil.virtual_memory().available
    if 3 * one.trial_uss_peak <= 0.8 * available:
        four = _memory_run(runner, plan, scale, 4, zero_copy=False)
        out.update(
            memory_ratio_4_vs_1=four.peak / one.peak,
            memory_ratio_measured=True,
            memory_peak_4_bytes=four.peak,
            memory_by_role_4=four.by_role,
            memory_settled_1_bytes=one.settled,
            memory_settled_4_bytes=four.settled,
            memory_settled_ratio_4_vs_1=four.settled / one.settled if one.settled else None,
        )
        marginal = (four.peak - one.peak) / 3
    else:
        out.update(
            memory_ratio_4_vs_1=at_least / one.peak,
            memory_ratio_measured=False,
            memory_peak_4_bytes=at_least,
            memory_projection=(
                f"4 trials not run here: 3 more trials would need up to "
                f"{3 * one.trial_uss_peak / GB:.1f} GB ({one.trial_uss_peak / GB:.2f} GB private "
                f"each while deserialising) and {available / GB:.1f} GB is available; the figure "
                f"is a lower bound, the 1-trial peak plus 3 x {one.trial_uss / GB:.2f} GB (one "
                "trial's settled private memory)"
            ),
        )
        marginal = one.trial_uss
    out["memory_per_trial_bytes"] = marginal
    out["memory_per_trial_overhead_bytes"] = marginal - (data_bytes if copies else 0)
    if plan.memory_zero_copy and copies:
        z1 = _memory_run(runner, plan, scale, 1, zero_copy=True)
        z4 = _memory_run(runner, plan, scale, 4, zero_copy=True)
        out.update(
            memory_zero_copy_ratio_4_vs_1=z4.peak / z1.peak,
            memory_zero_copy_peak_1_bytes=z1.peak,
            memory_zero_copy_peak_4_bytes=z4.peak,
            memory_zero_copy_per_trial_bytes=(z4.peak - z1.peak) / 3,
            memory_zero_copy_trial_private_bytes=z1.trial_uss,
            memory_zero_copy_driver_peak_bytes=z1.driver_peak,
        )
    return out
