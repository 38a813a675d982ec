"""`python search/run.py`: the search's command line (argument parsing only).

    python search/run.py --dataset mosei --synthetic            # generated MOSEI-shaped data
    python search/run.py --dataset mosei --data aligned_50.pkl  # real features
    python search/run.py --resume runs/search/mosei-20250101-120000
    python search/run.py --dataset mosei --synthetic --out s3://my-bucket/atsuko/mosei

Everything else lives in `search.study.driver`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project, not this folder
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from atsuko.cli import (  # noqa: E402
    ArgumentParser,
    count,
    fraction,
    number,
    port,
    positive_float,
    positive_int,
    run_cli,
    seed,
)
from atsuko.config import DATASETS  # noqa: E402

EPILOG = """\
outputs under --out:
  best_config.yaml  complete config of the best trial (validation only); reproduce it with
                    python -m atsuko.train --config best_config.yaml --seed 1111
  trials.csv        one row per trial: parameters, state, epochs, best validation metrics, node,
                    warm_start (FOLDER:TRIAL_ID of the earlier trial a --warm-start seed re-runs)
  study.db          Optuna study (optuna.load_study / optuna-dashboard sqlite:///study.db)
  summary.json      the winner (of the --final-top-k best trials, by mean validation score
                    over --final-seeds); its validation and test metrics (mean, std), and the
                    default configuration's on the same seeds
  tune/             Ray Tune experiment: trial folders, checkpoints, TensorBoard event files
with --out URI, Tune writes tune/ there directly; the other files are kept in a local working
folder (under the temp dir, or $ATSUKO_SEARCH_CACHE) and copied to the URI as the search goes.
trial states: COMPLETE, PRUNED (stopped by ASHA), ERROR (e.g. NaN loss), STOPPED (time budget)

monitoring: the Ray dashboard address (and where its access token is), the metrics endpoint
and the TensorBoard command are printed when the search starts. A local Ray listens on
127.0.0.1 only. Ctrl-C stops cleanly and prints the --resume command.
exit status: 0 done, 1 no trial completed, 2 bad input, 130 interrupted (resumable)."""


def locations(text: str) -> list[str]:
    """`A,B` -> ['A', 'B'] (folders or URIs), at least one."""
    found = [part.strip() for part in text.split(",") if part.strip()]
    if not found:
        raise argparse.ArgumentTypeError(f"expected one or more --out folders, got {text!r}")
    return found


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python search/run.py",
        description="Hyperparameter search for Atsuko on Ray Tune with Optuna (TPE by default)\n"
        "and ASHA. Trials are selected on the validation split only; the best configuration\n"
        "is then re-trained with several seeds and the test split scored once per seed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for add in (
        _data_flags,
        _budget_flags,
        _search_flags,
        _cluster_flags,
        _output_flags,
        _sweep_flags,
    ):
        add(p)
    return p


def _data_flags(p: ArgumentParser) -> None:
    """--dataset, the data source, the base configuration, --set and the space."""
    data = p.add_argument_group("data and configuration")
    data.add_argument(
        "--dataset",
        metavar="NAME[,NAME]",
        help=f"dataset to search on ({', '.join(DATASETS)}); a sensitivity sweep takes "
        "several, comma-separated (required)",
    )
    source = data.add_mutually_exclusive_group()
    source.add_argument(
        "--synthetic",
        action="store_true",
        default=None,
        help="generated stand-in data with the dataset's real shapes and planted structure",
    )
    source.add_argument("--data", metavar="PATH", help="feature file (.pkl/.npz) or MIntRec folder")
    data.add_argument("--config", metavar="YAML", help="base configuration (as atsuko.train's)")
    data.add_argument(
        "--set",
        dest="sets",
        metavar="KEY=VALUE",
        action="append",
        help="pin a config key for every trial (repeatable); a pinned key leaves the space",
    )
    data.add_argument(
        "--space", metavar="YAML", help="search space (default: configs/search/default.yaml)"
    )


def _budget_flags(p: ArgumentParser) -> None:
    """How much runs: trials, epochs, wall time, or a smoke test."""
    budget = p.add_argument_group("budget")
    budget.add_argument(
        "--num-samples",
        type=positive_int,
        metavar="N",
        help="number of trials (default 20; smoke test 3)",
    )
    budget.add_argument(
        "--max-epochs",
        type=positive_int,
        metavar="N",
        help="epochs per trial at most (default: the config's train.epochs)",
    )
    budget.add_argument(
        "--time-budget",
        type=positive_float,
        metavar="SECONDS",
        help="stop the search after this long (a search counts it once across --resume; "
        "a sweep, per run); finished work is kept, unfinished trials are STOPPED, and the "
        "outputs are written",
    )
    budget.add_argument(
        "--epoch-budget",
        type=positive_int,
        metavar="N",
        help="stop the search once its trials have run N epochs in all (the same compute "
        "whatever the scheduler); unfinished trials are STOPPED and the outputs are written",
    )
    budget.add_argument(
        "--smoke-test",
        action="store_true",
        default=None,
        help="tiny and fast, for CI: synthetic data at scale 0.02, 3 trials of "
        "2 epochs, 2 at once, 2 final seeds (explicit flags still win)",
    )


def _search_flags(p: ArgumentParser) -> None:
    """The search only: sampler, scheduler, seeds of the sampler and of the re-runs."""
    search = p.add_argument_group("search")
    search.add_argument(
        "--sampler",
        choices=("tpe", "tpe_rungs", "random", "cmaes"),
        help="Optuna sampler (default tpe: multivariate, seeded); tpe_rungs ranks the trials "
        "by their scores at one epoch, the latest that enough trials reached (BOHB-style)",
    )
    search.add_argument(
        "--scheduler",
        choices=("asha", "rung", "onset", "none"),
        help="asha stops poor trials early (default); rung cuts once, at --grace-period, and "
        "runs the trials it keeps to the end; onset stops, at --onset-epoch, the trials no "
        "better than predicting the training labels' median (majority class); none runs every "
        "trial to its full budget",
    )
    search.add_argument(
        "--grace-period",
        type=positive_int,
        metavar="N",
        help="ASHA and rung: epochs before a trial can be stopped (default max-epochs/8)",
    )
    search.add_argument(
        "--reduction-factor",
        type=number(int, lambda v: v >= 2, "an integer >= 2"),
        metavar="N",
        help="ASHA and rung: each rung keeps the best 1/N of the trials that reach it (default 4)",
    )
    search.add_argument(
        "--brackets",
        type=positive_int,
        metavar="N",
        help="ASHA: brackets of different first rungs, Hyperband-style hedging (default 1)",
    )
    search.add_argument(
        "--onset-epoch",
        type=positive_int,
        metavar="N",
        help="onset: the epoch at which a trial must beat the label-median score "
        "(default max-epochs/5, at least 2)",
    )
    search.add_argument(
        "--seed",
        type=seed,
        metavar="N",
        help="sampler seed, 0..2**32-1 (default 0); trials train with the config's train.seed",
    )
    search.add_argument(
        "--final-seeds",
        type=count,
        metavar="N",
        help="re-train the best config with seeds 1111..1110+N and score the test "
        "split once per seed (default 5; 0 skips)",
    )
    search.add_argument(
        "--warm-start",
        type=locations,
        metavar="OUT[,OUT...]",
        help="start with the best configurations of earlier searches (their --out folders or "
        "URIs, any dataset), fitted to this space; they run first as ordinary trials",
    )
    search.add_argument(
        "--warm-start-k",
        type=positive_int,
        metavar="K",
        help="how many configurations --warm-start takes: the best by each search's own "
        "validation score, no two alike (default 5)",
    )
    search.add_argument(
        "--final-top-k",
        type=positive_int,
        metavar="K",
        help="re-train the K best trials with the final seeds and keep the one with the best "
        "mean validation score; only it is scored on test (default 3); the default "
        "configuration is trained on the same seeds to compare against",
    )
    search.add_argument(
        "--final-margin",
        type=number(float, lambda v: v >= 0, "a number >= 0"),
        metavar="SE",
        help="the best re-trained trial replaces the default configuration only where its "
        "validation gain over it, paired seed by seed, exceeds SE standard errors of that "
        "gain (default 1; 0: any better mean wins)",
    )
    search.add_argument(
        "--final-cv",
        action="store_true",
        help="the final re-runs validate on cross-validation folds: train and valid pooled "
        "and cut into one fold per final seed (whole videos), seed k validating on fold k; "
        "the candidates and the default are compared fold by fold (the test split as before)",
    )


def _cluster_flags(p: ArgumentParser) -> None:
    """Resources per trial and the Ray cluster to run on."""
    res = p.add_argument_group("resources and cluster")
    res.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="trials at once (default: as many as the cluster's CPUs/GPUs hold; on a cluster "
        "that an autoscaler grows, as many as its largest size holds)",
    )
    res.add_argument(
        "--cpus-per-trial",
        type=positive_float,
        metavar="N",
        help="CPUs per trial (default 1); torch uses that many threads",
    )
    res.add_argument(
        "--gpus-per-trial",
        type=fraction,
        metavar="F",
        help="GPUs per trial, fractions allowed (default 0: CPU)",
    )
    res.add_argument(
        "--max-failures",
        type=count,
        metavar="N",
        help="retries of a failed trial from its last checkpoint (default 1)",
    )
    res.add_argument(
        "--address",
        metavar="ADDR",
        help="join a running Ray cluster (host:port); default: start a local Ray on 127.0.0.1",
    )
    res.add_argument(
        "--dashboard-host",
        metavar="HOST",
        help="where a local Ray's dashboard listens (default 127.0.0.1; anything "
        "else lets others reach it: a warning is printed)",
    )
    res.add_argument(
        "--dashboard-port",
        type=port,
        metavar="PORT",
        help="local dashboard port (default 8265, or a free one)",
    )
    res.add_argument(
        "--metrics-port",
        type=port,
        metavar="PORT",
        help="local Ray's Prometheus metrics port (default: a free one)",
    )


def _output_flags(p: ArgumentParser) -> None:
    """Where everything goes, and --resume of a search."""
    runs = p.add_argument_group("outputs and resume")
    runs.add_argument(
        "--out",
        metavar="DIR|URI",
        help="new folder (local or shared by all nodes) or object-store URI (s3://BUCKET/PREFIX, "
        "gs://..., file:///...) for everything (default runs/search/DATASET-TIME)",
    )
    runs.add_argument(
        "--resume",
        metavar="DIR|URI",
        help="finish the search in DIR or URI (after Ctrl-C or a killed driver, from any "
        "machine that reaches it) with its saved settings",
    )


def _sweep_flags(p: ArgumentParser) -> None:
    """Sensitivity sweeps (their own flags), and the report and diagnostics after a run."""
    sens = p.add_argument_group(
        "sensitivity sweeps and the report",
        "--sensitivity runs one-at-a-time sweeps instead of a search: every value of each "
        "named parameter x every seed, all else at the anchor configuration, through the same "
        "Ray Tune machinery (rerun the same command with the same --out to resume).",
    )
    sens.add_argument(
        "--sensitivity",
        metavar="P1,P2,...",
        help="parameters to sweep (keys of the search space), e.g. num_bands,tau_band,tau_mod",
    )
    sens.add_argument("--seeds", type=positive_int, metavar="N", help="seeds per point (3)")
    sens.add_argument(
        "--around",
        metavar="default|best|FILE.yaml",
        help="the anchor: the default configuration (the paper's star), the best_config.yaml "
        "of a finished search in --out, or a config file (default: default)",
    )
    sens.add_argument(
        "--points",
        type=positive_int,
        metavar="N",
        help="points of a float parameter's sweep (log-spaced on log scales; default 5); "
        "integers and categories take every value",
    )
    sens.add_argument(
        "--with-test", action="store_true", default=None, help="also score each point on test"
    )
    sens.add_argument(
        "--metric",
        metavar="M",
        help="plotted metric (default Mult_acc_7 for MOSI/MOSEI, Mult_acc_5 for SIMS, acc MIntRec)",
    )
    sens.add_argument(
        "--importance",
        choices=("pedanova", "fanova"),
        help="parameter importance in the report (default pedanova: Optuna's PED-ANOVA)",
    )
    sens.add_argument(
        "--diagnostics",
        action="store_true",
        default=None,
        help="after a search: router diagnostics of the best config (modality weights with "
        "and without MCM, band weights, c/w agreement, t-SNE of the four ablations)",
    )
    sens.add_argument(
        "--diagnostics-epochs",
        type=positive_int,
        metavar="N",
        help="epochs for each diagnostics variant (default: the best config's)",
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from search import workflow

    return workflow.run(args)


if __name__ == "__main__":
    run_cli(main)
