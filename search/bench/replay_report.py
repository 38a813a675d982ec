"""The replay comparison's lines in the bench report: one row per method and budget.
Tested in `tests/search/bench/test_replay_bench.py`.
"""

from __future__ import annotations

from typing import Any


def _q(q: list[float] | tuple[float, ...], digits: int = 2) -> str:
    return f"{q[1]:.{digits}f} ({q[0]:.{digits}f}-{q[2]:.{digits}f})"


def replay_details(r: dict[str, Any]) -> list[str]:
    """Speedup and regret (median and IQR over seeds) and mean rank, per budget and method."""
    out = [
        f"5r. replay on {r['table_configs']} recorded configurations (MOSI scale "
        f"{r['table_scale']:g}), {r['replay_seeds']} seeds; default {r['default_method']}; "
        f"ASHA first rung from the table's rank correlations: epoch "
        f"{r['replay_grace_from_table']} ({r['replay_rung_correlation']})"
    ]
    for n, methods in r["replay_by_budget"].items():
        out.append(
            f"   budget {n} full trials: method, speedup, regret at 10/25/50/100%, mean rank"
        )
        for name, v in methods.items():
            regrets = "  ".join(_q(q) for q in v["regret"].values())
            out.append(f"     {name:<24} {_q(v['speedup'])}  {regrets}  rank {v['mean_rank']:.2f}")
    best = r["replay_best_scheduler"]
    out.append(f"   best TPE method at any time (lowest median regret, all fractions): {best}")
    out.append(f"   figure: {r['replay_figure']}")
    return out
