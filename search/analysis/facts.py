"""The report's "Run facts": seeds, data files and their sha256, wall times, package versions
and hardware.
Tested in `tests/search/test_report.py`.
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from atsuko.errors import ConfigError
from search import layout
from search.analysis.page import Section, read_json

PACKAGES = ("torch", "ray", "optuna", "numpy", "scikit-learn", "matplotlib", "tensorboardX")


def _sha_cached(out: Path, path: Path) -> str | None:
    """sha256 of a data file, remembered per (path, size, mtime) in OUT/figures/."""
    from search.provenance import sha256_file

    if not path.is_file():
        return None
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    cache_path = out / layout.FIGURES_DIR / ".sha256.json"
    cache = read_json(cache_path) or {}
    if key not in cache:
        cache[key] = sha256_file(path)
        cache_path.write_text(json.dumps(cache))
    return cache[key]


def _versions() -> list[list[str]]:
    from search.provenance import versions

    rows = [["python", platform.python_version()]]
    return rows + [[name, v] for name, v in versions(PACKAGES).items()]


def _hardware() -> list[list[str]]:
    rows = [["machine", f"{platform.system()} {platform.machine()}"], ["CPUs", str(os.cpu_count())]]
    try:
        import psutil

        rows.append(["memory", f"{psutil.virtual_memory().total / 2**30:.1f} GiB"])
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            rows.append(["GPUs", ", ".join(names)])
        else:
            rows.append(["GPUs", "none visible to torch"])
    except ImportError:
        pass
    return rows


def _span(start: float, end: float) -> str:
    if not (math.isfinite(start) and math.isfinite(end)) or end < start:
        return "–"
    return f"{end - start:.0f} s ({(end - start) / 60:.1f} min)"


def facts_section(out: Path, summary: dict | None, trials: Any) -> Section:
    s = Section("Run facts")
    search = read_json(out / layout.SETTINGS) or {}
    plan = read_json(out / layout.SENS_DIR / layout.SENS_PLAN) or {}
    diag = read_json(out / layout.DIAG_DIR / layout.DIAG_JSON) or {}
    seeds = _seed_rows(search, summary, plan, diag)
    if seeds:
        s.table(["seeds", "value"], seeds)
    data_rows = _data_rows(out, plan, diag)
    if data_rows:
        s.table(["", "source", "sha256"], data_rows)
    times = _time_rows(trials, plan, diag)
    if times:
        s.table(["wall time", "value"], times)
    if trials is not None:
        nodes = sorted({t.node for t in trials.trials} - {""})
        if nodes:
            s.text(f"Trials ran on {len(nodes)} node(s).")
    s.table(["package", "version (environment that built this report)"], _versions())
    if plan.get("versions"):
        s.table(
            ["package", "version (sensitivity run)"], [[k, v] for k, v in plan["versions"].items()]
        )
    s.table(["hardware (building this report)", ""], _hardware())
    return s


def _seed_rows(search: dict, summary: dict | None, plan: dict, diag: dict) -> list[list[Any]]:
    seeds = []
    if search:
        seeds.append(["search sampler seed", search.get("seed")])
        seeds.append(
            ["sampler / scheduler", f"{search.get('sampler')} / {search.get('scheduler')}"]
        )
    if summary and summary.get("best_trial"):
        seeds.append(["best trial train.seed", summary["best_trial"].get("seed")])
    if summary and (summary.get("final") or {}).get("seeds"):
        seeds.append(["final re-run seeds", summary["final"]["seeds"]])
    if plan.get("seeds"):
        seeds.append(["sensitivity seeds", plan["seeds"]])
    if diag:
        seeds.append(
            [
                "diagnostics train.seed / sample seed",
                f"{diag.get('train_seed')} / {diag.get('sample_seed')}",
            ]
        )
    return seeds


def _data_rows(out: Path, plan: dict, diag: dict) -> list[list[Any]]:
    from atsuko import config as cfg

    data_rows = []
    base_path = out / layout.BASE_CONFIG
    for name in (layout.BASE_CONFIG, layout.BEST_CONFIG):
        if (out / name).is_file():
            base_path = out / name
            break
    if base_path.is_file():
        try:
            data = cfg.read_yaml(base_path).get("data") or {}
        except ConfigError:
            data = {}
        if data.get("path"):
            p = Path(data["path"]).expanduser()
            data_rows.append(
                ["search data", str(p), _sha_cached(out, p) or "(a folder or missing)"]
            )
        elif data.get("synthetic"):
            data_rows.append(
                [
                    "search data",
                    f"synthetic {data.get('dataset')} (scale {data.get('scale')}, synth_seed "
                    f"{data.get('synth_seed')})",
                    "generated; see the hashes below where recorded",
                ]
            )
    for ds, d in (plan.get("data") or {}).items():
        data_rows.append(
            [f"sensitivity data ({ds})", d.get("source"), d.get("sha256") or "(a folder)"]
        )
    if diag.get("data"):
        data_rows.append(
            [
                "diagnostics data",
                diag["data"].get("source"),
                diag["data"].get("sha256") or "(a folder)",
            ]
        )
    return data_rows


def _time_rows(trials: Any, plan: dict, diag: dict) -> list[list[Any]]:
    times = []
    if trials is not None and trials.trials:
        starts = [t.started for t in trials.trials if math.isfinite(t.started)]
        ends = [t.finished for t in trials.trials if math.isfinite(t.finished)]
        if starts and ends:
            times.append(
                ["search (first trial start to last report)", _span(min(starts), max(ends))]
            )
        busy = sum(
            t.finished - t.started for t in trials.trials if math.isfinite(t.finished - t.started)
        )
        times.append(["search trial time, summed", f"{busy:.0f} s"])
    if plan.get("wall_seconds"):
        times.append(["sensitivity sweep", f"{float(plan['wall_seconds']):.0f} s"])
    if diag.get("seconds"):
        times.append(["diagnostics", f"{float(diag['seconds']):.0f} s"])
    return times
