"""Ray workers (trials, the final runs' tasks) end without a traceback on SIGTERM.

Ray ends idle workers with SIGTERM when a search is over, and its handler raises `SystemExit`
wherever the worker's main thread is. When that is inside a garbage-collection callback (a
`WeakSet` entry being removed, say), Python cannot raise it there: it prints the exception as a
traceback into the driver's console, and the worker goes on. `exit_outside_callbacks` signals
such a swallowed exit again a moment later, so Ray's own handler ends the worker on its usual
path (which also exports the worker's last metrics); every other unraisable exception is
reported as before.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

RETRY_AFTER_S = 0.05  # long enough for the callback that swallowed the exit to return


def _resignal() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def _hook(default: Any) -> Any:
    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, SystemExit):
            threading.Timer(RETRY_AFTER_S, _resignal).start()
            return
        default(unraisable)

    hook.installed = True  # type: ignore[attr-defined]
    return hook


def exit_outside_callbacks() -> None:
    """Install the hook in this process (once; a reused worker keeps it)."""
    if not getattr(sys.unraisablehook, "installed", False):
        sys.unraisablehook = _hook(sys.unraisablehook)
