"""The report's figures (matplotlib, Agg): sensitivity curves, importance, history, diagnostics.

Every function returns a `matplotlib.figure.Figure` built without pyplot (no global state), so
tests can inspect its axes, markers and scales; `save(fig, path)` writes a PNG.

Sensitivity (the paper's Figure 3): one line per dataset, the mean over seeds with a ±std band,
the anchor marked with a star, a log x-axis for log-scale parameters; with two datasets the
second gets its own y-axis on the right (`twinx`), as in the paper.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

COLORS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange")
STAR = dict(marker="*", markersize=16, markeredgecolor="black", linestyle="none", zorder=5)


def save(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def metric_for(plan: dict[str, Any], dataset: str, metric: str | None) -> str:
    """The metric a sweep's curves show for `dataset`: the one asked for, else the plan's."""
    if metric:
        return metric
    return (plan.get("metric") or {}).get(dataset) or "Mult_acc_7"


def _stats(values: list[float]) -> tuple[float, float, int]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, 0
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return float(np.mean(finite)), std, len(finite)


def curve_stats(
    curves: list[dict[str, Any]], plan: dict[str, Any], dataset: str, parameter: str, column: str
) -> list[dict[str, Any]]:
    """Per swept value (plan order): mean, std and count over seeds of `column`."""
    from search.sweep.plan import fmt

    spec = next(p for p in plan["params"] if p["name"] == parameter)
    out = []
    for value in spec["values"]:
        key = fmt(value)
        rows = [
            r
            for r in curves
            if r["dataset"] == dataset and r["parameter"] == parameter and r["value"] == key
        ]
        mean, std, n = _stats([r.get(column, math.nan) for r in rows])
        out.append({"value": value, "label": key, "mean": mean, "std": std, "n": n})
    return out


def _x(spec: dict[str, Any], value: Any, index: int) -> float:
    return float(index) if spec["kind"] == "categorical" else float(value)


def draw_sensitivity(
    ax: Any,
    curves: list[dict[str, Any]],
    plan: dict[str, Any],
    parameter: str,
    metric: str | None = None,
    split: str = "valid",
    legend: bool = True,
) -> list[Any]:
    """Draw one parameter's curves on `ax` (and a twin for a second dataset); returns the axes."""
    spec = next(p for p in plan["params"] if p["name"] == parameter)
    datasets = list(plan["datasets"])
    axes = [ax]
    if len(datasets) == 2:
        axes.append(ax.twinx())
    handles = []
    for i, ds in enumerate(datasets):
        target = axes[i] if len(axes) > 1 else ax
        color = COLORS[i % len(COLORS)]
        name = metric_for(plan, ds, metric)
        stats = curve_stats(curves, plan, ds, parameter, f"{split}/{name}")
        xs = np.array([_x(spec, s["value"], j) for j, s in enumerate(stats)])
        mean = np.array([s["mean"] for s in stats])
        std = np.array([s["std"] for s in stats])
        ok = np.isfinite(mean)
        (line,) = target.plot(
            xs[ok], mean[ok], color=color, marker="o", markersize=4, label=f"{ds.upper()} {name}"
        )
        handles.append(line)
        target.fill_between(
            xs[ok], (mean - std)[ok], (mean + std)[ok], color=color, alpha=0.2, linewidth=0
        )
        anchor = (plan.get("anchor") or {}).get(ds, {}).get(parameter)
        for j, s in enumerate(stats):
            if anchor is not None and same_value(s["value"], anchor) and math.isfinite(s["mean"]):
                target.plot([xs[j]], [s["mean"]], color=color, label="_anchor", **STAR)
        if len(axes) > 1:
            target.set_ylabel(f"{ds.upper()} {name}", color=color)
            target.tick_params(axis="y", labelcolor=color)
        elif len(datasets) == 1:
            target.set_ylabel(f"{ds.upper()} {name} ({split})")
    if len(datasets) > 2:
        ax.set_ylabel(f"{split} metric")
    if spec["kind"] == "categorical":
        ax.set_xticks(range(len(spec["values"])))
        ax.set_xticklabels([str(v) for v in spec["values"]])
    elif spec.get("log"):
        ax.set_xscale("log")
    elif spec["kind"] == "int":
        ax.set_xticks([int(v) for v in spec["values"]])
    ax.set_xlabel(parameter + (" (log scale)" if spec.get("log") else ""))
    ax.grid(True, alpha=0.3)
    if legend:
        star = ax.plot([], [], color="gray", label="anchor", **STAR)[0]
        axes[-1].legend(handles=handles + [star], loc="best", fontsize=8)  # on top of the twin
    return axes


def same_value(a: Any, b: Any) -> bool:
    """Whether a swept value is the anchor's (`search.sweep.plan.same`, imported late)."""
    from search.sweep.plan import same

    return same(a, b)


def sensitivity_figure(
    curves: list[dict[str, Any]],
    plan: dict[str, Any],
    parameter: str,
    metric: str | None = None,
    split: str = "valid",
) -> Figure:
    """One parameter: mean ± std over seeds per dataset, the anchor starred."""
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    draw_sensitivity(ax, curves, plan, parameter, metric, split)
    seeds = len(plan.get("seeds") or [])
    ax.set_title(
        f"Sensitivity to {parameter} around {plan.get('around', 'default')} ({seeds} seeds)"
    )
    fig.tight_layout()
    return fig


def sensitivity_grid(
    curves: list[dict[str, Any]],
    plan: dict[str, Any],
    metric: str | None = None,
    split: str = "valid",
) -> Figure:
    """Every swept parameter in one figure (as the paper's Figure 3)."""
    names = [p["name"] for p in plan["params"]]
    cols = min(len(names), 2 if len(names) <= 4 else 3)
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(5.2 * cols, 3.6 * rows))
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        draw_sensitivity(ax, curves, plan, name, metric, split, legend=(i == 0))
        ax.set_title(name)
    fig.suptitle(f"One-at-a-time sensitivity around {plan.get('around', 'default')} ({split})")
    fig.tight_layout()
    return fig


def importance_figure(values: dict[str, float], title: str = "Parameter importance") -> Figure:
    """Horizontal bars, most important on top."""
    items = sorted(values.items(), key=lambda kv: kv[1])
    fig = Figure(figsize=(6.0, 0.4 * max(len(items), 2) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    ax.set_xlabel("importance (sums to 1)")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def history_figure(hist: dict[str, Any]) -> Figure:
    """Best-so-far validation score against trials finished and against epochs spent."""
    fig = Figure(figsize=(10.0, 3.8))
    metric = hist.get("metric", "score")
    for i, (key, label) in enumerate((("trial", "trials finished"), ("epochs", "epochs spent"))):
        ax = fig.add_subplot(1, 2, i + 1)
        xs = hist.get(key) or []
        scores = [np.nan if v is None else v for v in hist.get("score") or []]
        best = [np.nan if v is None else v for v in hist.get("best") or []]
        complete = [s == "COMPLETE" for s in hist.get("state") or []]
        xa, sa = np.asarray(xs, dtype=float), np.asarray(scores, dtype=float)
        mask = np.asarray(complete, dtype=bool) if complete else np.zeros(len(xa), bool)
        warm = np.asarray([bool(w) for w in hist.get("warm_start") or []], dtype=bool)
        warm = warm if len(warm) == len(xa) else np.zeros(len(xa), bool)
        if len(xa):
            plain = mask & ~warm
            ax.scatter(xa[plain], sa[plain], s=14, color="gray", alpha=0.6, label="completed trial")
            other = ~mask & ~warm
            ax.scatter(xa[other], sa[other], s=14, marker="x", color="silver", label="pruned/other")
            if warm.any():
                ax.scatter(
                    xa[warm],
                    sa[warm],
                    s=60,
                    marker="*",
                    color="tab:orange",
                    label="warm-started trial",
                    zorder=3,
                )
            ax.step(xa, best, where="post", color="tab:blue", linewidth=2, label="best so far")
        ax.set_xlabel(label)
        ax.set_ylabel(f"valid {metric}")
        ax.grid(True, alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8)
    fig.suptitle(f"Search history ({hist.get('mode', '')} {metric})")
    fig.tight_layout()
    return fig


def marginals_figure(marg: dict[str, dict[str, Any]], metric: str = "score") -> Figure:
    """Each parameter's completed trials (points) and binned mean (line): where the search went.

    Parameters that took a single value in every completed trial are left out."""
    names = [k for k, m in marg.items() if len({str(x) for x in m["x"]}) > 1] or list(marg)[:1]
    cols = min(max(len(names), 1), 4)
    rows = max(1, math.ceil(len(names) / cols))
    fig = Figure(figsize=(3.6 * cols, 3.0 * rows))
    for i, name in enumerate(names):
        m = marg[name]
        ax = fig.add_subplot(rows, cols, i + 1)
        b = m.get("bins") or {}
        if m["kind"] == "categorical":
            cats = [str(c) for c in b.get("x", [])]
            pos = {c: j for j, c in enumerate(cats)}
            ax.scatter([pos[str(x)] for x in m["x"]], m["y"], s=12, color="gray", alpha=0.6)
            ax.errorbar(
                range(len(cats)), b.get("mean", []), yerr=b.get("std", []), color="tab:blue"
            )
            ax.set_xticks(range(len(cats)))
            ax.set_xticklabels(cats)
        else:
            ax.scatter(m["x"], m["y"], s=12, color="gray", alpha=0.6)
            ax.plot(b.get("x", []), b.get("mean", []), color="tab:blue", marker="o", markersize=3)
            if m.get("log"):
                ax.set_xscale("log")
                xs = [float(x) for x in m["x"] if float(x) > 0]
                if xs and max(xs) / min(xs) >= 10:  # majors exist: no crowded minor labels
                    ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(name)
        ax.set_ylabel(f"valid {metric}")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Marginals of the sampled trials (where the sampler went)")
    fig.tight_layout()
    return fig


def router_weights_figure(
    w_with: np.ndarray, w_without: np.ndarray, modalities: list[str], ids: list[int] | None = None
) -> Figure:
    """Modality weights w of the same test samples, with and without MCM (paper Figure 5)."""
    fig = Figure(figsize=(11.0, 0.28 * max(len(w_with), 4) + 1.6))
    panels = ((w_with, "with MCM"), (w_without, "without MCM"))
    for i, (w, title) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        w = np.asarray(w, dtype=float)
        left = np.zeros(len(w))
        rows = np.arange(len(w))
        for j, m in enumerate(modalities):
            ax.barh(rows, w[:, j], left=left, color=COLORS[j % len(COLORS)], label=m)
            left += w[:, j]
        ax.set_xlim(0, 1)
        ax.set_yticks(rows)
        ax.set_yticklabels([str(x) for x in (ids if ids is not None else rows)], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("modality weight w")
        ax.set_title(title)
        if i == 0:
            ax.set_ylabel("test sample")
            ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def band_weights_figure(
    alpha: dict[str, list[float]], planted: dict[str, int] | None = None
) -> Figure:
    """Mean band weight per modality; the planted band (synthetic data) is outlined."""
    fig = Figure(figsize=(6.5, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    mods = list(alpha)
    k = max((len(v) for v in alpha.values()), default=0)
    width = 0.8 / max(k, 1)
    handles = []
    for b in range(k):
        xs = np.arange(len(mods)) + (b - (k - 1) / 2) * width
        ys = [alpha[m][b] if b < len(alpha[m]) else 0.0 for m in mods]
        edges = ["black" if planted is not None and planted.get(m) == b else "none" for m in mods]
        color = COLORS[b % len(COLORS)]
        ax.bar(xs, ys, width=width, color=color, edgecolor=edges, linewidth=2)
        handles.append(Patch(facecolor=color, label=f"band {b}"))
    ax.set_xticks(range(len(mods)))
    ax.set_xticklabels(mods)
    ax.set_ylabel("mean band weight (test)")
    ax.set_ylim(0, 1)
    title = "Band weights per modality"
    if planted:
        title += " (outlined: planted band)"
    ax.set_title(title)
    ax.legend(handles=handles, fontsize=8)
    fig.tight_layout()
    return fig


def tsne_figure(
    coords: dict[str, np.ndarray], labels: np.ndarray, task: str = "regression"
) -> Figure:
    """t-SNE of the fused features z per ablation variant, coloured by label (paper Figure 4)."""
    names = list(coords)
    cols = 2 if len(names) > 1 else 1
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(5.0 * cols, 4.4 * rows))
    cmap = "coolwarm" if task == "regression" else "tab20"
    scatter = None
    axes = []
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        xy = np.asarray(coords[name])
        scatter = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap=cmap, s=10, alpha=0.85)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
        axes.append(ax)
    if scatter is not None:
        label = "label intensity" if task == "regression" else "class"
        fig.colorbar(scatter, ax=axes, shrink=0.8, label=label)
    fig.suptitle("t-SNE of fused features z (test split)")
    return fig
