"""After the search: choose the winner robustly and set it against the default configuration.

One trial's best epoch on one seed is partly luck (the winner's curse). So the `--final-top-k`
best COMPLETE trials are re-trained with every final seed, validation only, and the winner is
the one with the best mean validation score. The test split is then scored once per seed for
the winner alone, from the best-epoch weights its re-runs kept: no other candidate's test score
is ever computed. The default configuration (the search's base, the anchor of a sensitivity
sweep) is trained on the same seeds, validation and test, so that `summary.json` can say
whether the search paid off.

All runs are Ray tasks with the trials' resources, on the trials' copy of the dataset; a task
that fails (a CUDA out-of-memory error, a lost node) is recorded with its error and the others
are kept (`search.runtime.faults.gather_each`).
Tested in `tests/search/study/test_final.py` and `tests/search/study/test_driver_e2e.py`.
"""

from __future__ import annotations

import math
import statistics
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
    (`search.runtime.worker_exit`), no warning about the weights it returns (only read)."""
    import torch

    from search.runtime.session import quiet_zero_copy_warning
    from search.runtime.worker_exit import exit_outside_callbacks

    torch.set_num_threads(threads)
    exit_outside_callbacks()
    quiet_zero_copy_warning()


def _train(config: dict[str, Any], seed: int, dataset: Any, threads: int, test: bool) -> tuple:
    """One seed run (a Ray task): its result and, without test, the best epoch's weights."""
    from atsuko.train import NonFiniteLoss, fit, result_json
    from search.runtime.faults import maybe_fail

    _in_worker(threads)
    if not test:
        maybe_fail("final_run", seed)
    run_config = cfg.from_dict(config).replace(seed=seed)
    try:
        result = fit(run_config, dataset, score_test=test, log=None)
    except NonFiniteLoss as exc:
        return {"seed": seed, "error": f"NonFiniteLoss: {exc}"}, None
    state = None if test else {k: v.cpu() for k, v in result.trainer.model.state_dict().items()}
    return result_json(result), state


def _test(config: dict[str, Any], seed: int, state: Any, dataset: Any, threads: int) -> dict:
    """The test split scored once with a run's best-epoch weights (a Ray task)."""
    from atsuko.train import Trainer

    _in_worker(threads)
    trainer = Trainer(cfg.from_dict(config).replace(seed=seed), dataset)
    trainer.model.load_state_dict(state)
    return trainer.evaluate("test").metrics


@dataclass
class Candidate:
    """A top trial and its seed re-runs (validation only until it wins)."""

    record: TrialRecord
    config: Config
    runs: list[dict[str, Any]] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)  # object refs of the best-epoch weights

    def mean_valid(self, metric: str) -> float:
        values = [r["valid"][metric] for r in self.runs if "error" not in r]
        return statistics.fmean(values) if values else math.nan


@dataclass
class FinalChoice:
    """What the final re-runs found: the candidates, the winner's runs, the default's runs."""

    candidates: list[Candidate]
    winner: Candidate | None
    runs: list[dict[str, Any]]  # the winner's, with test
    default_runs: list[dict[str, Any]]


def _remote(cpus: float, gpus: float) -> tuple[Any, Any]:
    import ray

    train = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1, num_returns=2)(_train)
    test = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1)(_test)
    return train, test


def pick(candidates: list[Candidate], metric: str, mode: str) -> Candidate | None:
    """The candidate with the best mean validation score (ties: the better search score)."""
    sign = 1.0 if mode == "min" else -1.0
    scored = [c for c in candidates if math.isfinite(c.mean_valid(metric))]
    return min(scored, key=lambda c: sign * c.mean_valid(metric)) if scored else None


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
) -> FinalChoice:
    """Re-train the candidates and the default on `seeds`; test the winner's runs only. A
    task that fails is a run `{'seed', 'error'}`; the others are kept."""
    candidates = [Candidate(r, space.apply(base, r.params)) for r in top]
    if not seeds or not candidates:
        return FinalChoice(candidates, candidates[0] if candidates else None, [], [])
    train, test = _remote(cpus, gpus)
    threads = max(1, int(cpus))
    pending = {  # every training at once: as many run together as resources allow
        (i, seed): train.remote(c.config.to_dict(), seed, data.ref, threads, False)
        for i, c in enumerate(candidates)
        for seed in seeds
    }
    defaults = {s: train.remote(base.to_dict(), s, data.ref, threads, True)[0] for s in seeds}
    results, failed = gather_each({key: refs[0] for key, refs in pending.items()})
    for (i, seed), refs in pending.items():
        run = results.get((i, seed)) or {"seed": seed, "error": failed[(i, seed)]}
        candidates[i].runs.append(run)
        candidates[i].states.append(refs[1])
    winner = pick(candidates, metric, mode) or candidates[0]
    return FinalChoice(candidates, winner, _tested(winner, test, data, threads), _runs(defaults))


def _runs(refs: dict[int, Any]) -> list[dict[str, Any]]:
    """Each seed's run, or `{'seed', 'error'}` where its task failed."""
    results, failed = gather_each(refs)
    return [results.get(seed) or {"seed": seed, "error": failed[seed]} for seed in refs]


def _tested(winner: Candidate, test: Any, data: SharedData, threads: int) -> list[dict]:
    """The winner's runs with the test split scored once each (failed runs said and kept)."""
    refs = {
        run["seed"]: test.remote(winner.config.to_dict(), run["seed"], state, data.ref, threads)
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


def choice_doc(choice: FinalChoice, metric: str, mode: str) -> dict[str, Any]:
    """The `summary.json` entries of the final choice: `candidates`, `default`, `versus_default`."""
    winner_id = choice.winner.record.trial_id if choice.winner else None
    candidates = [
        {
            "trial_id": c.record.trial_id,
            "search_score": c.record.score,
            "mean_valid": None if math.isnan(c.mean_valid(metric)) else c.mean_valid(metric),
            "valid": _ms(c.runs, "valid"),
            "chosen": c.record.trial_id == winner_id,
        }
        for c in choice.candidates
    ]
    default = {
        "seeds": [r.get("seed") for r in choice.default_runs],
        "valid": _ms(choice.default_runs, "valid"),
        "test": _ms(choice.default_runs, "test"),
        "runs": choice.default_runs,
    }
    doc: dict[str, Any] = {"candidates": candidates, "default": default, "versus_default": None}
    if choice.runs and choice.default_runs:
        doc["versus_default"] = {
            "metric": metric,
            "mode": mode,
            **{s: versus(_ms(choice.runs, s), default[s], metric, mode) for s in ("valid", "test")},
        }
    return doc


def describe(doc: dict[str, Any], metric: str) -> list[str]:
    """Console lines: the candidates' mean validation scores and winner against default."""
    lines = []
    cands = doc.get("candidates") or []
    if len(cands) > 1:
        shown = ", ".join(
            f"{c['trial_id']} {c['mean_valid']:.4f}{' (chosen)' if c['chosen'] else ''}"
            for c in cands
            if c["mean_valid"] is not None
        )
        lines.append(f"Top {len(cands)} trials re-trained, mean valid {metric}: {shown}")
    vs = doc.get("versus_default")
    if vs:
        for split in ("valid", "test"):
            v = vs[split]
            if v["winner"] is None:
                continue
            verdict = "better" if v["winner_better"] else "not better"
            lines.append(
                f"Winner vs default configuration, {split} {metric}: {v['winner']:.4f} vs "
                f"{v['default']:.4f} ({verdict})"
            )
    return lines
