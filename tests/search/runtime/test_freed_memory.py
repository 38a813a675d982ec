"""A worker gives back what its previous trial freed: glibc keeps freed small blocks in the
thread's arena (resident) until `malloc_trim`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from search.runtime import freed_memory

REPO = Path(__file__).resolve().parents[3]

# a "trial" in its own thread allocates 300k small blocks and frees all but the last (which
# pins the arena's top, so glibc cannot shrink it by itself); then the process measures
CHILD = textwrap.dedent(
    """
    import threading, gc
    from search.runtime import freed_memory

    def resident_mb():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20

    def trial():
        blocks = [bytes(1000) + bytes([i % 256]) for i in range(300_000)]
        return blocks[-1:]

    kept = []
    worker = threading.Thread(target=lambda: kept.append(trial()))
    worker.start(); worker.join(); gc.collect()
    before = resident_mb()
    asked = freed_memory.release()
    print(before, resident_mb(), asked)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_gives_a_finished_trials_freed_memory_back(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=REPO,
    )
    before, after, asked = done.stdout.split()
    assert asked == "True"
    assert int(before) > 250  # the freed blocks were still resident
    assert int(after) < int(before) - 200, done.stdout  # and were given back


def test_release_without_glibc_only_collects(monkeypatch):
    monkeypatch.setattr(freed_memory, "_trim", lambda: None)
    assert freed_memory.release() is False


class _Stop(Exception):
    pass


def test_each_trial_and_final_run_first_releases_what_the_last_one_freed(monkeypatch):
    from search.runtime import trainable
    from search.study import final

    calls = []
    monkeypatch.setattr(freed_memory, "release", lambda: calls.append("release") or True)

    def stop_here(params):
        calls.append("trial")
        raise _Stop

    monkeypatch.setattr(trainable, "maybe_exit", stop_here)
    with pytest.raises(_Stop):
        trainable.train_trial({}, data=None, base={}, cpus=1)
    assert calls == ["release", "trial"]  # before the trial builds anything
    final._in_worker(1)  # a final re-run's task
    assert calls == ["release", "trial", "release"]
