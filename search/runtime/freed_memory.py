"""Memory that a finished trial freed, given back to the system before the next one starts.

Tune runs trial after trial in one reused actor, each in a new thread, and the final re-runs
run task after task in reused workers. glibc's allocator keeps what a trial freed in per-thread
arenas, so a worker's resident memory grows trial after trial until Ray's memory monitor kills
one (README, "Memory of reused workers", has the figures). Collecting the trial's cycles and
`malloc_trim(0)` returns those pages. Not glibc (macOS, musl): nothing to do.
Tested in `tests/search/runtime/test_freed_memory.py`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache


@cache
def _trim() -> object | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release() -> bool:
    """Free unreachable objects and hand the allocator's free pages back to the system;
    whether the allocator could be asked (glibc)."""
    gc.collect()
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
