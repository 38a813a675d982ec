"""One curve table replayed alone: `python -m search.bench.replay_one FILE [--seeds N]`.

`python -m search.bench --only replay` replays the tuning table (speedups and compute ratios)
and the held-out one beside it. This replays a single table in compute ratios only, every
method on both replays (nearest recorded curve, surrogate), so that a table can be measured
over more seeds than the whole section affords, or checked as soon as it is recorded. It
prints the report's section 5s for that table (`--json`: its `replay_compute` and `tables`
keys, with `default_method`). Trains nothing. At large budgets TPE's own cost grows with its
trials (about a minute a search at 256 full trials' budget): `--methods` runs some methods
only (the search's default method and the baselines always run: the verdicts need them) and
`--surrogate-only` skips the nearest-curve replay; `--workers N` runs the searches in N
processes.
Tested in `tests/search/bench/test_surrogate_replay.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

from atsuko.cli import ArgumentParser, positive_int, run_cli
from search.bench.replay_bench import BASELINES, default_method, load, methods
from search.bench.replay_report import compute_details
from search.bench.replay_tables import BUDGETS, one_table
from search.bench.runner import BenchError


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m search.bench.replay_one", description=__doc__.split("\n")[0])
    p.add_argument("table", help="a curve table (python -m search.bench.record, merge_seeds)")
    p.add_argument("--role", choices=("tuning", "held_out"), default="held_out")
    p.add_argument("--seeds", type=positive_int, default=30, metavar="N", help="default 30")
    p.add_argument(
        "--budgets",
        type=positive_int,
        nargs="+",
        default=list(BUDGETS),
        metavar="TRIALS",
        help="budgets in full trials' epochs (default 16 64 256; the target is at 64)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        metavar="NAME",
        help="only these methods (default: all; the default method and baselines always run)",
    )
    only_one = p.add_mutually_exclusive_group()
    only_one.add_argument(
        "--surrogate-only", action="store_true", help="skip the nearest-recorded-curve replay"
    )
    only_one.add_argument(
        "--nearest-only",
        action="store_true",
        help="skip the surrogate replay (and with it the `tables` verdict, measured on it)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="run the searches in N processes (default 1; the figures do not depend on it)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    path = Path(args.table)
    table = load(path)
    named = methods(table)
    name = default_method(named, int(table["meta"]["max_epochs"]))
    only = None
    if args.methods:
        unknown = sorted(set(args.methods) - set(named))
        if unknown:
            raise BenchError(
                f"--methods: unknown {', '.join(unknown)}; this table's methods are "
                f"{', '.join(named)}"
            )
        only = frozenset(args.methods) | {name, *BASELINES}
    budgets = tuple(sorted(set(args.budgets)))
    choice = {
        "only": only,
        "nearest": not args.surrogate_only,
        "surrogate_replay": not args.nearest_only,
        "workers": args.workers,
    }
    out = {
        "default_method": name,
        **one_table(path, table, args.seeds, name, budgets, args.role, **choice),
    }
    print(json.dumps(out) if args.json else "\n".join(compute_details(out)))
    return 0


if __name__ == "__main__":
    run_cli(main)
