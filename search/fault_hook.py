"""A test hook: make a named Ray task raise, to test how the driver survives a failed task.

`ATSUKO_INJECT_FAILURE="final_run:1112,score_test:mosi|anchor|*"` makes the seed re-run with
seed 1112 and the test scoring of the sweep's MOSI anchor points raise `InjectedFailure` inside
the Ray task (comma-separated `kind:key` patterns, `fnmatch` wildcards; the variable reaches the
tasks of a local Ray through the driver's environment). Unset, as in every real run, it does
nothing.
"""

from __future__ import annotations

import fnmatch
import os

ENV = "ATSUKO_INJECT_FAILURE"


class InjectedFailure(RuntimeError):
    """Raised where `ATSUKO_INJECT_FAILURE` names the task (tests only)."""


def maybe_fail(kind: str, key: object) -> None:
    """Raise `InjectedFailure` when `kind:key` matches a pattern listed in the variable."""
    patterns = [item.strip() for item in os.environ.get(ENV, "").split(",") if item.strip()]
    if any(fnmatch.fnmatchcase(f"{kind}:{key}", p) for p in patterns):
        raise InjectedFailure(f"injected failure of {kind} {key} ({ENV})")
