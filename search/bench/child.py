"""The pieces of `search.bench` that run in a fresh process each, so that every measurement
starts from a clean interpreter (no Ray left running, no memory held from an earlier step).

    python -m search.bench.child SPEC.json

SPEC holds `kind` and `result` (where the JSON result is written), plus:
- `search`: `settings` (fields of `search.settings.Settings`); runs `search.study.driver.run`, the
  function `search/run.py` calls, and times it.
- `plain`: `settings`, `params`, `trials`; the same base configuration and dataset loading as
  the search, then `trials` trainings through `atsuko.train.fit`, back to back, timed.
- `synth`: `dataset`, `scale`; the cached synthetic file (generated on first use).
- `load`: `path`, `how` (`pickle`: a bare `pickle.load`; `atsuko`: `atsuko.data.load`); the load
  time and the process's peak memory above what it held just before.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def _settings(doc: dict[str, Any]) -> Any:
    from search.settings import Settings, check

    settings = Settings(**doc)
    check(settings)
    return settings


def run_search(spec: dict[str, Any]) -> dict[str, Any]:
    """One search through the driver; the wall time around `driver.run`."""
    from search.study import driver

    settings = _settings(spec["settings"])
    start = time.time()
    code = driver.run(settings)
    end = time.time()
    return {"code": code, "start": start, "end": end, "seconds": end - start}


def run_plain(spec: dict[str, Any]) -> dict[str, Any]:
    """The trainings of a search, one after another in this process, with no Ray."""
    from atsuko.train import fit
    from search.settings import base_config
    from search.study.driver import load_dataset

    settings = _settings(spec["settings"])
    base, _ = base_config(settings)
    start = time.time()
    dataset = load_dataset(base)
    loaded = time.time()
    epochs = []
    for _ in range(int(spec["trials"])):
        result = fit(base.replace(**spec["params"]), dataset, score_test=False, log=None)
        epochs.append(len(result.history))
    end = time.time()
    return {
        "start": start,
        "end": end,
        "seconds": end - start,
        "load_seconds": loaded - start,
        "epochs": epochs,
    }


def run_synth(spec: dict[str, Any]) -> dict[str, Any]:
    """Generate (once; it is cached) the synthetic file a later step loads."""
    from atsuko.config import DataConfig
    from atsuko.data.load import synthetic_path

    start = time.time()
    data = DataConfig(
        dataset=spec["dataset"],
        synthetic=True,
        scale=spec["scale"],
        aligned=spec.get("aligned", True),
    )
    path = synthetic_path(data)
    return {"path": str(path), "bytes": path.stat().st_size, "seconds": time.time() - start}


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _largest_array(obj: Any) -> int:
    """Bytes of the largest numpy array in a nested dict (the unpickled MMSA file)."""
    if isinstance(obj, dict):
        return max((_largest_array(v) for v in obj.values()), default=0)
    return int(getattr(obj, "nbytes", 0) or 0)


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Load time and peak memory above the pre-load resident size, in this fresh process."""
    import pickle

    import numpy  # noqa: F401 - both ways need it; imported before the baseline

    path, how = Path(spec["path"]), spec["how"]
    if how == "atsuko":
        from atsuko.data import load
    before = (_status_kib("VmRSS") or 0) * 1024
    exact = _reset_peak()
    start = time.perf_counter()
    if how == "pickle":
        with open(path, "rb") as f:
            obj = pickle.load(f)
    else:
        obj = load(path)
    seconds = time.perf_counter() - start
    if exact:
        peak = (_status_kib("VmHWM") or 0) * 1024
    else:  # ru_maxrss: the whole life of the process (imports are far below the load here)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {
        "how": how,
        "seconds": seconds,
        "rss_before": before,
        "peak": peak,
        "extra_peak": peak - before,
        "peak_exact": exact,
        "held": (_status_kib("VmRSS") or 0) * 1024 - before,
    }
    if how == "pickle":
        out["largest_array"] = _largest_array(obj)
    return out


KINDS = {"search": run_search, "plain": run_plain, "load": run_load, "synth": run_synth}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    result = KINDS[spec["kind"]](spec)
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
