"""The layout of an `--out` folder: every file and folder a search, a sweep, the diagnostics
and the report write there, by name. Everything else imports these names.

    OUT/
      search.json        the resolved flags (`--resume` reads them back)
      base_config.yaml   the configuration every trial starts from
      space.yaml         a copy of the search space
      trials.csv         one row per trial
      study.db           the Optuna study (SQLite)
      best_config.yaml   the best trial's complete configuration
      summary.json       best trial; validation and test metrics over seeds
      importance.json    parameter importance (after the search)
      tune/              Ray Tune's experiment: trial folders, checkpoints, TensorBoard events
      diagnostics/       diagnostics.json and arrays.npz (router diagnostics)
      sensitivity/       plan.json, curves.csv, trials.json, test_scores.json, tune/roundN/
      report.html, report.md, figures/
"""

from __future__ import annotations

from pathlib import Path

# a search
SETTINGS = "search.json"
BASE_CONFIG = "base_config.yaml"
SPACE_COPY = "space.yaml"
TRIALS = "trials.csv"
STUDY = "study.db"
BEST_CONFIG = "best_config.yaml"
SUMMARY = "summary.json"
IMPORTANCE = "importance.json"
TUNE_DIR = "tune"

# router diagnostics
DIAG_DIR = "diagnostics"
DIAG_JSON = "diagnostics.json"
DIAG_ARRAYS = "arrays.npz"

# a sensitivity sweep
SENS_DIR = "sensitivity"
SENS_PLAN = "plan.json"
SENS_CURVES = "curves.csv"
SENS_TESTS = "test_scores.json"
SENS_LEDGER = "trials.json"  # Tune rounds and each point's outcome, across runs

# the report
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
FIGURES_DIR = "figures"

# what the report lists as the search's outputs, in this order
SEARCH_OUTPUTS = (SUMMARY, TRIALS, STUDY, BEST_CONFIG, SETTINGS)


def sweep_dir(out: str | Path) -> Path:
    return Path(out) / SENS_DIR


def diagnostics_dir(out: str | Path) -> Path:
    return Path(out) / DIAG_DIR
