"""Warm start: begin a search with the best configurations of earlier searches.

`--warm-start OUT[,OUT...]` names finished or interrupted searches (`--out` folders or URIs), of
this dataset or another. From their COMPLETE trials, ranked by each source's own validation
score, `choose` takes the top `--warm-start-k`, in turn from each source (scores of different
datasets or metrics are never compared), skipping a configuration that is near one already
taken: the same categorical values and every number within `NEAR` of its range. Each is fitted
to this search's space (`fit`): keys the space lacks are dropped, numbers are clipped to its
bounds (and snapped to its steps), a categorical value it does not offer is dropped; a key the
source did not search is left to the sampler. The console says what was clipped or dropped.

The seeds run first, as ordinary trials of the new search (`searcher.PrunedAwareOptunaSearch`
enqueues them); their old scores are never told to the sampler. Everything here runs before Ray
starts: a folder without a search, a search without a finished trial, or a space with no key in
common is a `ConfigError` (exit status 2).
Tested in `tests/search/study/test_warm_start.py`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from atsuko.errors import ConfigError
from search import layout
from search.runtime.storage import Storage
from search.study.space import Param, Space

FLAG = "--warm-start"
NEAR = 0.05  # numbers closer than this share of their range (log range for log scales) match


@dataclass(frozen=True)
class Candidate:
    """One COMPLETE trial of a source search."""

    source: str  # the source's location (an absolute folder or a URI)
    trial_id: str
    score: float  # its validation selection score in the source search
    params: dict[str, Any]

    @property
    def origin(self) -> str:
        return f"{self.source}:{self.trial_id}"


@dataclass(frozen=True)
class Seed:
    """A configuration the new search runs first."""

    params: dict[str, Any]  # fitted to the new space
    origin: str  # SOURCE:TRIAL_ID
    score: float
    metric: str  # the source's selection metric


@dataclass
class Source:
    """A source search: its ranked candidates and what its selection metric is."""

    location: str
    metric: str
    mode: str
    searched: tuple[str, ...]  # the keys its trials sampled
    ranked: list[Candidate] = field(default_factory=list)
    sampler: tuple[str, int] | None = None  # its --sampler and --seed


@dataclass
class WarmStart:
    seeds: list[Seed]
    notes: list[str]

    def pairs(self) -> list[tuple[dict[str, Any], str]]:
        """(parameters, origin) per seed, as the searcher takes them."""
        return [(s.params, s.origin) for s in self.seeds]


def read_source(location: str) -> Source:
    """The COMPLETE trials of the search at `location`, best first by its own score."""
    from search.study.trials import load

    store = Storage(location, flag=FLAG).fetch()
    where = store.location
    folder = store.local_dir
    if not (folder / layout.SETTINGS).is_file():
        raise ConfigError(
            f"{FLAG} {location}: no search there (no {layout.SETTINGS}); expected the --out "
            "folder of a search"
        )
    data = load(folder)
    done = data.complete if data is not None else []
    if not done:
        raise ConfigError(
            f"{FLAG} {location}: that search has no finished (COMPLETE) trial to start from"
        )
    sign = 1.0 if data.mode == "min" else -1.0
    done = sorted(done, key=lambda t: sign * t.score)
    ranked = [Candidate(where, t.trial_id, float(t.score), dict(t.params)) for t in done]
    searched = tuple(sorted({k for t in data.trials for k in t.params} | set(data.kinds)))
    return Source(where, data.metric, data.mode, searched, ranked, _sampler(folder))


def _sampler(folder: Any) -> tuple[str, int] | None:
    """The source's --sampler and --seed, from its saved settings (None if unreadable)."""
    try:
        doc = json.loads((folder / layout.SETTINGS).read_text())
        return str(doc["sampler"]), int(doc["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def fit_value(param: Param, value: Any) -> tuple[Any, str | None]:
    """`value` in `param`'s distribution: (value, None), (changed value, 'clipped'), or
    (None, 'dropped') when no value of the distribution stands for it."""
    if param.kind == "categorical":
        for choice in param.choices:
            same_kind = isinstance(choice, bool) == isinstance(value, bool)
            if (choice == value and same_kind) or str(choice) == str(value):
                return choice, None
        return None, "dropped"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, "dropped"
    low, high = param.low, param.high
    fitted = min(max(float(value), float(low)), float(high))
    if param.step:
        fitted = low + round((fitted - low) / param.step) * param.step
        fitted = min(max(fitted, low), high)
    if param.kind == "int":
        fitted = int(round(fitted))
    changed = not math.isclose(float(fitted), float(value), rel_tol=1e-12, abs_tol=0.0)
    return fitted, ("clipped" if changed else None)


def fit(params: dict[str, Any], space: Space) -> tuple[dict[str, Any], list[str], list[str]]:
    """`params` restricted to `space`: (fitted, notes on changed values, keys not in space)."""
    by_name = {p.name: p for p in space.params}
    fitted: dict[str, Any] = {}
    notes: list[str] = []
    missing: list[str] = []
    for name, value in params.items():
        param = by_name.get(name)
        if param is None:
            missing.append(name)
            continue
        new, change = fit_value(param, value)
        if change == "dropped":
            offered = ", ".join(map(str, param.choices)) if param.choices else "numbers"
            notes.append(f"{name}={value!r} dropped (this space offers {offered})")
        elif change == "clipped":
            notes.append(f"{name} {value:g} clipped to {new:g} ([{param.low:g}, {param.high:g}])")
        if new is not None:
            fitted[name] = new
    return fitted, notes, missing


def _position(param: Param, value: float) -> float:
    """Where `value` lies in the parameter's range, 0..1 (log scale where the space says so)."""
    low, high, v = float(param.low), float(param.high), float(value)
    if param.log:
        low, high, v = math.log(low), math.log(high), math.log(v)
    return 0.0 if high == low else (v - low) / (high - low)


def near(a: dict[str, Any], b: dict[str, Any], space: Space) -> bool:
    """The same keys and categorical values, and every number within NEAR of its range."""
    if set(a) != set(b):
        return False
    for param in space.params:
        if param.name not in a:
            continue
        x, y = a[param.name], b[param.name]
        if param.kind == "categorical":
            if x != y:
                return False
        elif abs(_position(param, x) - _position(param, y)) > NEAR:
            return False
    return True


def choose(sources: list[Source], k: int, space: Space) -> tuple[list[Seed], list[str]]:
    """Up to `k` seeds: each source's next best in turn, none near one already taken."""
    queues = [list(s.ranked) for s in sources]
    metric = {s.location: s.metric for s in sources}
    seeds: list[Seed] = []
    notes: list[str] = []
    skipped = empty = 0
    while len(seeds) < k and any(queues):
        for queue in queues:
            if not queue or len(seeds) >= k:
                continue
            cand = queue.pop(0)
            params, changes, _ = fit(cand.params, space)
            if params and any(near(params, s.params, space) for s in seeds):
                skipped += 1
                continue
            notes += [f"  trial {cand.trial_id}: {c}" for c in changes]
            if not params:
                empty += 1
                continue
            seeds.append(Seed(params, cand.origin, cand.score, metric[cand.source]))
    if skipped:
        notes.append(f"  {skipped} more trial(s) skipped: near a configuration already taken")
    if empty:
        notes.append(f"  {empty} trial(s) skipped: none of their values fits this space")
    return seeds, notes


def plan(
    locations: list[str],
    k: int,
    space: Space,
    num_samples: int,
    sampler: tuple[str, int] | None = None,
) -> WarmStart:
    """Read every source and choose the seeds; every bad input is a ConfigError here.
    `sampler`: this search's (--sampler, --seed), to warn when a source shares them."""
    sources = [read_source(location) for location in locations]
    names = set(space.names)
    notes: list[str] = []
    for source in sources:
        common = names & set(source.searched)
        if not common:
            raise ConfigError(
                f"{FLAG} {source.location}: its space ({', '.join(source.searched)}) has no key "
                f"in common with this search's ({', '.join(space.names)})"
            )
        left = sorted(set(source.searched) - names)
        if left:
            pinned = [n for n in left if n in space.pinned]
            reason = f" ({', '.join(pinned)} pinned by --set)" if pinned else ""
            notes.append(f"  from {source.location}, not in this space{reason}: {', '.join(left)}")
        if sampler is not None and source.sampler == sampler:
            notes.append(
                f"  note: {source.location} ran with the same --sampler {sampler[0]} --seed "
                f"{sampler[1]}: over the same space, this search's first random draws repeat "
                "its first trials; another --seed explores elsewhere"
            )
        unseen = sorted(names - set(source.searched))
        if unseen:
            notes.append(
                f"  not searched by {source.location} (left to the sampler): {', '.join(unseen)}"
            )
    if k > num_samples:
        notes.append(
            f"  --warm-start-k {k} is above --num-samples {num_samples}: seeding {num_samples}"
        )
        k = num_samples
    seeds, chosen = choose(sources, k, space)
    return WarmStart(seeds, notes + chosen)


def describe(warm: WarmStart) -> str:
    """What the console says before the search starts."""
    if not warm.seeds:
        lines = ["Warm start: no earlier configuration fits this space; the search starts cold"]
    else:
        lines = [f"Warm start: {len(warm.seeds)} configuration(s) run first, as ordinary trials:"]
    for seed in warm.seeds:
        lines.append(f"  {seed.origin} (valid {seed.metric} {seed.score:.4f} there)")
    if warm.notes:
        lines.append("Fitted to this search's space:")
        lines += warm.notes
    return "\n".join(lines)
