"""A local Ray for the search tests, started the way the driver starts one (loopback only).

Run as a child process by `conftest.py`: prints one JSON line (GCS address, metrics port,
dashboard URL), then keeps Ray up until its standard input closes, and shuts down its own Ray.
Keeping it in a child process means no test module's `ray.init` can collide with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from search.runtime import session as ray_session  # noqa: E402


def main() -> None:
    cpus = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    # any free dashboard port: 8265 may belong to another Ray on this machine
    session = ray_session.start(None, num_cpus=cpus, dashboard_port=ray_session.free_port())
    print(
        json.dumps(
            {
                "address": session.gcs_address,
                "metrics_port": session.metrics_port,
                "dashboard_url": session.dashboard_url,
            }
        ),
        flush=True,
    )
    sys.stdin.read()  # until the test session closes our stdin
    session.shutdown()


if __name__ == "__main__":
    main()
