"""Build and run the search: dataset once, Ray, the Tuner (or its restore), then the outputs.

One function, `run`, does it all for `search/run.py`; `search_tuner` puts the searcher and the
scheduler on the Tune path that sweeps share (`search.runtime.tuner`). Every check of the
user's input (flags, space, configuration, dataset) happens before Ray starts.
Tested in `tests/search/study/test_driver_e2e.py`, `test_driver_faults.py`,
`test_driver_multinode.py` and `test_autoscaling.py` (`check_resources` on a cluster that holds
no trial yet).
"""

from __future__ import annotations

import logging
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atsuko import config as cfg
from atsuko.config import Config
from atsuko.errors import ConfigError, DataError
from search import layout
from search.runtime import session as ray_session
from search.runtime import tuner
from search.runtime.records import METRIC, TrialRecord, write_csv
from search.runtime.shared_data import SharedData
from search.runtime.storage import Storage
from search.settings import Settings, base_config, default_grace, default_onset, load_base, save
from search.study import export
from search.study.final import describe as describe_final
from search.study.space import Space, load_space
from search.study.study_mirror import StudyMirror, study_name
from search.study.warm_start import WarmStart


def _say(text: str) -> None:
    print(text, flush=True)


def load_dataset(config: Config) -> Any:
    """The dataset, loaded once in the driver (with a frozen encoder's text states computed
    here, before it is shared); a missing one says how to get a stand-in."""
    from atsuko.data import load_for_run

    try:
        return load_for_run(config, log=_say)
    except DataError as exc:
        message = str(exc)
        if "--synthetic" not in message and not config.data.synthetic:
            message += (
                f"; to search on generated {config.data.dataset.upper()}-shaped data instead, "
                "add --synthetic (or give --data PATH)"
            )
        raise DataError(message) from None


def searched_layers(base: Config, space: Space, dataset: Any) -> None:
    """A searched `bert_layers`: every value checked against the encoder's depth and, with a
    frozen encoder, its states cached here, so that trials read them instead of encoding."""
    param = next((p for p in space.params if p.name == "bert_layers"), None)
    if param is None or base.model.text_encoder != "bert":
        return
    from atsuko.data.bert_states import frozen_states
    from atsuko.model.bert import checked_config

    step = int(param.step or 1)
    values = param.choices or range(int(param.low), int(param.high) + 1, step)
    for value in values:
        checked_config(base.model.bert_path, value)
    if base.model.bert_freeze:  # the base value's states are the dataset's own already
        for value in set(values) - {base.model.bert_layers}:
            frozen_states(base.replace(bert_layers=value), dataset, log=_say)


class SearchDone(Exception):
    """--resume of a search that already finished: nothing to do."""


@dataclass
class Job:
    """A checked search, ready for Ray: the base config, the space and the loaded dataset."""

    settings: Settings
    resume: bool
    base: Config
    space: Space
    dataset: Any
    metric: str  # validation selection metric, e.g. MAE
    mode: str  # min | max
    warm: WarmStart | None = None  # --warm-start: the configurations that run first

    @property
    def out(self) -> Path:
        """The local folder of the driver's files (see `search.runtime.storage`)."""
        return self.settings.out_dir

    @property
    def storage(self) -> Storage:
        return self.settings.storage

    @property
    def name(self) -> str:
        return self.base.data.dataset


def prepare(settings: Settings, resume: bool) -> Job:
    """Check everything the user gave, before Ray: out folder, config, space, dataset."""
    from atsuko.train import select_spec

    store = settings.storage
    out, where = store.local_dir, store.location
    if resume:
        if not store.has_folder(layout.TUNE_DIR):
            raise ConfigError(
                f"--resume {where}: no '{layout.TUNE_DIR}' folder; the search never started"
            )
        if (out / layout.SUMMARY).is_file():
            raise SearchDone(f"the search in {where} is complete; its results are in {where}")
        base = load_base(out)
        space_file: Path | str | None = out / layout.SPACE_COPY
    else:
        if store.has_file(layout.SETTINGS):
            raise ConfigError(
                f"--out {where} already holds a search; continue it with --resume {where} "
                "or choose another --out"
            )
        if not store.is_new():
            raise ConfigError(f"--out {where}: expected a new or empty folder")
        base, _ = base_config(settings)
        space_file = settings.space
    space = load_space(space_file, base, pinned=cfg.parse_set(settings.sets))
    warm = None
    if settings.warm_start and not resume:  # a resumed search has them in its searcher
        from search.study import warm_start

        warm = warm_start.plan(
            settings.warm_start,
            settings.warm_start_k,
            space,
            settings.num_samples,
            sampler=(settings.sampler, settings.seed),
        )
    dataset = load_dataset(base)
    searched_layers(base, space, dataset)
    metric, mode = select_spec(base, dataset)
    return Job(settings, resume, base, space, dataset, metric, mode, warm)


def check_resources(settings: Settings) -> int:
    """The concurrency to use; fail early where no trial can ever run.

    A local Ray (no `--address`) cannot grow: a trial that fits on no node ends the search with
    exit 2. A cluster joined with `--address` may (an autoscaler, new workers joining): if no
    node fits a trial yet, the search says so and starts anyway; its trials wait, PENDING,
    which is what makes an autoscaler add nodes. The default concurrency is what the cluster
    holds at its largest: the autoscaler's ceiling where it published one, else the nodes up
    now, else (nothing fits yet, ceiling unknown) `waiting.FALLBACK_CONCURRENCY`."""
    import ray

    from search.runtime import waiting

    cpus, gpus = settings.cpus_per_trial, settings.gpus_per_trial
    n_max = settings.num_samples
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    now = waiting.fits(ray.cluster_resources(), cpus, gpus)
    ceiling = waiting.autoscaler_ceiling() if settings.address else None
    most = max(now, waiting.fits(ceiling, cpus, gpus)) if ceiling else now
    if not waiting.node_fits(nodes, cpus, gpus):
        why = _no_node_fits(nodes, cpus, gpus)
        if not settings.address:
            raise ConfigError(why)
        most = waiting.fits(ceiling, cpus, gpus) if ceiling else 0
        at_once = min(settings.concurrency or most or waiting.FALLBACK_CONCURRENCY, n_max)
        source = (
            "--concurrency"
            if settings.concurrency
            else "the autoscaler's ceiling"
            if most
            else "the default while no node fits and the ceiling is unknown"
        )
        _say(
            f"note: {why} yet. This is a cluster (--address) that an autoscaler or new workers "
            f"can grow: the search starts, and its trials wait for resources ({at_once} at "
            f"once: {source})."
        )
        return at_once
    most = max(1, most)
    if settings.concurrency is None:
        return min(most, settings.num_samples)
    if settings.concurrency > most:
        _say(
            f"note: --concurrency {settings.concurrency} but the cluster holds {most} trials "
            f"of --cpus-per-trial {cpus:g} at once; the rest will queue"
        )
    return settings.concurrency


def _no_node_fits(nodes: list[dict[str, float]], cpus: float, gpus: float) -> str:
    """Why no node can hold a trial, as the flag that asks too much."""
    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    most_gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    if cpus > most_cpus:
        return f"--cpus-per-trial {cpus:g}: no Ray node has that many CPUs (largest: {most_cpus:g})"
    if gpus > most_gpus:
        return f"--gpus-per-trial {gpus:g}: no Ray node has that many GPUs (largest: {most_gpus:g})"
    return (
        f"--cpus-per-trial {cpus:g} with --gpus-per-trial {gpus:g}: no Ray node has both "
        "(a trial runs on one node)"
    )


def shown_parameters(space: Space, count: int = 5) -> list[str]:
    """The progress table's parameter columns: the first unconditional ones (Tune's table looks
    each up in the best trial's config, which lacks a parameter whose condition failed)."""
    return [p.name for p in space.params if not p.when][:count]


def search_algorithms(
    settings: Settings,
    space: Space,
    metric_mode: str,
    max_epochs: int,
    seeds: list[tuple[dict[str, Any], str]] = (),
    onset_score: float | None = None,
) -> tuple[Any, Any]:
    """The searcher (OptunaSearch with the seeded sampler; `seeds` first) and the scheduler
    (ASHA or its single rung, which a --resume restores, `search.study.asha`; the onset stop
    against `onset_score`, `search.study.onset`; or None for FIFO) of a search: what the
    Tuner runs, and what the benchmark's simulated replay drives directly."""
    from search.study.searcher import PrunedAwareOptunaSearch, make_sampler

    searcher = PrunedAwareOptunaSearch(
        space=space,
        metric=METRIC,
        mode=metric_mode,
        sampler=make_sampler(settings.sampler, settings.seed),
        seeds=seeds,
    )
    return searcher, make_scheduler(settings, max_epochs, onset_score)


def make_scheduler(settings: Settings, max_epochs: int, onset_score: float | None) -> Any:
    """The scheduler `settings.scheduler` names (None: FIFO)."""
    from search.study.asha import ResumableASHA, SingleRung
    from search.study.onset import OnsetStop

    grace = min(settings.grace_period or default_grace(max_epochs), max_epochs)
    rungs = {"seed": settings.seed, "time_attr": "epoch", "max_t": max_epochs,
             "grace_period": grace, "reduction_factor": settings.reduction_factor}  # fmt: skip
    if settings.scheduler == "asha":
        return ResumableASHA(brackets=settings.brackets, **rungs)
    if settings.scheduler == "rung":
        return SingleRung(**rungs)
    if settings.scheduler == "onset":
        if onset_score is None:
            raise ValueError("--scheduler onset needs the label-median score of the dataset")
        epoch = min(settings.onset_epoch or default_onset(max_epochs), max_epochs)
        return OnsetStop(epoch=epoch, baseline=onset_score)
    return None  # FIFO


def search_tuner(
    settings: Settings,
    *,
    trainable: type,
    space: Space,
    metric_name: str,
    metric_mode: str,
    max_epochs: int,
    concurrency: int,
    callbacks: list,
    seeds: list[tuple[dict[str, Any], str]] = (),
    stop: Any = None,
    onset_score: float | None = None,
) -> Any:
    """The search's Tuner: `search_algorithms` on the shared path; `stop`: a Tune stopper (the
    epoch and time budgets of `search.study.budget`, which count once across --resume and
    which the driver reads after the run)."""
    from search.study.restored_search import SnapshotSearch
    from search.study.searcher import RerunLimiter

    searcher, scheduler = search_algorithms(
        settings, space, metric_mode, max_epochs, seeds, onset_score
    )
    return tuner.build_tuner(
        trainable,
        storage_path=settings.storage.location,
        concurrency=concurrency,
        max_failures=settings.max_failures,
        reporter=tuner.progress_table(
            {"score": f"valid {metric_name}", METRIC: "best"}, shown_parameters(space)
        ),
        metric_mode=metric_mode,
        search_alg=SnapshotSearch(RerunLimiter(searcher, max_concurrent=concurrency)),
        scheduler=scheduler,
        num_samples=settings.num_samples,
        callbacks=callbacks,
        per_trial=(settings.cpus_per_trial, settings.gpus_per_trial),
        stop=stop,
    )


def run(settings: Settings, resume: bool = False, trainable: Callable | None = None) -> int:
    """Run (or resume) a search; returns the exit status.

    `trainable` builds the trials' trainable class from (shared data, base configuration as a
    dict, CPUs, GPUs); by default `search.runtime.trainable.make_trainable`, which trains.
    The benchmark's replay passes one that answers from recorded curves.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray.tune.search.optuna").setLevel(logging.ERROR)
    try:
        job = prepare(settings, resume)
    except SearchDone as done:
        _say(str(done))
        return 0
    session = ray_session.start_for(settings)
    try:
        return _search(job, session, trainable)
    finally:
        session.shutdown()
        upload(job.storage)


def upload(store: Storage) -> None:
    """Copy the driver's files to an `--out` URI (at the end, also after Ctrl-C or an error)."""
    if not store.remote:
        return
    try:
        store.upload()
    except OSError as exc:
        _say(
            f"warning: could not copy the search's files to {store.uri} ({exc}); they are in "
            f"{store.local_dir}; copy them there before --resume {store.uri} elsewhere"
        )


def onset_baseline(job: Job) -> float | None:
    """`--scheduler onset`'s baseline: the label-median score of the loaded dataset (a
    resumed search has it in its restored scheduler)."""
    if job.settings.scheduler != "onset" or job.resume:
        return None
    from search.study.onset import label_median_score

    score = label_median_score(job.dataset, job.metric)
    epoch = job.settings.onset_epoch or default_onset(job.base.train.epochs)
    _say(
        f"onset stop: a trial whose valid {job.metric} is no better than {score:.4f} (predicting "
        f"the training labels' median, or majority class) by epoch {epoch} stops"
    )
    return score


def _search(job: Job, session: ray_session.RaySession, make: Callable | None = None) -> int:
    from search.runtime.shared_data import share
    from search.runtime.trainable import make_trainable
    from search.study.callbacks import SearchOutputs

    settings, out, space, store = job.settings, job.out, job.space, job.storage
    concurrency = check_resources(settings)
    if not job.resume:  # the search starts: record what --resume needs
        store.reset_working_dir()  # a URI's local folder may hold an earlier search's files
        save(settings, job.base)
        shutil.copyfile(space.source, out / layout.SPACE_COPY)
        try:
            store.upload()
        except OSError as exc:
            raise ConfigError(f"--out {store.location}: cannot write there ({exc})") from None
    max_epochs = job.base.train.epochs
    mirror = StudyMirror(
        out / layout.STUDY, study_name(job.name), job.mode, space.distributions(), job.metric
    )
    _say(
        f"{'Resuming' if job.resume else 'Searching'} {job.name}: {settings.num_samples} trials "
        f"of up to {max_epochs} epochs, {concurrency} at once ({settings.cpus_per_trial:g} CPU, "
        f"{settings.gpus_per_trial:g} GPU each); sampler {settings.sampler}, scheduler "
        f"{settings.scheduler}; selecting on valid {job.metric} ({job.mode})"
    )
    if space.pinned:
        _say(f"pinned by --set (not searched): {', '.join(space.pinned)}")
    if job.warm is not None:
        from search.study.warm_start import describe as describe_warm

        _say(describe_warm(job.warm))
    _say(describe(session, store))
    onset = onset_baseline(job)
    data = share(job.dataset)  # one copy in the object store, for trials and seed re-runs
    job.dataset = None  # ... and no second one in the driver for the rest of the search
    trainable = (make or make_trainable)(
        data, job.base.to_dict(), settings.cpus_per_trial, settings.gpus_per_trial
    )
    from search.study import budget

    stopper = budget.start(settings.epoch_budget, settings.time_budget)  # before a restore
    if job.resume:
        runner = tuner.restore(store.join(layout.TUNE_DIR), trainable)
    else:
        callbacks = [SearchOutputs(store, job.name, space.names, max_epochs, mirror)]
        if store.remote:  # after SearchOutputs: copies what it has just rewritten
            from search.runtime.storage_sync import StorageSync

            callbacks.append(StorageSync(store))
        runner = search_tuner(
            settings,
            stop=stopper,
            trainable=trainable,
            space=space,
            metric_name=job.metric,
            metric_mode=job.mode,
            max_epochs=max_epochs,
            concurrency=concurrency,
            callbacks=callbacks,
            seeds=job.warm.pairs() if job.warm else [],
            onset_score=onset,
        )
    results = fit_or_stop(runner, store)
    if isinstance(results, int):
        return results
    spent = budget.ended()  # what the stopper in use counted, earlier runs included
    ended, budget_hit = spent or "complete", spent is not None
    records = tuner.collect(results, job.name, finished=budget_hit, max_epochs=max_epochs)
    write_csv(records, out / layout.TRIALS, space.names)
    mirror.sync(records)
    unfinished = [r for r in records if r.state in ("RUNNING", "PENDING")]
    if not budget_hit and (unfinished or len(records) < settings.num_samples):
        _say(
            f"\nSearch interrupted with {len(unfinished)} trial(s) unfinished; state saved in "
            f"{store.location}.\nResume with: python search/run.py --resume {store.location}"
        )
        return 130
    return _finish(job, data, records, ended)


def fit_or_stop(runner: Any, store: Storage) -> Any:
    """Tune's results, or the exit status where the run stopped early, with how to resume:
    130 on Ctrl-C, 1 where Tune itself failed (say, a trial's worker killed for memory while
    Tune set it up: Tune raises instead of failing the trial). Tune's state is saved either
    way, so `--resume` goes on from its last snapshot. A RuntimeError raised outside Ray (a bug
    in this project's callbacks) keeps its traceback."""
    from ray.tune.error import TuneError

    resume = f"Resume with: python search/run.py --resume {store.location}"
    try:
        return runner.fit()
    except KeyboardInterrupt:
        _say(f"\nInterrupted. {resume}")
        return 130
    except (TuneError, RuntimeError) as exc:
        if not isinstance(exc, TuneError) and not raised_in_ray(exc):
            raise
        lines = str(exc).strip().splitlines() or [""]
        cause = textwrap.shorten(lines[0], 400)
        _say(
            f"\nThe search stopped: Ray Tune failed ({type(exc).__name__}: {cause}); its state "
            f"is saved in {store.location}.\n{resume}"
        )
        return 1


def raised_in_ray(exc: BaseException) -> bool:
    """Whether the innermost frame of `exc`'s traceback is Ray's own code."""
    import ray

    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    ray_dir = Path(ray.__file__).resolve().parent
    return ray_dir in Path(tb.tb_frame.f_code.co_filename).resolve().parents


def _finish(job: Job, data: SharedData, records: list[TrialRecord], ended: str) -> int:
    """The robust winner and the default on the final seeds, summary.json, the closing report."""
    from search.study import final

    settings, out = job.settings, job.out
    top = final.top_records(records, job.mode, settings.final_top_k)
    if not top:
        _say("No trial ran to completion: no best configuration (see trials.csv for errors).")
    elif settings.seeds:
        _say(
            f"Re-training the {len(top)} best trial(s) and the default configuration with seeds "
            f"{settings.seeds} ..."
        )
    choice = final.choose(
        top,
        job.space,
        job.base,
        data,
        settings.seeds,
        metric=job.metric,
        mode=job.mode,
        cpus=settings.cpus_per_trial,
        gpus=settings.gpus_per_trial,
        margin=settings.final_margin,
        cv=settings.final_cv,
    )
    trial = choice.best_trial
    best = trial.record if trial else None  # the best trial (shown even where the default won)
    best_config = None
    if choice.default_chosen:  # the search found nothing better: the default is the result
        best_config = export.write_config(job.base, out / layout.BEST_CONFIG)
    elif best is not None:
        best_config = export.write_best_config(job.base, job.space, best, out / layout.BEST_CONFIG)
    doc = export.summary(
        dataset=job.name,
        metric=job.metric,
        mode=job.mode,
        requested=settings.num_samples,
        records=records,
        best=best,
        best_config=best_config,
        runs=choice.runs,
        ended=ended,
    )
    doc.update(final.choice_doc(choice, job.metric, job.mode))
    export.write_summary(doc, out / layout.SUMMARY)
    keep = f"{job.name}_{best.trial_id}" if best else None
    if job.storage.remote:
        job.storage.prune_checkpoints(layout.TUNE_DIR, keep)
    else:
        export.prune_checkpoints(out / layout.TUNE_DIR, keep=keep)
    _say(report(doc, out, job.storage))
    return 0 if best is not None else 1


def describe(session: ray_session.RaySession, store: Storage) -> str:
    """The monitoring block; for a URI, TensorBoard and --resume point at the URI."""
    local = store.local_dir
    more = [
        f"  Optuna study    optuna-dashboard sqlite:///{local / layout.STUDY} --host 127.0.0.1",
        f"  Trials so far   {local / layout.TRIALS}",
        f"  Resume          python search/run.py --resume {store.location}",
    ]
    if store.remote:
        more.append(
            f"  Results         {store.location} (trials and checkpoints; the driver's files "
            f"are copied there from {local})"
        )
    tune_dir = store.join(layout.TUNE_DIR) if store.remote else local / layout.TUNE_DIR
    return tuner.describe(session, tune_dir, *more)


def report(doc: dict[str, Any], out: Path, store: Storage | None = None) -> str:
    """What the user reads at the end: the best configuration and where everything is."""
    metric = doc["select"]["metric"]
    t = doc["trials"]
    states = ", ".join(f"{k} {v}" for k, v in t.items() if k not in ("requested", "total"))
    lines = ["", f"Search {doc['ended']}: {t['total']} trials ({states})."]
    best = doc["best_trial"]
    if best:
        lines.append(
            f"Best trial {best['trial_id']}: valid {metric} {best['score']:.4f} "
            f"(epoch {best['best_epoch']} of {best['epochs']})"
        )
        lines += [f"  {k}: {v}" for k, v in best["params"].items()]
        final = doc["final"]
        for split in ("valid", "test"):
            stats = final[split]
            if stats:
                shown = "  ".join(f"{k} {v['mean']:.4f}±{v['std']:.4f}" for k, v in stats.items())
                lines.append(f"{split} over seeds {final['seeds']}: {shown}")
        for run in final.get("runs") or []:
            if "error" in run:
                lines.append(f"Re-run with seed {run.get('seed')} FAILED: {run['error']}")
        lines += describe_final(doc, metric)
        lines.append(
            f"Reproduce: python -m atsuko.train --config {out / layout.BEST_CONFIG} "
            f"--seed {best['seed']}"
        )
    remote = store is not None and store.remote
    where = store.location if remote else str(out)
    tune_dir = store.join(layout.TUNE_DIR) if remote else str(out / layout.TUNE_DIR)
    lines += [
        f"Outputs in {where}: best_config.yaml, trials.csv, study.db, summary.json, "
        f"{layout.TUNE_DIR}/ (trials, checkpoints, TensorBoard events)",
        f"TensorBoard: tensorboard --logdir {tune_dir} --host 127.0.0.1",
        *([f"Local copy of the driver's files: {out}"] if remote else []),
        f"Optuna dashboard: optuna-dashboard sqlite:///{out / layout.STUDY} --host 127.0.0.1",
    ]
    return "\n".join(lines)
