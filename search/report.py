"""`python search/report.py OUT`: the search's report, rebuilt from whatever OUT holds.

Writes `OUT/report.html` (self-contained: every figure is embedded as a base64 PNG data URI)
and `OUT/report.md` (figures as PNG files in `OUT/figures/`), from a finished search or an
interrupted one: each missing piece is skipped with a note. Sections: best configuration,
validation and test results (mean ± std over seeds), search history, parameter importance and
marginals (recomputed into `importance.json`), one-at-a-time sensitivity, router diagnostics,
and the run's facts (versions, seeds, data file hash, hardware, wall time).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the project, not this folder
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from atsuko.cli import ArgumentParser, run_cli  # noqa: E402
from atsuko.errors import ConfigError  # noqa: E402

HTML_FILE = "report.html"
MD_FILE = "report.md"
FIG_DIR = "figures"
KNOWN = (
    "summary.json",
    "trials.csv",
    "study.db",
    "best_config.yaml",
    "search.json",
    "sensitivity/plan.json",
    "sensitivity/curves.csv",
    "diagnostics/diagnostics.json",
)
PACKAGES = ("torch", "ray", "optuna", "numpy", "scikit-learn", "matplotlib", "tensorboardX")


@dataclass
class Section:
    title: str
    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)

    def text(self, body: str) -> None:
        self.html.append(f"<p>{html.escape(body)}</p>")
        self.md.append(body + "\n")

    def note(self, body: str) -> None:
        self.html.append(f'<p class="note">{html.escape(body)}</p>')
        self.md.append(f"> {body}\n")

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>"
            for row in rows
        )
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        md = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
        md += ["| " + " | ".join(_cell(c).replace("|", "\\|") for c in row) + " |" for row in rows]
        self.md.append("\n".join(md) + "\n")

    def code(self, body: str, summary: str | None = None) -> None:
        block = f"<pre>{html.escape(body)}</pre>"
        if summary:
            block = f"<details><summary>{html.escape(summary)}</summary>{block}</details>"
        self.html.append(block)
        self.md.append(f"```\n{body.rstrip()}\n```\n")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return "–" if value is None or value == "" else str(value)


def _pm(stats: dict[str, Any] | None) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    return f"{stats['mean']:.4f} ± {stats.get('std', 0.0):.4f}"


class Figures:
    """Saves each figure as a PNG for the markdown and embeds the same bytes in the HTML."""

    def __init__(self, out: Path):
        self.folder = out / FIG_DIR
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, section: Section, fig: Any, name: str, caption: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        data = buf.getvalue()
        (self.folder / f"{name}.png").write_bytes(data)
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        alt = html.escape(caption)
        section.html.append(
            f'<figure><img src="{uri}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'
        )
        section.md.append(f"![{caption}]({FIG_DIR}/{name}.png)\n")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# sections


def best_section(out: Path, summary: dict | None) -> Section:
    s = Section("Best configuration")
    best = (summary or {}).get("best_trial")
    if best:
        s.text(
            f"Trial {best['trial_id']}: validation {summary['select']['metric']} "
            f"{best['score']:.4f} at epoch {best['best_epoch']} of {best['epochs']} "
            f"(selected on the validation split only; train.seed {best.get('seed')})."
        )
        s.table(["parameter", "value"], [[k, v] for k, v in (best.get("params") or {}).items()])
    path = out / "best_config.yaml"
    if path.is_file():
        s.code(path.read_text(), "best_config.yaml (complete configuration)")
        s.text(f"Reproduce: python -m atsuko.train --config {path.name} --seed 1111")
    elif not best:
        s.note("No best configuration yet: the search has not finished (no summary.json).")
    return s


def results_section(summary: dict | None, trials: Any) -> Section:
    s = Section("Validation and test results")
    final = (summary or {}).get("final") or {}
    if final.get("valid") or final.get("test"):
        metrics = sorted(set(final.get("valid") or {}) | set(final.get("test") or {}))
        rows = [
            [m, _pm((final.get("valid") or {}).get(m)), _pm((final.get("test") or {}).get(m))]
            for m in metrics
        ]
        s.text(
            f"The best configuration re-trained with seeds {final.get('seeds')}: mean ± standard "
            "deviation over seeds; the test split scored once per seed."
        )
        s.table(["metric", "validation", "test"], rows)
        errors = [r for r in final.get("runs") or [] if "error" in r]
        for r in errors:
            s.note(f"seed {r.get('seed')} failed: {r['error']}")
        return s
    for r in [r for r in final.get("runs") or [] if "error" in r]:  # every re-run failed
        s.note(f"seed {r.get('seed')} failed: {r['error']}")
    s.note(
        "No seed re-runs in summary.json (the search is unfinished or ran with --final-seeds 0): "
        "no test results. Best validation scores of the completed trials so far:"
    )
    if trials is not None and trials.complete:
        sign = 1.0 if trials.mode == "min" else -1.0
        top = sorted(trials.complete, key=lambda t: sign * t.score)[:5]
        s.table(
            ["trial", f"valid {trials.metric}", "epochs"],
            [[t.trial_id, t.score, t.epochs] for t in top],
        )
    else:
        s.note("No trial has completed yet.")
    return s


def history_section(doc: dict | None, figs: Figures) -> Section:
    from search import figures

    s = Section("Search history")
    hist = (doc or {}).get("history")
    if not hist or not hist.get("trial"):
        s.note("No finished trials to plot.")
        return s
    counts = ", ".join(f"{k} {v}" for k, v in (doc.get("trials") or {}).items())
    s.text(f"Trials: {counts}. Best-so-far validation {hist['metric']} ({hist['mode']}).")
    figs.add(s, figures.history_figure(hist), "history", "Best-so-far score vs trials and epochs")
    return s


def importance_section(doc: dict | None, figs: Figures) -> Section:
    from search import figures
    from search.importance import CLUSTER_NOTE

    s = Section("Parameter importance")
    s.note(CLUSTER_NOTE)
    if not doc:
        s.note("No trials.csv or study.db: nothing to analyse.")
        return s
    s.text(
        f"{doc['evaluator']} over {doc['n_complete']} completed trials (from {doc['source']}), "
        f"on the validation {doc['metric']} the search selected on."
    )
    for n in doc.get("notes") or []:
        s.note(n)
    values = doc.get("importance") or {}
    if values:
        figs.add(
            s,
            figures.importance_figure(values, f"Importance ({doc['method']})"),
            "importance",
            "Parameter importance",
        )
        s.table(["parameter", "importance"], [[k, v] for k, v in values.items()])
    if doc.get("marginals"):
        fig = figures.marginals_figure(doc["marginals"], doc["metric"])
        figs.add(s, fig, "marginals", "Marginal curves of the completed trials")
    return s


def _plan_from_curves(curves: list[dict[str, Any]]) -> dict[str, Any]:
    """A minimal plan when only curves.csv survived (kinds guessed from the values)."""
    from search.importance import _scalar

    datasets = list(dict.fromkeys(r["dataset"] for r in curves))
    params, anchors = [], {ds: {} for ds in datasets}
    for name in dict.fromkeys(r["parameter"] for r in curves):
        rows = [r for r in curves if r["parameter"] == name]
        values = list(dict.fromkeys(_scalar(r["value"]) for r in rows))
        numeric = all(isinstance(v, int | float) for v in values)
        kind = (
            ("int" if all(isinstance(v, int) for v in values) else "float")
            if numeric
            else "categorical"
        )
        if numeric:
            values.sort()
        log = numeric and min(values) > 0 and max(values) / min(values) >= 50
        params.append({"name": name, "kind": kind, "log": log, "values": values})
        for r in rows:
            if r["anchor"]:
                anchors[r["dataset"]][name] = _scalar(r["value"])
    seeds = sorted({r["seed"] for r in curves})
    return {
        "datasets": datasets,
        "params": params,
        "anchor": anchors,
        "seeds": seeds,
        "around": "?",
    }


def sensitivity_section(out: Path, figs: Figures, metric: str | None) -> Section:
    from search import figures, sensitivity

    s = Section("Sensitivity (one parameter at a time)")
    folder = out / sensitivity.SENS_DIR
    plan = sensitivity.read_plan(out)
    curves_path = folder / sensitivity.CURVES_FILE
    if not curves_path.is_file():
        s.note(
            "No sensitivity/curves.csv: no sweep has run here"
            + (" (a sweep is planned: rerun it with the same flags to resume)." if plan else ".")
        )
        return s
    curves = sensitivity.read_curves(curves_path)
    if plan is None:
        s.note(
            "sensitivity/plan.json is missing: parameter scales and anchors are guessed "
            "from curves.csv."
        )
        plan = _plan_from_curves(curves)
    if not curves or not plan.get("params"):
        s.note("curves.csv holds no finished point yet.")
        return s
    wanted = len(plan.get("points") or []) or len(curves)
    done = sum(r["state"] in ("COMPLETE",) for r in curves)
    sources = plan.get("anchor_source") or {}
    shown = ", ".join(f"{ds}: {_short(out, src)}" for ds, src in sources.items()) or "-"
    s.text(
        f"Each parameter swept over its values with every other parameter at the anchor "
        f"({plan.get('around')}; {shown}), seeds "
        f"{plan.get('seeds')}; lines are the mean over seeds, bands ±1 std, stars the anchor. "
        f"{done} of {wanted} points finished."
    )
    for n in plan.get("notes") or []:
        s.note(n)
    for label, error in (plan.get("test_failures") or {}).items():
        s.note(f"test scoring of {label} failed: {error} (rerun the same command to retry it)")
    metrics = {ds: figures._metric_for(plan, ds, metric) for ds in plan["datasets"]}
    missing = sorted({m for m in metrics.values() if not any(f"valid/{m}" in r for r in curves)})
    if missing:
        s.note(f"curves.csv has no validation {', '.join(missing)}: those curves are empty.")
    figs.add(s, figures.sensitivity_grid(curves, plan, metric), "sensitivity_all", "All parameters")
    has_test = any(k.startswith("test/") for r in curves for k in r)
    for p in plan["params"]:
        name = p["name"]
        fig = figures.sensitivity_figure(curves, plan, name, metric)
        figs.add(s, fig, f"sensitivity_{name}", f"Sensitivity to {name}")
        headers = [name] + [f"{ds} valid {metrics[ds]}" for ds in plan["datasets"]]
        if has_test:
            headers += [f"{ds} test {metrics[ds]}" for ds in plan["datasets"]]
        splits = ["valid"] + (["test"] if has_test else [])
        columns = [
            figures.curve_stats(curves, plan, ds, name, f"{split}/{metrics[ds]}")
            for split in splits
            for ds in plan["datasets"]
        ]
        rows = []
        for i, value in enumerate(p["values"]):
            anchored = any(
                figures._same(value, (plan.get("anchor") or {}).get(ds, {}).get(name))
                for ds in plan["datasets"]
            )
            label = sensitivity.fmt(value) + (" ★" if anchored else "")
            cells = []
            for col in columns:
                st = col[i]
                cells.append(
                    f"{st['mean']:.4f} ± {st['std']:.4f} (n={st['n']})" if st["n"] else "–"
                )
            rows.append([label, *cells])
        s.table(headers, rows)
    if has_test:
        fig = figures.sensitivity_grid(curves, plan, metric, split="test")
        figs.add(
            s, fig, "sensitivity_all_test", "All parameters, test split (scored once per point)"
        )
    return s


def _short(out: Path, path: str) -> str:
    """A path inside OUT relative to it (reports are moved around with their folder)."""
    try:
        return str(Path(path).resolve().relative_to(out.resolve()))
    except ValueError:
        return str(path)


def diagnostics_section(out: Path, figs: Figures) -> Section:
    from search import figures
    from search.diagnostics import load_diagnostics

    s = Section("Router diagnostics")
    loaded = load_diagnostics(out)
    if loaded is None:
        s.note("No diagnostics/ (run the diagnostics for the best configuration to add them).")
        return s
    doc, arrays = loaded
    mods = doc["modalities"]
    s.text(
        f"The configuration {Path(doc['config']).name} on {doc['dataset']}, trained "
        f"{doc['epochs']} epochs per variant (train.seed {doc['train_seed']}); test split."
    )
    first = next(iter(doc["variants"].values()), {})
    shown = [
        k
        for k in ("MAE", "Mult_acc_7", "Mult_acc_5", "acc", "f1")
        if k in (first.get("valid") or {})
    ]
    rows = []
    for name, v in doc["variants"].items():
        valid, test = v.get("valid") or {}, v.get("test") or {}
        cells = [f"{valid.get(k, math.nan):.4f} / {test.get(k, math.nan):.4f}" for k in shown[:3]]
        rows.append([name, v["use_sbr"], v["use_mcm"], v["best_epoch"], *cells])
    s.table(
        ["variant", "use_sbr", "use_mcm", "best epoch"] + [f"{k} valid / test" for k in shown[:3]],
        rows,
    )
    agree = doc.get("agreement")
    if agree:
        s.text(
            "Router top modality agrees with the complementarity distribution's top on "
            f"{agree['router_vs_complementarity']:.1%} of test samples with MCM "
            f"({agree['without_mcm_router_vs_complementarity']:.1%} without; chance "
            f"{agree['chance']:.1%})."
        )
    hits = doc.get("planted_hits")
    if hits:
        names = sorted({m for h in hits.values() for m in h})
        s.text("Samples decided by one modality (planted): how often each top-1 names it.")
        s.table(
            ["top-1 of"] + names,
            [[k] + [h.get(m, math.nan) for m in names] for k, h in hits.items()],
        )
    if "w_with_mcm" in arrays:
        ids = [int(i) for i in arrays.get("samples", [])]
        fig = figures.router_weights_figure(
            arrays["w_with_mcm"], arrays["w_without_mcm"], mods, ids
        )
        figs.add(s, fig, "router_weights", "Modality weights w with and without MCM (test samples)")
    if doc.get("band_weights"):
        planted_doc = doc.get("planted") or {}
        k = len(next(iter(doc["band_weights"].values())))
        planted = planted_doc.get("bands") if planted_doc.get("num_bands", k) == k else None
        if planted_doc.get("bands") and planted is None:
            s.note(
                f"The data's signal is planted in {planted_doc.get('num_bands')} bands; this "
                f"model splits {k}, so its bands do not line up with the planted ones."
            )
        fig = figures.band_weights_figure(doc["band_weights"], planted)
        figs.add(s, fig, "band_weights", "Mean band weights per modality")
    coords = {
        k[5:]: v
        for k, v in arrays.items()
        if k.startswith("tsne_") and k != "tsne_labels" and k != "tsne_index"
    }
    if coords and "tsne_labels" in arrays:
        fig = figures.tsne_figure(coords, arrays["tsne_labels"], doc.get("task", "regression"))
        figs.add(s, fig, "tsne", "t-SNE of fused features per ablation variant")
    return s


def _sha_cached(out: Path, path: Path) -> str | None:
    """sha256 of a data file, remembered per (path, size, mtime) in OUT/figures/."""
    from search.sensitivity import sha256_file

    if not path.is_file():
        return None
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    cache_path = out / FIG_DIR / ".sha256.json"
    cache = _read_json(cache_path) or {}
    if key not in cache:
        cache[key] = sha256_file(path)
        cache_path.write_text(json.dumps(cache))
    return cache[key]


def _versions() -> list[list[str]]:
    from importlib.metadata import PackageNotFoundError, version

    rows = [["python", platform.python_version()]]
    for name in PACKAGES:
        try:
            rows.append([name, version(name)])
        except PackageNotFoundError:
            continue
    return rows


def _hardware() -> list[list[str]]:
    rows = [["machine", f"{platform.system()} {platform.machine()}"], ["CPUs", str(os.cpu_count())]]
    try:
        import psutil

        rows.append(["memory", f"{psutil.virtual_memory().total / 2**30:.1f} GiB"])
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            rows.append(["GPUs", ", ".join(names)])
        else:
            rows.append(["GPUs", "none visible to torch"])
    except ImportError:
        pass
    return rows


def _span(start: float, end: float) -> str:
    if not (math.isfinite(start) and math.isfinite(end)) or end < start:
        return "–"
    return f"{end - start:.0f} s ({(end - start) / 60:.1f} min)"


def facts_section(out: Path, summary: dict | None, trials: Any) -> Section:
    from atsuko import config as cfg

    s = Section("Run facts")
    search = _read_json(out / "search.json") or {}
    plan = _read_json(out / "sensitivity" / "plan.json") or {}
    diag = _read_json(out / "diagnostics" / "diagnostics.json") or {}
    seeds = []
    if search:
        seeds.append(["search sampler seed", search.get("seed")])
        seeds.append(
            ["sampler / scheduler", f"{search.get('sampler')} / {search.get('scheduler')}"]
        )
    if summary and summary.get("best_trial"):
        seeds.append(["best trial train.seed", summary["best_trial"].get("seed")])
    if summary and (summary.get("final") or {}).get("seeds"):
        seeds.append(["final re-run seeds", summary["final"]["seeds"]])
    if plan.get("seeds"):
        seeds.append(["sensitivity seeds", plan["seeds"]])
    if diag:
        seeds.append(
            [
                "diagnostics train.seed / sample seed",
                f"{diag.get('train_seed')} / {diag.get('sample_seed')}",
            ]
        )
    if seeds:
        s.table(["seeds", "value"], seeds)
    data_rows = []
    base_path = out / "base_config.yaml"
    for name in ("base_config.yaml", "best_config.yaml"):
        if (out / name).is_file():
            base_path = out / name
            break
    if base_path.is_file():
        try:
            data = cfg.read_yaml(base_path).get("data") or {}
        except ConfigError:
            data = {}
        if data.get("path"):
            p = Path(data["path"]).expanduser()
            data_rows.append(
                ["search data", str(p), _sha_cached(out, p) or "(a folder or missing)"]
            )
        elif data.get("synthetic"):
            data_rows.append(
                [
                    "search data",
                    f"synthetic {data.get('dataset')} (scale {data.get('scale')}, synth_seed "
                    f"{data.get('synth_seed')})",
                    "generated; see the hashes below where recorded",
                ]
            )
    for ds, d in (plan.get("data") or {}).items():
        data_rows.append(
            [f"sensitivity data ({ds})", d.get("source"), d.get("sha256") or "(a folder)"]
        )
    if diag.get("data"):
        data_rows.append(
            [
                "diagnostics data",
                diag["data"].get("source"),
                diag["data"].get("sha256") or "(a folder)",
            ]
        )
    if data_rows:
        s.table(["", "source", "sha256"], data_rows)
    times = []
    if trials is not None and trials.trials:
        starts = [t.started for t in trials.trials if math.isfinite(t.started)]
        ends = [t.finished for t in trials.trials if math.isfinite(t.finished)]
        if starts and ends:
            times.append(
                ["search (first trial start to last report)", _span(min(starts), max(ends))]
            )
        busy = sum(
            t.finished - t.started for t in trials.trials if math.isfinite(t.finished - t.started)
        )
        times.append(["search trial time, summed", f"{busy:.0f} s"])
    if plan.get("wall_seconds"):
        times.append(["sensitivity sweep", f"{float(plan['wall_seconds']):.0f} s"])
    if diag.get("seconds"):
        times.append(["diagnostics", f"{float(diag['seconds']):.0f} s"])
    if times:
        s.table(["wall time", "value"], times)
    if trials is not None:
        nodes = sorted({t.node for t in trials.trials} - {""})
        if nodes:
            s.text(f"Trials ran on {len(nodes)} node(s).")
    s.table(["package", "version (environment that built this report)"], _versions())
    if plan.get("versions"):
        s.table(
            ["package", "version (sensitivity run)"], [[k, v] for k, v in plan["versions"].items()]
        )
    s.table(["hardware (building this report)", ""], _hardware())
    return s


# ---------------------------------------------------------------------------------------------
# the page


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;background:#fff}
h1{border-bottom:3px solid #1f77b4;padding-bottom:.3em}
h2{margin-top:2em;border-bottom:1px solid #ccc;color:#1f4e79}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#eef3f8}
tr:nth-child(even) td{background:#fafafa}
.note{background:#fff8e1;border-left:4px solid #f0ad4e;padding:.5em .8em}
figure{margin:1em 0}
img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
pre{background:#f5f5f5;padding:.8em;overflow:auto;font-size:.85em}
nav a{margin-right:1em}
"""
SCRIPT = """
function atsukoMarkImages() {
  var imgs = document.images, ok = true;
  for (var i = 0; i < imgs.length; i++) {
    if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) { ok = false; }
  }
  document.body.setAttribute('data-images-loaded', ok ? 'true' : 'false');
  document.body.setAttribute('data-image-count', String(imgs.length));
}
window.addEventListener('load', atsukoMarkImages);
"""


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower())


def render_html(title: str, intro: list[str], sections: list[Section]) -> str:
    nav = " ".join(f'<a href="#{_anchor(s.title)}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{_anchor(s.title)}"><h2>{html.escape(s.title)}</h2>'
        + "".join(s.html)
        + "</section>"
        for s in sections
    )
    lead = "".join(f"<p>{html.escape(p)}</p>" for p in intro)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head>"
        f'<body data-images-loaded="pending"><h1>{html.escape(title)}</h1>{lead}'
        f"<nav>{nav}</nav>{body}</body></html>\n"
    )


def render_md(title: str, intro: list[str], sections: list[Section]) -> str:
    parts = [f"# {title}\n", *[p + "\n" for p in intro]]
    for s in sections:
        parts.append(f"## {s.title}\n")
        parts += s.md
    return "\n".join(parts)


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
    from search import importance as imp

    out = check_out(out)
    existing = _read_json(out / imp.IMPORTANCE_FILE) or {}
    method = importance or existing.get("method") or "pedanova"
    if method not in imp.METHODS:
        raise ConfigError(f"--importance {method}: expected one of {', '.join(imp.METHODS)}")
    summary = _read_json(out / "summary.json")
    trials = imp.load(out)
    analysis = None
    if trials is not None:
        analysis = imp.analyse(out, method)
        if analysis is not None:
            (out / imp.IMPORTANCE_FILE).write_text(
                json.dumps(analysis, indent=2, default=imp._json_default) + "\n"
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
    html_path, md_path = out / HTML_FILE, out / MD_FILE
    html_path.write_text(render_html(title, intro, sections))
    md_path.write_text(render_md(title, intro, sections))
    return html_path, md_path


def _dataset_guess(out: Path) -> str | None:
    search = _read_json(out / "search.json") or {}
    if search.get("dataset"):
        return search["dataset"]
    plan = _read_json(out / "sensitivity" / "plan.json") or {}
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
