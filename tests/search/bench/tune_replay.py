"""A replay search through Ray Tune and the driver, in a process of its own: the driver must
import Ray after the session has set Ray's environment, which a test process that already
imported it (for the simulated replay, say) cannot give."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from searchtest_util import REPO, env

SCRIPT = """
import json, sys
from search.bench.curve_table import load_table
from search.bench.replay import replay_factory
from search.settings import Settings, check
from search.study import driver
settings, table, scale = Settings(**json.loads(sys.argv[1])), sys.argv[2], float(sys.argv[3])
check(settings)
sys.exit(driver.run(settings, trainable=replay_factory(load_table(table), time_scale=scale)))
"""


def tune_replay(
    settings: dict[str, Any], table: Path, time_scale: float
) -> subprocess.CompletedProcess:
    """Run `driver.run(Settings(**settings))` with the replay trainable on `table`."""
    command = [sys.executable, "-c", SCRIPT, json.dumps(settings), str(table), str(time_scale)]
    return subprocess.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
