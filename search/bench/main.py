"""Benchmarks of the search: `python -m search.bench [--quick] [--json]`.

Six figures on synthetic data, each against its target. Every measurement runs in a fresh
process (`search.bench.child`), searches through `search.study.driver.run` (what `search/run.py`
calls), and the ratios are taken within one run of this command, median of its repeats.

1. overhead_ratio: N identical short trials through the search at concurrency 1 (its own local
   Ray, started and stopped) over the same trainings back to back via `atsuko.train.fit` in one
   plain process, both from loading the data to the end. Target <= 1.15.
2. concurrency_speedup: trials per minute at concurrency 2 over concurrency 1 (1 CPU and one
   torch thread per trial, a 2-CPU node), over the window from the first trial's start to the
   last trial's end. Target >= 1.7.
3. memory_ratio_4_vs_1: peak memory of the whole local Ray node (driver, GCS, raylet and its
   object store, agents, workers: the PSS of the driver's process tree, so shared pages count
   once) with 4 concurrent trials over 1 trial, on a MOSEI-sized synthetic file. Target <= 1.3.
   When 4 trials would not fit in this machine's memory, the 4-trial peak is projected from the
   1-trial run (its peak plus 3 times one trial's private memory) and marked as projected.
4. load_time_ratio, load_extra_peak_bytes: `atsuko.data.load` of the MOSEI-sized file against a
   bare `pickle.load` of it, in fresh processes (peak from the kernel's VmHWM). Targets: < 1.5x
   the time; no more than the largest single array above the bare load's peak.
5. search_epochs_ratio: on the planted synthetic task, epochs spent until the best validation
   score comes within 1% of the best score either method reached, random search with the full
   budget per trial over TPE with ASHA; same total epoch budget, same seeds. Target >= 3.
   The `replay` section asks it again over many seeds and every method, on recorded learning
   curves (the tuning table and the held-out one; no training): replay_speedup_median and the
   compute ratios of `tables`.
6. warmstart_epochs_ratio: a MOSEI-shaped search cold over the same search warm-started from a
   finished MOSI search (the planted pair), same budget and seeds: epochs until the best
   validation score is within 1% of the better final score of the two. Target >= 2.

Where torch sees a CUDA device, also: trials per hour on one GPU with 1, 2, 4 and 8 trials
packed on it (fractional GPUs), with the GPU's utilisation (`search.bench.gpu`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atsuko.cli import ArgumentParser, positive_int, run_cli
from search.bench.efficiency import efficiency_section, replay_tables_section
from search.bench.gpu import gpu_section
from search.bench.loading import loading_section
from search.bench.measures import median
from search.bench.overhead import overhead_section
from search.bench.replay_report import replay_details
from search.bench.runner import FULL, GB, QUICK, ZERO_COPY_ENV, BenchError, Plan, Runner, say
from search.bench.sharing import memory_section
from search.bench.warmstart import details as warmstart_details
from search.bench.warmstart import warmstart_section

SECTIONS = ("overhead", "memory", "loading", "efficiency", "replay", "warmstart", "gpu")


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    target: str
    holds: Callable[[dict[str, Any]], bool]
    unit: str = "x"


FIGURES = (
    Figure(
        "overhead_ratio",
        "driver overhead: search / plain, concurrency 1",
        "<= 1.15",
        lambda r: r["overhead_ratio"] <= 1.15,
    ),
    Figure(
        "concurrency_speedup",
        "trials per minute, concurrency 2 / 1 (2 CPUs)",
        ">= 1.7",
        lambda r: r["concurrency_speedup"] >= 1.7,
    ),
    Figure(
        "memory_ratio_4_vs_1",
        "Ray node peak memory, 4 trials / 1 (MOSEI-sized)",
        "<= 1.3",
        lambda r: r["memory_ratio_4_vs_1"] <= 1.3,
    ),
    Figure(
        "load_time_ratio",
        "load time, atsuko.data.load / pickle.load",
        "< 1.5",
        lambda r: r["load_time_ratio"] < 1.5,
    ),
    Figure(
        "load_extra_peak_bytes",
        "loader's peak memory above pickle.load's",
        "<= largest array",
        lambda r: r["load_extra_peak_bytes"] <= r["load_largest_array_bytes"],
        unit="bytes",
    ),
    Figure(
        "search_epochs_ratio",
        "epochs to within 1%: random / TPE+ASHA",
        ">= 3",
        lambda r: r["search_epochs_ratio"] >= 3.0,
    ),
    Figure(
        "warmstart_epochs_ratio",
        "epochs to within 1%: cold / warm start, MOSI->MOSEI",
        ">= 2",
        lambda r: r["warmstart_epochs_ratio"] >= 2.0,
    ),
    Figure(
        "replay_speedup_median",
        "replay: default's speedup over random (16 trials)",
        ">= 3",
        lambda r: r["replay_speedup_median"] >= 3.0,
    ),
)


RUNNERS = {
    "overhead": overhead_section,
    "loading": loading_section,
    "memory": memory_section,
    "efficiency": efficiency_section,
    "replay": replay_tables_section,
    "warmstart": warmstart_section,
    "gpu": gpu_section,  # only where torch sees a CUDA device
}
SECTION_KEYS = {
    "overhead": ("overhead_ratio", "concurrency_speedup"),
    "memory": ("memory_ratio_4_vs_1",),
    "loading": ("load_time_ratio", "load_extra_peak_bytes"),
    "efficiency": ("search_epochs_ratio",),
    "replay": ("replay_speedup_median",),
    "warmstart": ("warmstart_epochs_ratio",),
    "gpu": ("gpu_trials_per_hour",),
}


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def verdicts(results: dict[str, Any]) -> dict[str, bool | None]:
    """Whether each figure holds (None: not measured)."""
    out: dict[str, bool | None] = {}
    for fig in FIGURES:
        value = results.get(fig.key)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            out[fig.key] = None
        else:
            out[fig.key] = bool(fig.holds(results))
    return out


def _fmt(value: Any, unit: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if unit == "bytes":
        return f"{value / 1e6:+,.0f} MB"
    return f"{value:.2f}x"


def report(results: dict[str, Any], plan_name: str) -> str:
    """The human-readable table and the details behind each figure."""
    holds = results.get("holds", {})
    load = results.get("load_average_median")
    lines = [
        f"Search benchmarks ({plan_name}, {os.cpu_count()} CPUs, synthetic data; "
        "ratios are medians of repeats)",
        f"machine load average during the runs: median {_num(load)}, max "
        f"{_num(results.get('load_average_max'))} (other work on the machine makes noise)",
        "",
        f"  {'figure':<52} {'measured':>10}  {'target':<17} verdict",
    ]
    for fig in FIGURES:
        verdict = {True: "holds", False: "MISSED", None: "not measured"}[holds.get(fig.key)]
        target = fig.target
        if fig.key == "load_extra_peak_bytes" and results.get("load_largest_array_bytes"):
            target = f"<= {results['load_largest_array_bytes'] / 1e6:,.0f} MB"
        value = _fmt(results.get(fig.key), fig.unit)
        if fig.key == "memory_ratio_4_vs_1" and results.get("memory_ratio_measured") is False:
            value += "*"
        lines.append(f"  {fig.label:<52} {value:>10}  {target:<17} {verdict}")
    lines += ["", *details(results)]
    for section, message in results.get("errors", {}).items():
        lines.append(f"error in {section}: {message}")
    return "\n".join(lines)


def details(r: dict[str, Any]) -> list[str]:
    """One or two lines per figure: what was measured, so a missed target can be explained."""
    out = []
    if "overhead_trials" in r:  # the details come with the figure when it was measured
        out += [
            f"1. {r['overhead_trials']} trials x {r['overhead_epochs_per_trial']} epochs: "
            f"plain {r['overhead_plain_seconds']:.1f} s, search {r['overhead_search_seconds']:.1f}"
            f" s (ratios {_list(r['overhead_ratios'])})",
            f"   per trial: {r['overhead_plain_trial_seconds']:.1f} s plain, "
            f"{r['overhead_search_trial_seconds']:.1f} s in the search; driver start to the first "
            f"trial {r['overhead_startup_seconds']:.1f} s, between trials "
            f"{r['overhead_gap_seconds']:.1f} s, last trial to exit "
            f"{r['overhead_shutdown_seconds']:.1f} s",
            f"2. trials/min {r['concurrency_trials_per_minute_1']:.2f} at concurrency 1, "
            f"{r['concurrency_trials_per_minute_2']:.2f} at 2 (speedups "
            f"{_list(r['concurrency_speedups'])}); whole runs with Ray's start "
            f"{r['concurrency_whole_run_speedup']:.2f}x",
        ]
    if "memory_peak_1_bytes" in r:
        out += _memory_details(r)
    if "load_file_bytes" in r:
        pickle_s, atsuko_s = r["load_seconds_pickle"], r["load_seconds_atsuko"]
        out.append(
            f"4. {r['load_file_bytes'] / GB:.2f} GB file: pickle.load {pickle_s:.2f} s, "
            f"atsuko.data.load {atsuko_s:.2f} s (ratios {_list(r['load_time_ratios'])}); peak "
            f"above the start {r['load_peak_above_start_pickle_bytes'] / GB:.2f} GB vs "
            f"{r['load_peak_above_start_atsuko_bytes'] / GB:.2f} GB"
        )
    if "search_budget_epochs" in r:
        out += _search_details(r)
    if "warmstart_trials" in r:
        out += warmstart_details(r)
    if "replay_by_budget" in r:
        out += replay_details(r)
    elif "replay_error" in r:
        out.append(f"   replay: {r['replay_error']}")
    if r.get("gpu_trials_per_hour"):
        out += _gpu_details(r)
    elif "gpu_trials_per_hour" in r:
        out.append("GPU packing: not measured (no CUDA device on this machine)")
    return out


def _gpu_details(r: dict[str, Any]) -> list[str]:
    per_hour, util, mem = (
        r[k] for k in ("gpu_trials_per_hour", "gpu_utilisation_mean", "gpu_memory_max_mib")
    )
    lines = [
        f"GPU packing on one {r['gpu_device']} (MOSI aligned, full size, "
        f"{r['gpu_epochs_per_trial']} epochs a trial):"
    ]
    for n in per_hour:
        lines.append(
            f"   {n} at once: {_num(per_hour[n])} trials/hour, utilisation {_num(util[n])}%, "
            f"memory peak {_num(mem[n])} MiB"
        )
    lines.append(
        f"   best packing {r['gpu_best_packing']}: {_num(r['gpu_packing_speedup'])}x the trials "
        "per hour of one trial alone"
    )
    if r.get("gpu_varlen_trials_per_hour") is not None:
        lines.append(
            f"   variable lengths (MOSI unaligned), {r['gpu_varlen_packing']} at once: "
            f"{_num(r['gpu_varlen_trials_per_hour'])} trials/hour, utilisation "
            f"{_num(r['gpu_varlen_utilisation_mean'])}%, memory peak "
            f"{_num(r['gpu_varlen_memory_max_mib'])} MiB"
        )
    lines.append("   (utilisation and memory: the GPU Ray assigned, inside the trials' windows)")
    return lines


def _search_details(r: dict[str, Any]) -> list[str]:
    trials, e, mean = r["search_trials"], r["search_epochs_per_trial"], r["search_asha_mean_epochs"]
    return [
        f"5. budget {r['search_budget_epochs']} epochs ({trials['random']} random trials of {e}; "
        f"TPE+ASHA up to {trials['tpe_asha']} trials, rungs at epochs "
        f"{', '.join(map(str, r['search_asha_rungs']))}, {mean:.2f} epochs a trial in the "
        "steady state)",
        f"   epochs to within 1%: random {r['search_epochs_random']}, TPE+ASHA "
        f"{r['search_epochs_tpe_asha']} (ratios {_list(r['search_epochs_ratios'])}); reached: "
        f"random {r['search_reached_random']}, TPE+ASHA {r['search_reached_tpe_asha']}",
        f"   best score random {_list(r['search_best_random'], 4)}, TPE+ASHA "
        f"{_list(r['search_best_tpe_asha'], 4)}; random's winner was trial "
        f"{r['search_random_winner_position']} (same seed: TPE's first trials are the same), "
        f"so the ratio is at most about k*{e}/({e}+(k-1)*a) unless TPE finds better, with a "
        f"the epochs TPE+ASHA ran per trial: {_list(r['search_asha_epochs_per_trial'])}",
        f"   first rung's rank correlation with the final scores (random arm): "
        f"{_list(r['search_rung_rank_correlation'])}",
        f"   the most each seed allowed (random's last trial wins; TPE+ASHA's copy of it "
        f"after what ASHA spent on the trials before): {_list(r['search_ratio_ceiling'])}",
        f"   epochs to within 1% of random search's own best: TPE+ASHA "
        f"{r['search_match_epochs_tpe_asha']}, ratios {_list(r['search_match_ratio'])} "
        f"(median {r['search_match_ratio_median']:.2f})",
    ]


def _memory_details(r: dict[str, Any]) -> list[str]:
    measured = r["memory_ratio_measured"]
    out = [
        f"3. MOSEI-sized file {r['memory_dataset_file_bytes'] / GB:.2f} GB (scale "
        f"{r['memory_scale']:g}); node peak {r['memory_peak_1_bytes'] / GB:.2f} GB with 1 trial "
        f"(the driver alone {r['memory_driver_peak_bytes'] / GB:.2f} GB while putting the data in "
        f"the object store), {r['memory_peak_4_bytes'] / GB:.2f} GB with 4"
        f"{'' if measured else ' (lower bound*)'}",
        f"   one trial {r['memory_trial_private_bytes'] / GB:.2f} GB private once settled "
        f"({r['memory_trial_private_peak_bytes'] / GB:.2f} GB while deserialising); "
        + (
            f"per extra trial {r['memory_per_trial_bytes'] / GB:.2f} GB at the peak, of which "
            f"model and process {r['memory_per_trial_overhead_bytes'] / GB:.2f} GB"
            if r["memory_per_trial_bytes"] > 0.05 * GB
            else "the peak is the driver's put: the trials come later and stay below it"
        ),
    ]
    if r.get("memory_settled_ratio_4_vs_1"):
        out.append(
            f"   while the trials run: {r['memory_settled_1_bytes'] / GB:.2f} GB with 1 trial, "
            f"{r['memory_settled_4_bytes'] / GB:.2f} GB with 4 "
            f"({r['memory_settled_ratio_4_vs_1']:.2f}x)"
        )
    if r["memory_trial_holds_copy"]:
        out.append(
            "   each trial holds a private copy of the dataset: Ray pickles torch tensors "
            "(no zero-copy), so each trial's ray.get rebuilds them in its own memory"
        )
    if r.get("memory_projection"):
        out.append(f"   * {r['memory_projection']}")
    if r.get("memory_zero_copy_ratio_4_vs_1") is not None:
        out.append(
            f"   with {ZERO_COPY_ENV}=1: 4 / 1 = {r['memory_zero_copy_ratio_4_vs_1']:.2f}x "
            f"({r['memory_zero_copy_peak_1_bytes'] / GB:.2f} -> "
            f"{r['memory_zero_copy_peak_4_bytes'] / GB:.2f} GB; per extra trial "
            f"{r['memory_zero_copy_per_trial_bytes'] / GB:.2f} GB; driver peak "
            f"{r['memory_zero_copy_driver_peak_bytes'] / GB:.2f} GB)"
        )
    return out


def _num(value: Any) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.1f}"


def _list(values: list[Any], digits: int = 2) -> str:
    return ", ".join("n/a" if v is None else f"{v:.{digits}f}" for v in values)


def run(plan: Plan, sections: list[str], work: Path) -> dict[str, Any]:
    """Every chosen section in order; a section that fails is reported, the others go on."""
    runner = Runner(work)
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    started = time.time()
    for section in (s for s in RUNNERS if s in sections):
        try:
            results.update(RUNNERS[section](plan, runner))
        except BenchError as exc:
            errors[section] = str(exc)
            results.update({key: None for key in SECTION_KEYS[section]})
            say(f"{section} failed: {exc}")
    results["holds"] = verdicts(results)
    results["bench_seconds"] = time.time() - started
    # other work on the machine: the figures are only as quiet as this
    results["load_average_median"] = median(runner.loads)
    results["load_average_max"] = max(runner.loads, default=math.nan)
    if errors:
        results["errors"] = errors
    return results


def _check_table(path: str, flag: str, sections: list[str]) -> None:
    """A curve table's flag needs the replay section (its only reader) and a file."""
    if "replay" not in sections:
        raise BenchError(f"{flag} feeds the replay section: add --only replay")
    if not Path(path).is_file():
        raise BenchError(f"{flag} {path}: no such file")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m search.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter repeats")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run only this section (repeatable; default: all)",
    )
    parser.add_argument(
        "--work",
        metavar="DIR",
        help="keep every run's outputs and logs in DIR (default: a temp dir)",
    )
    parser.add_argument(
        "--table",
        metavar="FILE",
        help="the curve table of the replay comparison (default: the committed one, "
        "made by python -m search.bench.record)",
    )
    parser.add_argument(
        "--held-out",
        metavar="FILE",
        help="the held-out curve table, reported beside the tuning one and never tuned on "
        "(default: the committed one, where it exists)",
    )
    parser.add_argument(
        "--seeds",
        type=positive_int,
        metavar="N",
        help="seeds of the replay comparison, its speedups and both replays' compute ratios "
        "(default: 10 and 3 with --quick, 30 and 10 without)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    sections = args.only or list(SECTIONS)
    if args.seeds:
        if "replay" not in sections:  # its only reader
            raise BenchError("--seeds sets the replay section: add --only replay")
        plan = dataclasses.replace(plan, replay_seeds=args.seeds, replay_compute_seeds=args.seeds)
    for flag, field in (("table", "replay_table"), ("held_out", "held_out_table")):
        path = getattr(args, flag)
        if path:
            _check_table(path, f"--{flag.replace('_', '-')}", sections)
            plan = dataclasses.replace(plan, **{field: path})
    if args.work:
        work = Path(args.work).resolve()
        work.mkdir(parents=True, exist_ok=True)
        results = run(plan, sections, work)
    else:
        with tempfile.TemporaryDirectory(prefix="atsuko-bench-") as tmp:
            results = run(plan, sections, Path(tmp))
    results["plan"] = "quick" if args.quick else "full"
    if args.json:
        print(json.dumps(_clean(results), allow_nan=False))
    else:
        print(report(results, results["plan"]))
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    run_cli(main)
