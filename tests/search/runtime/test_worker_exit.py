"""A SIGTERM that lands inside a garbage-collection callback still ends the worker, quietly."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from searchtest_util import REPO

SCRIPT = textwrap.dedent(
    """
    import signal, sys, time, weakref
    {install}

    def like_rays_handler(signum, frame):  # Ray's worker raises SystemExit(1) on SIGTERM
        raise SystemExit(1)

    signal.signal(signal.SIGTERM, like_rays_handler)

    class Thing:
        pass

    def callback(ref):  # SIGTERM arrives while Python runs a weakref callback
        signal.raise_signal(signal.SIGTERM)
        total = 0
        for i in range(10000):
            total += i

    thing = Thing()
    ref = weakref.ref(thing, callback)
    del thing
    time.sleep(3)
    print("still running")
    """
)
INSTALL = "from search.runtime.worker_exit import exit_outside_callbacks; exit_outside_callbacks()"


def _run(install: str) -> subprocess.CompletedProcess:
    code = SCRIPT.format(install=install)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_without_the_hook_python_prints_a_traceback_and_goes_on():
    done = _run("")
    assert "Traceback" in done.stderr and "SystemExit" in done.stderr
    assert "still running" in done.stdout and done.returncode == 0


def test_with_the_hook_the_exit_happens_quietly_outside_the_callback():
    done = _run(INSTALL)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "still running" not in done.stdout, done.stderr
