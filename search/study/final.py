"""After the search: choose the winner robustly and set it against the default configuration.

One trial's best epoch on one seed is partly luck (the winner's curse). So the `--final-top-k`
best COMPLETE trials are re-trained with every final seed, validation only, and the winner is
the one with the best mean validation score. The test split is then scored once per seed for
the winner alone, from the best-epoch weights its re-runs kept: no other candidate's test score
is ever computed. The default configuration (the search's base, the anchor of a sensitivity
sweep) is trained on the same seeds, validation and test, and competes: the best trial wins
only where its gain over the default, seed by seed, exceeds `--final-margin` standard errors
of that paired gain (1 by default; 0: any better mean). Otherwise the default is the winner
(`best_config.yaml` is the default configuration, and the summary says that the search found
nothing better): on a small validation split the seed moves the score as much as the
parameters do, and a winner inside that noise did not hold up on test.

With `--final-cv` each seed also has its own validation fold: train and valid pooled and cut
into as many folds as seeds (`atsuko.data.folds`), the k-th seed of every side training on the
others and validating on fold k, so a small validation split's own noise does not rank the
candidates; the test split is scored as without it.

Every comparison is made on the same seeds: the choice on the seeds where every candidate that
finished any run and the default finished (`choice.seeds` in `summary.json`), winner against
default on the seeds where both finished (`versus_default.seeds`). A failed run takes its seed
out of the comparison instead of leaving each side's mean over different seeds.

All runs are Ray tasks with the trials' resources, on the trials' copy of the dataset; a task
that fails (a CUDA out-of-memory error, a lost node) is recorded with its error and the others
are kept (`search.runtime.faults.gather_each`).
Tested in `tests/search/study/test_final.py` and `tests/search/study/test_driver_e2e.py`.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from atsuko import config as cfg
from atsuko.config import Config
from search.runtime.faults import gather_each
from search.runtime.records import TrialRecord
from search.runtime.shared_data import SharedData
from search.study.space import Space


def top_records(records: list[TrialRecord], mode: str, k: int) -> list[TrialRecord]:
    """The `k` COMPLETE trials with the best validation scores, best first (ties: earlier)."""
    done = [r for r in records if r.state == "COMPLETE" and math.isfinite(r.score)]
    sign = 1.0 if mode == "min" else -1.0
    return sorted(done, key=lambda r: sign * r.score)[: max(0, k)]


def _in_worker(threads: int) -> None:
    """A task's worker: torch's threads, no traceback when Ray ends it
    (`search.runtime.worker_exit`), no warning about the weights it returns (only read), the
    memory its previous task freed given back (`search.runtime.freed_memory`)."""
    import torch

    from search.runtime import freed_memory
    from search.runtime.session import quiet_zero_copy_warning
    from search.runtime.worker_exit import exit_outside_callbacks

    freed_memory.release()
    torch.set_num_threads(threads)
    exit_outside_callbacks()
    quiet_zero_copy_warning()


def seeded(config: Config, seeds: list[int], cv: bool) -> dict[int, dict[str, Any]]:
    """Each seed's run configuration: its seed and, with `cv`, its own fold (the k-th seed
    validates on fold k of len(seeds)), as a dict for the Ray task."""

    def one(k: int, seed: int) -> dict[str, Any]:
        fold = {"folds": len(seeds), "fold": k} if cv else {}
        return config.replace(seed=seed, **fold).to_dict()

    return {seed: one(k, seed) for k, seed in enumerate(seeds)}


def _train(config: dict[str, Any], dataset: Any, threads: int, test: bool) -> tuple:
    """One seed run (a Ray task): its result and, without test, the best epoch's weights."""
    from atsuko.train import NonFiniteLoss, fit, result_json
    from search.runtime.faults import maybe_fail

    _in_worker(threads)
    run_config = cfg.from_dict(config)
    seed = run_config.train.seed
    maybe_fail("final_run", seed)  # the test hook: a candidate's or the default's run
    try:
        result = fit(run_config, dataset, score_test=test, log=None)
    except NonFiniteLoss as exc:
        return {"seed": seed, "error": f"NonFiniteLoss: {exc}"}, None
    state = None if test else {k: v.cpu() for k, v in result.trainer.model.state_dict().items()}
    return result_json(result), state


def _test(config: dict[str, Any], state: Any, dataset: Any, threads: int) -> dict:
    """The test split scored once with a run's best-epoch weights (a Ray task)."""
    from atsuko.train import Trainer

    _in_worker(threads)
    trainer = Trainer(cfg.from_dict(config), dataset)
    trainer.model.load_state_dict(state)
    return trainer.evaluate("test").metrics


DEFAULT = "default"  # the default configuration's name among the candidates


@dataclass
class Candidate:
    """A top trial (or, `record` None, the default configuration) and its seed re-runs
    (validation only until it wins; the default's with test)."""

    record: TrialRecord | None
    config: Config | None
    runs: list[dict[str, Any]] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)  # object refs of the best-epoch weights

    @property
    def name(self) -> str:
        return self.record.trial_id if self.record is not None else DEFAULT

    def scores(self, metric: str) -> dict[int, float]:
        """Seed -> validation score, of the runs that finished."""
        ok = [r for r in self.runs if "error" not in r and metric in (r.get("valid") or {})]
        return {r["seed"]: float(r["valid"][metric]) for r in ok}

    def mean_valid(self, metric: str, seeds: list[int] | None = None) -> float:
        """Mean validation score over `seeds` (None: every seed that finished)."""
        values = [v for k, v in self.scores(metric).items() if seeds is None or k in seeds]
        return statistics.fmean(values) if values else math.nan


@dataclass
class FinalChoice:
    """What the final re-runs found: the candidates, the winner (a trial, or the default
    configuration), its runs with test, the default's runs, the seeds the choice compared."""

    candidates: list[Candidate]
    winner: Candidate | None
    runs: list[dict[str, Any]]  # the winner's, with test
    default_runs: list[dict[str, Any]]
    seeds: list[int] = field(default_factory=list)  # the seeds every compared side finished
    metric: str = ""
    mode: str = "min"
    gain: dict[str, Any] | None = None  # `paired_gain` of the best trial over the default
    folds: int = 0  # with --final-cv: the seeds' folds of train and valid (seed k on fold k)

    @property
    def default_chosen(self) -> bool:
        return self.winner is not None and self.winner.record is None

    @property
    def best_trial(self) -> Candidate | None:
        """The winner, or where the default won, the best trial on the same seeds."""
        if not self.default_chosen:
            return self.winner
        return pick(self.candidates, self.metric, self.mode, self.seeds) or (
            self.candidates[0] if self.candidates else None
        )


def _remote(cpus: float, gpus: float) -> tuple[Any, Any]:
    import ray

    train = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1, num_returns=2)(_train)
    test = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1)(_test)
    return train, test


def pick(
    candidates: list[Candidate], metric: str, mode: str, seeds: list[int] | None = None
) -> Candidate | None:
    """The candidate with the best mean validation score over `seeds` (None: each over its own
    finished seeds); ties: the earlier candidate (the better search score)."""
    sign = 1.0 if mode == "min" else -1.0
    scored = [c for c in candidates if math.isfinite(c.mean_valid(metric, seeds))]
    return min(scored, key=lambda c: sign * c.mean_valid(metric, seeds)) if scored else None


def shared_seeds(sides: list[Candidate], metric: str) -> list[int]:
    """The seeds on which every side that finished any run finished (in seed order)."""
    finished = [set(c.scores(metric)) for c in sides if c.scores(metric)]
    return sorted(set.intersection(*finished)) if finished else []


def choose(
    top: list[TrialRecord],
    space: Space,
    base: Config,
    data: SharedData,
    seeds: list[int],
    *,
    metric: str,
    mode: str,
    cpus: float,
    gpus: float,
    margin: float = 1.0,
    cv: bool = False,
) -> FinalChoice:
    """Re-train the candidates and the default on `seeds`; the best candidate wins where its
    paired gain over the default exceeds `margin` standard errors (`paired_gain`), else the
    default does; test the winner's runs only. A task that fails is a run `{'seed', 'error'}`;
    the others are kept."""
    candidates = [Candidate(r, space.apply(base, r.params)) for r in top]
    if not seeds or not candidates:
        first = candidates[0] if candidates else None
        return FinalChoice(candidates, first, [], [], metric=metric, mode=mode)
    train, test = _remote(cpus, gpus)
    threads = max(1, int(cpus))
    configs = [seeded(c.config, seeds, cv) for c in candidates]  # per candidate, seed -> config
    pending = {  # every training at once: as many run together as resources allow
        (i, seed): train.remote(configs[i][seed], data.ref, threads, False)
        for i in range(len(candidates))
        for seed in seeds
    }
    every = {key: refs[0] for key, refs in pending.items()}  # (i | DEFAULT, seed) -> result
    for seed, config in seeded(base, seeds, cv).items():  # the default's score test too: it may win
        every[DEFAULT, seed] = train.remote(config, data.ref, threads, True)[0]
    results, failed = gather_each(every, _progress("final re-runs (best trials and the default)"))
    done = {key: results.get(key) or {"seed": key[1], "error": failed[key]} for key in every}
    for (i, seed), refs in pending.items():
        candidates[i].runs.append(done[i, seed])
        candidates[i].states.append(refs[1])
    default = Candidate(None, base, [done[DEFAULT, seed] for seed in seeds])
    for run in default.runs:
        if "error" in run:
            print(
                f"warning: the default configuration's run with seed {run['seed']} failed: "
                f"{run['error']}",
                flush=True,
            )
    shared = shared_seeds([*candidates, default], metric)
    # without a seed in common, each candidate is scored over its own seeds and the best wins
    best = pick(candidates, metric, mode, shared or None) or candidates[0]
    gain = paired_gain(best, default, metric, mode, shared, margin) if shared else None
    winner = default if gain is not None and not gain["beats_default"] else best
    if winner is default:
        runs = default.runs
    else:
        tested = next(s for c, s in zip(candidates, configs, strict=True) if c is winner)
        runs = _tested(winner, tested, test, data, threads)
    return FinalChoice(
        candidates,
        winner,
        runs,
        default.runs,
        shared,
        metric=metric,
        mode=mode,
        gain=gain,
        folds=len(seeds) if cv else 0,
    )


def paired_gain(
    best: Candidate, default: Candidate, metric: str, mode: str, seeds: list[int], margin: float
) -> dict[str, Any]:
    """How much `best` beats the default on validation, seed by seed on `seeds`: the mean
    paired gain (positive: better), its standard error (0 with one seed), and whether the gain
    exceeds `margin` standard errors (`beats_default`). Seeds move validation scores as much as
    many parameters do: a best mean inside that noise is not evidence against the default."""
    sign = 1.0 if mode == "min" else -1.0
    ours, theirs = best.scores(metric), default.scores(metric)
    gains = [sign * (theirs[seed] - ours[seed]) for seed in seeds]
    mean = statistics.fmean(gains)
    error = statistics.stdev(gains) / math.sqrt(len(gains)) if len(gains) > 1 else 0.0
    bar = margin * error  # accuracies are multiples of 1/N: gain and bar can tie exactly
    beats = mean > 0 and mean > bar and not math.isclose(mean, bar, rel_tol=1e-9)
    return {
        "trial_id": best.name,
        "gain": mean,
        "standard_error": error,
        "margin": margin,
        "beats_default": beats,
    }


def _progress(what: str) -> Callable[[int, int], None]:
    """A line as each of a group's runs ends, with the minutes since the group began."""
    start = time.monotonic()

    def say(done: int, total: int) -> None:
        minutes = (time.monotonic() - start) / 60
        print(f"  {what}: {done}/{total} done ({minutes:.1f} min)", flush=True)

    return say


def _tested(
    winner: Candidate, configs: dict[int, dict], test: Any, data: SharedData, threads: int
) -> list[dict]:
    """The winner's runs with the test split scored once each (failed runs said and kept);
    `configs`: each seed's run configuration (`seeded`)."""
    refs = {
        run["seed"]: test.remote(configs[run["seed"]], state, data.ref, threads)
        for run, state in zip(winner.runs, winner.states, strict=True)
        if "error" not in run
    }
    scores, failed = gather_each(refs)
    runs = []
    for run in winner.runs:
        seed = run["seed"]
        if seed in failed:
            run = {**run, "error": failed[seed]}
        elif seed in scores:
            run = {**run, "test": scores[seed]}
        if "error" in run:
            print(f"warning: the re-run with seed {seed} failed: {run['error']}", flush=True)
        runs.append(run)
    return runs


def _ms(runs: list[dict[str, Any]], split: str) -> dict[str, dict[str, float]]:
    from search.study.export import mean_std

    return mean_std([r for r in runs if "error" not in r], split)


def versus(winner: dict[str, Any], default: dict[str, Any], metric: str, mode: str) -> dict:
    """Winner against default on one split's selection metric: means, difference, who is better
    (None where either side has no score)."""
    w = (winner.get(metric) or {}).get("mean")
    d = (default.get(metric) or {}).get("mean")
    if w is None or d is None:
        return {"winner": w, "default": d, "difference": None, "winner_better": None}
    better = w < d if mode == "min" else w > d
    return {"winner": w, "default": d, "difference": w - d, "winner_better": bool(better)}


def paired(
    winner_runs: list[dict[str, Any]], default_runs: list[dict[str, Any]]
) -> tuple[list[int], list[dict[str, Any]], list[dict[str, Any]]]:
    """The seeds on which both the winner and the default finished, and both sides' runs on
    them (in seed order)."""
    ok_w = {r["seed"]: r for r in winner_runs if "error" not in r}
    ok_d = {r["seed"]: r for r in default_runs if "error" not in r}
    seeds = sorted(set(ok_w) & set(ok_d))
    return seeds, [ok_w[s] for s in seeds], [ok_d[s] for s in seeds]


def _candidate_doc(c: Candidate, choice: FinalChoice, metric: str) -> dict[str, Any]:
    seeds = choice.seeds or None  # without a seed in common: each over its own
    mean = c.mean_valid(metric, seeds)
    runs = [r for r in c.runs if seeds is None or r.get("seed") in seeds]
    return {
        "trial_id": c.name,
        "search_score": c.record.score if c.record is not None else None,
        "mean_valid": None if math.isnan(mean) else mean,
        "valid": _ms(runs, "valid"),
        "chosen": choice.winner is not None and c.name == choice.winner.name,
    }


def choice_doc(choice: FinalChoice, metric: str, mode: str) -> dict[str, Any]:
    """The `summary.json` entries of the final choice: `choice` (the seeds compared, the
    winner, whether it is the default), `candidates` (the default last), `default`,
    `versus_default` (on the seeds both finished; None where the default won or no seed is
    shared)."""
    default_side = Candidate(None, None, choice.default_runs)
    sides = [*choice.candidates, *([default_side] if choice.default_runs else [])]
    candidates = [_candidate_doc(c, choice, metric) for c in sides]
    default = {
        "seeds": [r.get("seed") for r in choice.default_runs],
        "failed": [r.get("seed") for r in choice.default_runs if "error" in r],
        "valid": _ms(choice.default_runs, "valid"),
        "test": _ms(choice.default_runs, "test"),
        "runs": choice.default_runs,
    }
    doc: dict[str, Any] = {
        "choice": {
            "seeds": choice.seeds,
            "winner": choice.winner.name if choice.winner else None,
            "default_chosen": choice.default_chosen,
            "gain": choice.gain,
            "folds": choice.folds,
        },
        "candidates": candidates,
        "default": default,
        "versus_default": None,
    }
    seeds, w, d = paired(choice.runs, choice.default_runs)
    if seeds and not choice.default_chosen:
        doc["versus_default"] = {
            "metric": metric,
            "mode": mode,
            "seeds": seeds,
            **{s: versus(_ms(w, s), _ms(d, s), metric, mode) for s in ("valid", "test")},
            "stats": {  # every metric on those seeds, for the report's table
                "winner": {s: _ms(w, s) for s in ("valid", "test")},
                "default": {s: _ms(d, s) for s in ("valid", "test")},
            },
        }
    return doc


def over_seeds(choice: dict[str, Any]) -> str:
    """'over seeds [...]' of `summary.json`'s `choice`, naming the folds under --final-cv."""
    folds = choice.get("folds")
    each = f" (each validating on its own of {folds} cross-validation folds)" if folds else ""
    return f"over seeds {choice.get('seeds')}{each}"


def default_kept(choice: dict[str, Any], metric: str) -> str | None:
    """Why the default configuration is the result (`summary.json`'s `choice`), for the
    console and the report; None where a trial won."""
    if not choice.get("default_chosen"):
        return None
    gain, over = choice.get("gain"), over_seeds(choice)
    if gain and gain["gain"] > 0:
        return (
            f"The search found nothing better than the default configuration: the best trial, "
            f"{gain['trial_id']}, beat it on mean valid {metric} {over} by "
            f"{gain['gain']:.4f}, within {gain['margin']:g} standard error(s) of that paired "
            f"gain ({gain['standard_error']:.4f}): seed noise, not evidence, so best_config.yaml "
            "is the default configuration."
        )
    return (
        f"The search found nothing better than the default configuration: it has the best mean "
        f"valid {metric} {over}, so best_config.yaml is the default configuration."
    )


def describe(doc: dict[str, Any], metric: str) -> list[str]:
    """Console lines: the candidates' mean validation scores, the default's failed runs, and
    winner against default (or that the search found nothing better than the default)."""
    lines = []
    cands = doc.get("candidates") or []
    choice = doc.get("choice") or {}
    shown = ", ".join(
        f"{c['trial_id']} {c['mean_valid']:.4f}{' (chosen)' if c['chosen'] else ''}"
        for c in cands
        if c["mean_valid"] is not None
    )
    if len(cands) > 1 and shown:
        over = (
            f" {over_seeds(choice)}"
            if choice.get("seeds")
            else " (no seed that all finished: each its own)"
        )
        lines.append(f"Top trials and the default re-trained, mean valid {metric}{over}: {shown}")
    default = doc.get("default") or {}
    for run in default.get("runs") or []:
        if "error" in run:
            lines.append(
                f"Default configuration's run with seed {run.get('seed')} FAILED: {run['error']}"
            )
    kept = default_kept(choice, metric)
    if kept:
        lines.append(kept)
        return lines
    vs = doc.get("versus_default")
    if vs:
        for split in ("valid", "test"):
            v = vs[split]
            if v["winner"] is None or v["default"] is None:
                continue
            verdict = "better" if v["winner_better"] else "not better"
            lines.append(
                f"Winner vs default configuration over seeds {vs['seeds']}, {split} {metric}: "
                f"{v['winner']:.4f} vs {v['default']:.4f} ({verdict})"
            )
    elif default.get("runs") and (doc.get("final") or {}).get("runs"):
        lines.append("Winner vs default configuration: no seed on which both finished")
    return lines
