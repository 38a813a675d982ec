"""The replay comparison's lines in the bench report: one row per method and budget.
Tested in `tests/search/bench/test_replay_bench.py`.
"""

from __future__ import annotations

from typing import Any

from search.bench.replay_compute import CAP, fmt


def _q(q: list[float] | tuple[float, ...], digits: int = 2) -> str:
    return f"{q[1]:.{digits}f} ({q[0]:.{digits}f}-{q[2]:.{digits}f})"


def replay_details(r: dict[str, Any]) -> list[str]:
    """Speedup and regret (median and IQR over seeds) and mean rank, per budget and method."""
    data = r.get("table_data") or f"MOSI scale {r['table_scale']:g}"  # older results: no label
    out = [
        f"5r. replay on {r['table_configs']} recorded configurations ({data}), "
        f"{r['replay_seeds']} seeds; default {r['default_method']}; "
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
    if "replay_compute" in r:
        out += compute_details(r)
    return out


def _c(m: dict[str, Any]) -> str:
    """Censored quartiles: median (25th-75th), a lower bound marked ">=" where censored."""
    q, c = m["q"], m["censored"]
    return f"{fmt(q[1], c[1])} ({fmt(q[0], c[0])} to {fmt(q[2], c[2])})"


def compute_details(r: dict[str, Any]) -> list[str]:
    """Compute ratio, epochs to the top-1%/5% qualities and final regret, per replay, budget
    and method (median and IQR over seeds)."""
    out = [
        f"5s. replays {', '.join(r['replay_compute'])}, {r['replay_compute_seeds']} seeds; "
        "surrogate's held-out rank "
        f"correlation of best scores {r['surrogate_rank_corr']:.2f}, noise "
        f"{r['surrogate_noise']:.3f}; compute ratio: random search's epochs to the method's "
        f"score at the budget / the budget (random runs up to {CAP}x)"
    ]
    for replay, budgets in r["replay_compute"].items():
        for n, by_method in budgets.items():
            out.append(f"   {replay} replay, budget {n} full trials: method, {_columns(replay)}")
            for name, v in by_method.items():
                out.append(f"     {name:<24} {_row(v)}")
    return out + [line for entry in r.get("tables", []) for line in table_lines(entry)]


def _columns(replay: str) -> str:
    if replay.endswith("_noiseless"):  # regret only: see `search.bench.replay_tables.measure`
        return "the exported configuration's regret at 10/25/50/100% of the budget"
    return "compute ratio, epochs to top 1%, to top 5%, final regret"


def _row(v: dict[str, Any]) -> str:
    if "compute_ratio" not in v:
        return "  ".join(_q(q) for q in v["regret"].values())
    return (
        f"{_c(v['compute_ratio'])}  {_c(v['epochs_to_top1'])}  {_c(v['epochs_to_top5'])}  "
        f"{_q(v['final_regret'])}"
    )


def table_lines(entry: dict[str, Any]) -> list[str]:
    """One curve table's verdict: the default method against random search (surrogate)."""
    ratio = ", ".join(f"{n}: {v:.2f}" for n, v in entry["compute_ratio_median"].items())
    target = entry["target"]
    met = {True: "met", False: "MISSED", None: "not measured"}
    spread = entry.get("seed_spread")
    seeds = (
        f"seed-to-seed spread of best scores {spread:.4f} ({entry['repeated_configs']} "
        "configurations with two seeds)"
        if spread is not None
        else "one seed per configuration"
    )
    lines = [
        f"   {entry['role']} table {entry['name']}, {entry['method']} (surrogate replay): median "
        f"compute ratio by budget {ratio}; ratio >= 2 at 64 trials {met[target['compute_ratio']]}"
        f", median regret never above random search's {met[target['regret']]}; {seeds}"
    ]
    quiet = entry.get("noiseless")  # results written before the noiseless measure: none
    if quiet:
        finals = ", ".join(
            f"{n}: {quiet['regret_median'][n]['1.0']:.2f} against "
            f"{quiet['random_regret_median'][n]['1.0']:.2f}"
            for n in quiet["regret_median"]
        )
        lines.append(f"     noiseless final regret by budget, against random search's: {finals}")
    return lines
