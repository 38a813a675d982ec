"""Two recordings of the same configurations with two training seeds, as one curve table:
`python -m search.bench.merge_seeds FIRST SECOND --out TABLE`.

SECOND is a recording with the same flags as FIRST but `--trials K --train-seed M` (so the
random sampler drew FIRST's first K configurations again, `search.bench.record`). The merged
table is FIRST, each of those K trials with `repeats: [{seed, scores, seconds}]` holding
SECOND's curve of it; the replay reads `scores` as before. Curves pair up by configuration
(their parameters), not by position: a recording resumed before `trials.csv` kept the
search's order across a resume lists its trials in another order than the sampler drew them.
Anything that would pair curves of different configurations, data or budgets is refused.
Tested in `tests/search/bench/test_merge_seeds.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from atsuko.cli import ArgumentParser, run_cli
from atsuko.errors import ConfigError

# what the two recordings must share (the rest: their commands, sizes, seeds, dates, versions)
SAME = ("dataset", "synthetic", "scale", "data_file", "data_sha256", "metric", "mode",
        "max_epochs", "patience", "sampler", "seed", "space", "label_median_score")  # fmt: skip
SEED_KEY = "train.seed"


def _pins(meta: dict[str, Any]) -> list[str]:
    """The --set pins other than the training seed."""
    return [s for s in meta.get("sets") or [] if s.split("=", 1)[0].strip() != SEED_KEY]


def _configuration(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def merge(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """FIRST with SECOND's curves as repeats of the configurations both recorded."""
    a, b = first["meta"], second["meta"]
    for key in SAME:
        if a.get(key) != b.get(key):
            raise ConfigError(f"the tables differ in {key} ({a.get(key)} / {b.get(key)})")
    if _pins(a) != _pins(b):
        raise ConfigError(f"the tables differ in their --set pins ({_pins(a)} / {_pins(b)})")
    if a.get("train_seed") == b.get("train_seed"):
        raise ConfigError(f"both tables were trained with seed {a.get('train_seed')}")
    if len(second["trials"]) > len(first["trials"]):
        raise ConfigError("the second table has more trials than the first; swap them")
    trials = [dict(t) for t in first["trials"]]
    where = {_configuration(t["params"]): t for t in trials}
    for k, other in enumerate(second["trials"]):
        mine = where.get(_configuration(other["params"]))
        if mine is None:
            raise ConfigError(
                f"trial {k + 1} of the second table ({other.get('trial_id')}) is a configuration "
                "the first never recorded: record it with the first's flags and --trials K"
            )
        repeat = {"seed": b.get("train_seed"), "scores": other["scores"]}
        mine["repeats"] = [*mine.get("repeats", []), {**repeat, "seconds": other["seconds"]}]
    meta = dict(a, repeats={"command": b.get("command"), "seed": b.get("train_seed"),
                            "trials": len(second["trials"])})  # fmt: skip
    return {"meta": meta, "trials": trials}


def main(argv: list[str] | None = None) -> int:
    from search.bench.curve_table import load_table, write_table

    p = ArgumentParser(
        prog="python -m search.bench.merge_seeds", description=__doc__.split("\n")[0]
    )
    p.add_argument("first", help="the curve table of the full recording")
    p.add_argument("second", help="the table of its first K configurations, another seed")
    p.add_argument("--out", required=True, help="where the merged table goes")
    args = p.parse_args(argv)
    tables = []
    for path in (args.first, args.second):
        try:
            tables.append(load_table(path))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not a readable curve table ({exc})") from None
    merged = merge(*tables)
    write_table(Path(args.out), merged["meta"], merged["trials"])
    shown = merged["meta"]["repeats"]
    print(f"{args.out}: {shown['trials']} configurations with a second seed ({shown['seed']})")
    return 0


if __name__ == "__main__":
    run_cli(main)
