"""`python search/report.py OUT`: the search's report, rebuilt from whatever OUT holds.

Writes `OUT/report.html` (self-contained: every figure is embedded as a base64 PNG data URI)
and `OUT/report.md` (figures as PNG files in `OUT/figures/`), from a finished search or an
interrupted one: each missing piece is skipped with a note. Sections: best configuration,
validation and test results (mean ± std over seeds), search history, parameter importance and
marginals (recomputed into `importance.json`), one-at-a-time sensitivity, router diagnostics,
and the run's facts (versions, seeds, data file hash, hardware, wall time).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project, not this folder
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from atsuko.cli import ArgumentParser, run_cli  # noqa: E402
from atsuko.errors import ConfigError  # noqa: E402
from search import layout  # noqa: E402
from search.analysis.facts import facts_section  # noqa: E402
from search.analysis.page import Figures, read_json, render_html, render_md  # noqa: E402
from search.analysis.sections import (  # noqa: E402
    best_section,
    diagnostics_section,
    history_section,
    importance_section,
    results_section,
    sensitivity_section,
)

KNOWN = (
    layout.SUMMARY,
    layout.TRIALS,
    layout.STUDY,
    layout.BEST_CONFIG,
    layout.SETTINGS,
    f"{layout.SENS_DIR}/{layout.SENS_PLAN}",
    f"{layout.SENS_DIR}/{layout.SENS_CURVES}",
    f"{layout.DIAG_DIR}/{layout.DIAG_JSON}",
)


def check_out(out: str | Path) -> Path:
    out = Path(out)
    if not out.exists():
        raise ConfigError(f"{out}: no such folder; expected the --out folder of a search")
    if not out.is_dir():
        raise ConfigError(f"{out}: not a folder; expected the --out folder of a search")
    if not any((out / k).exists() for k in KNOWN):
        raise ConfigError(f"{out}: no search outputs found; expected any of {', '.join(KNOWN)}")
    return out


def build_report(
    out: str | Path, *, importance: str | None = None, metric: str | None = None
) -> tuple[Path, Path]:
    """Write `report.html` and `report.md` in `out`; returns their paths.

    `importance`: pedanova | fanova (default: the method of an existing importance.json, else
    pedanova); `metric`: the metric of the sensitivity figures (default: per dataset, as run).
    """
    from search.analysis import importance as imp
    from search.study.trials import load

    out = check_out(out)
    existing = read_json(out / layout.IMPORTANCE) or {}
    method = importance or existing.get("method") or "pedanova"
    if method not in imp.METHODS:
        raise ConfigError(f"--importance {method}: expected one of {', '.join(imp.METHODS)}")
    summary = read_json(out / layout.SUMMARY)
    trials = load(out)
    analysis = None
    if trials is not None:
        analysis = imp.analyse(out, method, trials)
        if analysis is not None:
            (out / layout.IMPORTANCE).write_text(
                json.dumps(analysis, indent=2, default=imp.json_default) + "\n"
            )
    figs = Figures(out)
    sections = [
        best_section(out, summary),
        results_section(summary, trials),
        history_section(analysis, figs),
        importance_section(analysis, figs),
        sensitivity_section(out, figs, metric),
        diagnostics_section(out, figs),
        facts_section(out, summary, trials),
    ]
    dataset = (summary or {}).get("dataset") or _dataset_guess(out)
    title = f"Atsuko search report: {dataset}" if dataset else "Atsuko search report"
    state = (summary or {}).get("ended")
    intro = [
        f"Built {time.strftime('%Y-%m-%d %H:%M:%S')} from {out.name}/."
        + (
            f" The search ended: {state}."
            if state
            else " The search has not finished: this report shows what its folder holds so far."
        )
    ]
    html_path, md_path = out / layout.REPORT_HTML, out / layout.REPORT_MD
    html_path.write_text(render_html(title, intro, sections))
    md_path.write_text(render_md(title, intro, sections))
    return html_path, md_path


def _dataset_guess(out: Path) -> str | None:
    search = read_json(out / layout.SETTINGS) or {}
    if search.get("dataset"):
        return search["dataset"]
    plan = read_json(out / layout.SENS_DIR / layout.SENS_PLAN) or {}
    return ", ".join(plan.get("datasets") or []) or None


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python search/report.py",
        description="Rebuild report.html (self-contained) and report.md in OUT from a finished "
        "or interrupted search: best config, results over seeds, history, importance, "
        "sensitivity curves, router diagnostics and the run's facts.",
    )
    parser.add_argument("out", metavar="OUT", help="the --out folder of a search")
    parser.add_argument(
        "--importance",
        choices=("pedanova", "fanova"),
        help="importance evaluator (default: as before, else Optuna's PED-ANOVA)",
    )
    parser.add_argument(
        "--metric",
        metavar="M",
        help="metric of the sensitivity figures (default Mult_acc_7 for MOSI/MOSEI, "
        "Mult_acc_5 for SIMS/SIMSv2, acc for MIntRec)",
    )
    args = parser.parse_args(argv)
    html_path, md_path = build_report(args.out, importance=args.importance, metric=args.metric)
    print(f"Report: {html_path}\n        {md_path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
