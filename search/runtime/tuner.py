"""The one Tune path of searches and sweeps: the Tuner, its results as records, the monitoring.

A search passes a searcher and a scheduler; a sweep passes a grid of labelled points and no
scheduler (every point its full budget). Both run `search.runtime.trainable` trials, read their
results through `collect`, and print the same monitoring block.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from search import layout
from search.runtime import session as ray_session
from search.runtime.records import (
    FINAL,
    METRIC,
    TrialRecord,
    build,
    logged_results,
    newest_result,
)
from search.runtime.whole_files import tune_storage


def _say(text: str) -> None:
    print(text, flush=True)


def trial_name(dataset: str, trial: Any) -> str:
    """Trial names and folders: `<dataset>_<trial id>` (`sens_<trial id>` in a sweep)."""
    return f"{dataset}_{trial.trial_id}"


def build_tuner(
    trainable: type,
    *,
    storage_path: str,
    concurrency: int,
    max_failures: int,
    reporter: Any,
    name: str = layout.TUNE_DIR,
    metric_mode: str | None = None,
    search_alg: Any = None,
    scheduler: Any = None,
    num_samples: int = 1,
    grid: Sequence[str] | None = None,
    time_budget: float | None = None,
    stop: Any = None,
    callbacks: Sequence[Any] = (),
    per_trial: tuple[float, float] | None = None,
) -> Any:
    """The Tuner: `search_alg` and `scheduler` (a search) or a `grid` of point labels, FIFO (a
    sweep); storage, retries, the last two checkpoints, reused actors and trial names. With
    `per_trial` (a trial's CPUs and GPUs) it says when trials wait for resources that no node
    has yet (`search.runtime.waiting`: an autoscaling cluster's start)."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    from search.runtime.waiting import WaitingForResources

    namer = functools.partial(trial_name, trainable.dataset_name)
    param_space = {"point": tune.grid_search(list(grid))} if grid is not None else None
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=METRIC if metric_mode else None,
            mode=metric_mode,
            search_alg=search_alg,
            scheduler=scheduler or FIFOScheduler(),
            num_samples=num_samples,
            # a searcher already in a limiter (`search.study.searcher.RerunLimiter`) keeps it
            max_concurrent_trials=None if _limited(search_alg) else concurrency,
            time_budget_s=time_budget,
            trial_name_creator=namer,
            trial_dirname_creator=namer,
            reuse_actors=True,  # one worker runs trial after trial (no process start each)
        ),
        run_config=tune.RunConfig(
            name=name,
            **tune_storage(storage_path),  # a folder or a URI: Tune writes there
            stop=stop,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[
                *callbacks,
                *([WaitingForResources(*per_trial, say=_say)] if per_trial else []),
            ],
            progress_reporter=reporter,
            verbose=1,
        ),
    )


def _limited(search_alg: Any) -> bool:
    """Whether `search_alg` or a searcher it wraps limits concurrency itself."""
    from ray.tune.search import ConcurrencyLimiter

    while search_alg is not None:
        if isinstance(search_alg, ConcurrencyLimiter):
            return True
        search_alg = getattr(search_alg, "searcher", None)
    return False


def restore(path: str, trainable: type) -> Any:
    """The Tuner of an interrupted experiment: unfinished trials run on (from their newest
    checkpoint, `search.runtime.newest_checkpoint`), and errored ones whose worker or node was
    lost (`search.runtime.errored`); those that failed by themselves (a NaN loss) stay ERROR
    with their reason. Trials that started after Tune's last snapshot are dropped: the
    restored searcher draws their places again (`search.runtime.snapshot.drop_unsaved`)."""
    from ray import tune

    from search.runtime import errored, newest_checkpoint, snapshot

    dropped = snapshot.drop_unsaved(path, f"{trainable.dataset_name}_")
    if dropped:
        _say(
            f"{len(dropped)} trial(s) started after Tune's last snapshot of the killed run, "
            f"which does not hold them: {', '.join(dropped)}; their places are drawn again as "
            "new trials"
        )
    newest_checkpoint.forget_deleted(path)  # Tune would log an error deleting them again
    requeued = errored.requeue_lost(path)
    if requeued:
        _say(errored.describe(requeued))
    where = tune_storage(path)
    return tune.Tuner.restore(
        where["storage_path"],
        trainable=trainable,
        resume_unfinished=True,
        resume_errored=False,
        storage_filesystem=where.get("storage_filesystem"),
    )


def progress_table(metric_columns: dict[str, str], parameters: Sequence[str], **kw: Any) -> Any:
    """Tune's progress table: epoch and scores, and the first few parameters."""
    from ray import tune

    return tune.CLIReporter(
        metric_columns={"epoch": "epoch", **metric_columns},
        parameter_columns=list(parameters),
        max_report_frequency=15,
        **kw,
    )


def _progress_scores(result: Any) -> dict[int, float]:
    """Epoch -> best score so far, from the trial's progress table as Tune read it from
    storage (where `result.path` is not a local folder, e.g. on s3://)."""
    frame = getattr(result, "metrics_dataframe", None)
    if frame is None or "epoch" not in frame or METRIC not in frame:
        return {}
    pairs = zip(frame["epoch"], frame[METRIC], strict=True)
    return {int(e): float(v) for e, v in pairs if e == e}  # e == e: skips NaN epochs


def _config(result: Any, reported: bool) -> dict[str, Any]:
    """The trial's parameters: from its last result where it `reported` one, else from the
    `params.json` Tune wrote in its folder (a restored trial that errored before its first
    result has no config in it)."""
    if reported and result.config:
        return result.config
    fs = getattr(result, "filesystem", None)
    try:
        if fs is None:
            return json.loads((Path(result.path) / "params.json").read_text())
        with fs.open_input_stream(f"{result.path}/params.json") as f:
            return json.loads(f.readall())
    except (OSError, ValueError):
        return {}


def _trial_id(path: str, dataset: str) -> str | None:
    """The trial id in a trial folder's name (`trial_name`), if it has that form."""
    name = Path(path).name
    return name.removeprefix(f"{dataset}_") if name.startswith(f"{dataset}_") else None


def collect(
    results: Any, dataset: str, finished: bool, max_epochs: int | None
) -> list[TrialRecord]:
    """Records from Tune's ResultGrid; unfinished trials are STOPPED if the search `finished`
    (time budget), else RUNNING/PENDING (interrupted: --resume continues them). A trial whose
    last result is its final epoch (marked by the trainable; or all `max_epochs`, for results
    of older runs) is complete even when that result lacks `done`: it ended just before a
    killed driver's last snapshot, which --resume restores as it was."""
    records = []
    for result in results:
        # a trial that never reported shows the metrics Tune filled in for its actor, which
        # (actors are reused) may be another trial's, id and config included: not its own
        reported = "epoch" in (result.metrics or {})
        last = dict(result.metrics) if reported else {}
        logged = logged_results(result.path)
        newest = newest_result(logged)
        if newest is not None and int(newest["epoch"]) > int(last.get("epoch") or 0):
            # it ran on after the killed run's last snapshot (which a resume restored), and a
            # resume that ended at once never heard of it again: its own log is newer
            last = {**last, **newest}
        trial_id = _trial_id(result.path, dataset) or last.get("trial_id")
        epochs_done = max_epochs is not None and int(last.get("epoch") or 0) >= max_epochs
        if result.error is not None:
            status = "ERROR"
        elif last.get("done") or last.get(FINAL) or epochs_done:
            status = "TERMINATED"
            last["done"] = True
        else:
            status = "STOPPED" if finished else "RUNNING"
        error = str(result.error) if result.error is not None else ""
        config = _config(result, reported)
        record = build(
            trial_id, config, last, status=status, error=error, path=result.path, logged=logged
        )
        if not Path(result.path).is_dir():
            record.scores = dict(sorted({**_progress_scores(result), **record.scores}.items()))
        checkpoint = getattr(result, "checkpoint", None)
        record.checkpoint = checkpoint.path if checkpoint is not None else ""
        records.append(record)
    return records


def describe(session: ray_session.RaySession, tune_dir: Path | str, *more: str) -> str:
    """The monitoring block printed when a search or a sweep starts: Ray's dashboard and
    metrics, TensorBoard on `tune_dir`, then the caller's own lines (`more`)."""
    lines = ["", "Monitoring"]
    if session.dashboard_url:
        lines.append(
            f"  Ray dashboard   {session.dashboard_url}  ({ray_session.dashboard_access()})"
        )
    if session.metrics_port:
        host = session.node_ip if not session.started_local else ray_session.LOOPBACK
        lines.append(
            f"  Ray metrics     http://{host}:{session.metrics_port}/metrics  "
            "(ray_atsuko_trial_* gauges per trial; scrape with Prometheus)"
        )
    lines += [f"  TensorBoard     tensorboard --logdir {tune_dir} --host 127.0.0.1", *more, ""]
    return "\n".join(lines)
