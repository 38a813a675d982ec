"""`run_sensitivity` in a child process: Ray reads its settings when first imported, and another
test module may have imported it in the test process already."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from searchtest_util import REPO, env

SWEEP = """
import json, sys
from search.sweep.runner import run_sensitivity
from search.settings import Settings
args = json.loads(sys.argv[1])
settings = Settings(**args.pop("settings"))
run_sensitivity(**args, settings=settings)
"""


def run_sweep(args: dict[str, Any], extra_env: dict[str, str] | None = None) -> str:
    """Run `run_sensitivity(**args)` (`args['settings']`: the fields of `Settings`); its stdout.
    Fails the test with the child's output when it exits non-zero."""
    proc = subprocess.run(
        [sys.executable, "-c", SWEEP, json.dumps(args)],
        cwd=REPO,
        env=env(extra_env or {}),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout
