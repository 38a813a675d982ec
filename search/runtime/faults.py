"""Ray tasks that fail: each failure kept as one line while the other tasks' results are kept
(`gather_each`: the seed re-runs of `search.study.export`, the sweep's test scoring in
`search.sweep.runner`), and a test hook that makes a named task raise.

The hook:

`ATSUKO_INJECT_FAILURE="final_run:1112,score_test:mosi|anchor|*"` makes the seed re-runs with
seed 1112 (the top trials' and the default configuration's) and the test scoring of the sweep's
MOSI anchor points raise `InjectedFailure` inside the Ray task (comma-separated `kind:key`
patterns, `fnmatch` wildcards; the variable reaches the tasks of a local Ray through the
driver's environment). `worker_exit:*lr=0.003*` ends the worker process of a trial whose
parameters match, as a lost node or a killed worker would (`maybe_exit`; the key is the
trial's `name=value` parameters, sorted, comma-separated). Unset, as in every real run, it
does nothing. Tested in `tests/search/runtime/test_faults.py` and
`tests/search/study/test_rerun_failures.py`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from typing import Any

ENV = "ATSUKO_INJECT_FAILURE"


class InjectedFailure(RuntimeError):
    """Raised where `ATSUKO_INJECT_FAILURE` names the task (tests only)."""


def _named(kind: str, key: object) -> bool:
    patterns = [item.strip() for item in os.environ.get(ENV, "").split(",") if item.strip()]
    return any(fnmatch.fnmatchcase(f"{kind}:{key}", p) for p in patterns)


def maybe_fail(kind: str, key: object) -> None:
    """Raise `InjectedFailure` when `kind:key` matches a pattern listed in the variable."""
    if _named(kind, key):
        raise InjectedFailure(f"injected failure of {kind} {key} ({ENV})")


def maybe_exit(params: dict[str, Any]) -> None:
    """End this process at once, with no exception to report (a lost worker), when
    `worker_exit:<params>` matches a pattern listed in the variable."""
    if _named("worker_exit", ",".join(f"{k}={v}" for k, v in sorted(params.items()))):
        os._exit(1)


def task_error(exc: BaseException) -> str:
    """One line for a failed Ray task: the exception that the task raised (its cause), or
    what happened to it (worker crashed, node died, object lost)."""
    cause = getattr(exc, "cause", None)
    shown = cause if isinstance(cause, BaseException) else exc
    lines = [ln for ln in str(shown).strip().splitlines() if ln.strip()]
    text = lines[-1].strip() if lines else ""
    name = type(shown).__name__
    return (f"{name}: {text}" if not text.startswith(name) else text)[:500]


def gather_each(
    refs: dict[Any, Any], progress: Callable[[int, int], None] | None = None
) -> tuple[dict[Any, Any], dict[Any, str]]:
    """Wait for every task in `refs` (key -> ObjectRef): (results by key, errors by key);
    `progress(done, total)` is called as each task ends, in the order they end.

    One `ray.get(list)` would raise at the first failed task and lose the others' results; here
    each task's failure (its exception, a crashed worker, a dead node) is kept as one line."""
    import ray
    from ray.exceptions import RayError

    results: dict[Any, Any] = {}
    errors: dict[Any, str] = {}
    keys = {ref: key for key, ref in refs.items()}
    waiting = list(keys)
    while waiting:
        (ready,), waiting = ray.wait(waiting, num_returns=1)
        try:
            results[keys[ready]] = ray.get(ready)
        except RayError as exc:
            errors[keys[ready]] = task_error(exc)
        if progress is not None:
            progress(len(keys) - len(waiting), len(keys))
    return results, errors
