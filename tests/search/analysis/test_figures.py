"""The report's figures, checked on their matplotlib objects: axes, twins, markers, scales."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from report_fixtures import write_sweep

from search.analysis import figures
from search.sweep.curves import read_curves, read_plan


@pytest.fixture
def sweep(tmp_path):
    write_sweep(tmp_path)  # mosi + mosei, num_bands (int) and tau_mod (log), 3 seeds
    return read_curves(tmp_path / "sensitivity" / "curves.csv"), read_plan(tmp_path)


def _stars(ax) -> list[Line2D]:
    return [ln for ln in ax.get_lines() if ln.get_marker() == "*" and len(ln.get_xdata()) == 1]


def test_two_datasets_get_twin_y_axes_left_and_right(sweep):
    curves, plan = sweep
    fig = figures.sensitivity_figure(curves, plan, "tau_mod")
    assert len(fig.axes) == 2
    left, right = fig.axes
    assert left.get_shared_x_axes().joined(left, right)  # twinx: one x-axis, two y-axes
    assert left.yaxis.get_label_position() == "left"
    assert right.yaxis.get_label_position() == "right"
    assert left.get_ylabel().startswith("MOSI") and right.get_ylabel().startswith("MOSEI")
    assert "Mult_acc_7" in left.get_ylabel()


def test_anchor_is_starred_at_its_mean_and_log_params_get_a_log_axis(sweep):
    curves, plan = sweep
    fig = figures.sensitivity_figure(curves, plan, "tau_mod")
    left, right = fig.axes
    assert left.get_xscale() == "log"
    for ax, ds in ((left, "mosi"), (right, "mosei")):
        (star,) = _stars(ax)
        assert star.get_xdata()[0] == pytest.approx(1.0)  # the default tau_mod
        at_anchor = [
            r["valid/Mult_acc_7"]
            for r in curves
            if r["dataset"] == ds and r["parameter"] == "tau_mod" and r["anchor"]
        ]
        assert len(at_anchor) == 3
        assert star.get_ydata()[0] == pytest.approx(np.mean(at_anchor))
        # mean line over every value, and a ±std band
        (line,) = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
        assert len(line.get_xdata()) == len(plan["params"][1]["values"])
        assert any(isinstance(c, PolyCollection) for c in ax.collections)


def test_integer_params_stay_linear_with_integer_ticks(sweep):
    curves, plan = sweep
    fig = figures.sensitivity_figure(curves, plan, "num_bands")
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert list(ax.get_xticks()) == [1, 2, 3]
    (star,) = _stars(ax)
    assert star.get_xdata()[0] == 3  # the default num_bands


def test_one_dataset_has_one_y_axis(tmp_path):
    write_sweep(tmp_path, datasets=("mosei",))
    curves, plan = read_curves(tmp_path / "sensitivity" / "curves.csv"), read_plan(tmp_path)
    fig = figures.sensitivity_figure(curves, plan, "tau_mod")
    assert len(fig.axes) == 1
    assert len(_stars(fig.axes[0])) == 1


def test_combined_figure_has_every_parameter(sweep):
    curves, plan = sweep
    fig = figures.sensitivity_grid(curves, plan)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["num_bands", "tau_mod"]
    assert len(fig.axes) == 4  # each parameter: an axis and its twin
    assert sum(len(_stars(ax)) for ax in fig.axes) == 4  # one star per dataset and parameter


def test_missing_points_leave_gaps_not_errors(tmp_path):
    write_sweep(tmp_path, drop=5)
    curves, plan = read_curves(tmp_path / "sensitivity" / "curves.csv"), read_plan(tmp_path)
    fig = figures.sensitivity_grid(curves, plan)
    assert fig.axes


def test_importance_bars_one_per_parameter():
    values = {"lr": 0.6, "tau_mod": 0.3, "num_bands": 0.1}
    fig = figures.importance_figure(values)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 3
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "lr"  # most important on top
    assert max(b.get_width() for b in bars) == pytest.approx(0.6)


def test_history_best_so_far_never_gets_worse():
    hist = {
        "trial": [1, 2, 3, 4],
        "epochs": [2, 3, 5, 7],
        "score": [0.9, 1.2, 0.7, 0.8],
        "best": [0.9, 0.9, 0.7, 0.7],
        "state": ["COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"],
        "metric": "MAE",
        "mode": "min",
    }
    fig = figures.history_figure(hist)
    assert [ax.get_xlabel() for ax in fig.axes] == ["trials finished", "epochs spent"]
    for ax in fig.axes:
        (step,) = [ln for ln in ax.get_lines() if ln.get_label() == "best so far"]
        ys = np.asarray(step.get_ydata(), dtype=float)
        assert np.all(np.diff(ys) <= 0)
    assert list(fig.axes[1].get_lines()[0].get_xdata()) == [2, 3, 5, 7]


def test_router_band_and_tsne_figures():
    w = np.full((5, 3), 1 / 3)
    fig = figures.router_weights_figure(w, w, ["audio", "text", "vision"])
    assert [ax.get_title() for ax in fig.axes] == ["with MCM", "without MCM"]
    assert all(len(ax.patches) == 15 for ax in fig.axes)  # samples x modalities, stacked
    fig = figures.band_weights_figure({"text": [0.6, 0.3, 0.1]}, {"text": 0})
    assert len(fig.axes[0].patches) == 3
    coords = {k: np.random.default_rng(0).normal(size=(20, 2)) for k in ("full", "baseline")}
    fig = figures.tsne_figure(coords, np.linspace(-3, 3, 20))
    scatters = [c for ax in fig.axes for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatters) == 2
    assert any(ax.get_ylabel() == "label intensity" for ax in fig.axes)  # the colour bar


def test_save_writes_a_png(tmp_path):
    fig = figures.importance_figure({"lr": 1.0})
    path = figures.save(fig, tmp_path / "x" / "imp.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
