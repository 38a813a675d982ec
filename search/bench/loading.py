"""Figure 4 of `search.bench`: the loader against a bare `pickle.load` of the same file.

Fresh processes, alternated, after one untimed read that puts the file in the page cache; the
peak is the kernel's VmHWM (reset after the imports) above the resident size before loading.
"""

from __future__ import annotations

from typing import Any

from search.bench.measures import median
from search.bench.runner import Plan, Runner, say


def _warm(path: str) -> None:
    """Read the file once, so that every timed load starts from the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 26):
            pass


def loading_section(plan: Plan, runner: Runner) -> dict[str, Any]:
    """Figure 4: `atsuko.data.load` against a bare `pickle.load`, fresh processes, alternated."""
    path = runner.synth("mosei", 1.0)["path"]
    _warm(path)
    runs: dict[str, list[dict[str, Any]]] = {"pickle": [], "atsuko": []}
    ratios = []
    for r in range(plan.load_repeats):
        say(f"loading, repeat {r + 1}/{plan.load_repeats}")
        order = ("pickle", "atsuko") if r % 2 == 0 else ("atsuko", "pickle")
        for how in order:
            spec = {"kind": "load", "how": how, "path": path}
            runs[how].append(runner.run(f"load-{how}-r{r + 1}", spec)[0])
        ratios.append(runs["atsuko"][-1]["seconds"] / runs["pickle"][-1]["seconds"])
    extra = {how: median(x["extra_peak"] for x in rs) for how, rs in runs.items()}
    return {
        "load_time_ratio": median(ratios),
        "load_time_ratios": ratios,
        "load_extra_peak_bytes": extra["atsuko"] - extra["pickle"],
        "load_largest_array_bytes": runs["pickle"][0]["largest_array"],
        "load_seconds_pickle": median(x["seconds"] for x in runs["pickle"]),
        "load_seconds_atsuko": median(x["seconds"] for x in runs["atsuko"]),
        "load_peak_above_start_pickle_bytes": extra["pickle"],
        "load_peak_above_start_atsuko_bytes": extra["atsuko"],
        "load_peak_exact": all(x["peak_exact"] for rs in runs.values() for x in rs),
        "load_file_bytes": runner.synth("mosei", 1.0)["bytes"],
    }
