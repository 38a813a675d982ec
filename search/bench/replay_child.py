"""`python -m search.bench.replay_child SPEC.json`: replay searches one after another.

SPEC holds the curve table's path, the address of the Ray to join and the searches (the
fields of `search.settings.Settings` each). Each search runs through `search.study.driver.run`
with the replay trainable; a search whose `summary.json` exists already is skipped, so a rerun
picks up where a killed one stopped.
Tested in `tests/search/bench/test_replay_bench.py`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    import optuna

    from search import layout
    from search.bench.curve_table import load_table
    from search.bench.replay import replay_factory
    from search.settings import Settings, check
    from search.study import driver

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = json.loads(Path(argv[0]).read_text())
    table = load_table(spec["table"])
    make = replay_factory(table, spec.get("time_scale", 0.02))
    for k, job in enumerate(spec["jobs"], 1):
        settings = Settings(**{**job["settings"], "address": spec["address"]})
        check(settings)
        if (settings.out_dir / layout.SUMMARY).is_file():
            continue
        start = time.time()
        code = driver.run(settings, trainable=make)
        print(
            f"[replay {k}/{len(spec['jobs'])}] {job['method']} seed {job['seed']} "
            f"{job['trials']} trials: exit {code} in {time.time() - start:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
