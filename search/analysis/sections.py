"""The report's sections on a run's results: best configuration, results over seeds, search
history, parameter importance, sensitivity curves and router diagnostics.
Tested in `tests/search/test_report.py`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from search import layout
from search.analysis.page import Figures, Section, pm
from search.study import final


def best_section(out: Path, summary: dict | None) -> Section:
    s = Section("Best configuration")
    best = (summary or {}).get("best_trial")
    choice = (summary or {}).get("choice") or {}
    kept = final.default_kept(choice, summary["select"]["metric"]) if choice else None
    if kept:
        s.note(f"{kept} The search's best trial, for reference:")
    if best:
        s.text(
            f"Trial {best['trial_id']}: validation {summary['select']['metric']} "
            f"{best['score']:.4f} at epoch {best['best_epoch']} of {best['epochs']} "
            f"(selected on the validation split only; train.seed {best.get('seed')})."
        )
        s.table(["parameter", "value"], [[k, v] for k, v in (best.get("params") or {}).items()])
    path = out / layout.BEST_CONFIG
    if path.is_file():
        s.code(path.read_text(), "best_config.yaml (complete configuration)")
        s.text(f"Reproduce: python -m atsuko.train --config {path.name} --seed 1111")
    elif not best:
        s.note("No best configuration yet: the search has not finished (no summary.json).")
    return s


def _choice(s: Section, summary: dict) -> None:
    """How the winner was chosen among the top trials and the default, and the winner against
    the default, each on the seeds every side finished."""
    metric = summary["select"]["metric"]
    cands = summary.get("candidates") or []
    seeds = (summary.get("choice") or {}).get("seeds")
    gain = (summary.get("choice") or {}).get("gain")
    if len(cands) > 1:
        over = f"over the seeds all of them finished, {seeds}" if seeds else "over its own seeds"
        rule = (
            f"; it replaces the default only where its gain, paired seed by seed, exceeds "
            f"{gain['margin']:g} standard error(s) of that gain (here {gain['gain']:.4f}, "
            f"standard error {gain['standard_error']:.4f})"
            if gain
            else ""
        )
        s.text(
            f"The best trial is the one with the best mean validation {metric} {over}{rule} "
            "(only the winner was scored on test):"
        )
        s.table(
            ["candidate", f"search's valid {metric}", f"mean valid {metric} over seeds", "chosen"],
            [
                [
                    c["trial_id"],
                    "-" if c["search_score"] is None else f"{c['search_score']:.4f}",
                    pm(c["valid"].get(metric)),
                    c["chosen"],
                ]
                for c in cands
            ],
        )
    default = summary.get("default") or {}
    for r in [r for r in default.get("runs") or [] if "error" in r]:
        s.note(f"the default configuration's run with seed {r.get('seed')} failed: {r['error']}")
    vs = summary.get("versus_default")
    if not vs:
        if default.get("runs") and not (summary.get("choice") or {}).get("default_chosen"):
            s.note("Winner against the default configuration: no seed on which both finished.")
        return
    stats = vs["stats"]
    metrics = sorted(set(stats["winner"]["valid"]) & set(stats["default"]["valid"]))
    s.text(
        f"Winner against the default configuration (the base configuration every trial started "
        f"from), on the seeds both finished, {vs['seeds']}: on {metric}, the winner is "
        f"{'better' if vs['valid']['winner_better'] else 'not better'} on validation and "
        f"{'better' if vs['test']['winner_better'] else 'not better'} on test."
    )
    s.table(
        ["metric", "winner valid", "default valid", "winner test", "default test"],
        [
            [
                m,
                pm(stats["winner"]["valid"].get(m)),
                pm(stats["default"]["valid"].get(m)),
                pm(stats["winner"]["test"].get(m)),
                pm(stats["default"]["test"].get(m)),
            ]
            for m in metrics
        ],
    )


def results_section(summary: dict | None, trials: Any) -> Section:
    s = Section("Validation and test results")
    final = (summary or {}).get("final") or {}
    if final.get("valid") or final.get("test"):
        metrics = sorted(set(final.get("valid") or {}) | set(final.get("test") or {}))
        rows = [
            [m, pm((final.get("valid") or {}).get(m)), pm((final.get("test") or {}).get(m))]
            for m in metrics
        ]
        folds = ((summary or {}).get("choice") or {}).get("folds")
        cv = (
            f", the k-th seed trained on the other folds and validated on fold k of {folds} "
            "cross-validation folds of the train and valid splits"
            if folds
            else ""
        )
        s.text(
            f"The best configuration re-trained with seeds {final.get('seeds')}{cv}: mean ± "
            "standard deviation over seeds; the test split scored once per seed."
        )
        s.table(["metric", "validation", "test"], rows)
        _choice(s, summary)
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
    from search.analysis import figures

    s = Section("Search history")
    hist = (doc or {}).get("history")
    if not hist or not hist.get("trial"):
        s.note("No finished trials to plot.")
        return s
    counts = ", ".join(f"{k} {v}" for k, v in (doc.get("trials") or {}).items())
    s.text(f"Trials: {counts}. Best-so-far validation {hist['metric']} ({hist['mode']}).")
    warm = [w for w in hist.get("warm_start") or [] if w]
    if warm:
        sources = sorted({w.rsplit(":", 1)[0] for w in warm})
        s.text(
            f"{len(warm)} warm-started trial(s) ran first with the best configurations of "
            f"{', '.join(sources)} (drawn as orange stars)."
        )
    figs.add(s, figures.history_figure(hist), "history", "Best-so-far score vs trials and epochs")
    return s


def importance_section(doc: dict | None, figs: Figures) -> Section:
    from search.analysis import figures
    from search.analysis.importance import CLUSTER_NOTE

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
    from search.study.trials import scalar

    datasets = list(dict.fromkeys(r["dataset"] for r in curves))
    params, anchors = [], {ds: {} for ds in datasets}
    for name in dict.fromkeys(r["parameter"] for r in curves):
        rows = [r for r in curves if r["parameter"] == name]
        values = list(dict.fromkeys(scalar(r["value"]) for r in rows))
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
                anchors[r["dataset"]][name] = scalar(r["value"])
    seeds = sorted({r["seed"] for r in curves})
    return {
        "datasets": datasets,
        "params": params,
        "anchor": anchors,
        "seeds": seeds,
        "around": "?",
    }


def sensitivity_section(out: Path, figs: Figures, metric: str | None) -> Section:
    from search.analysis import figures
    from search.sweep import curves
    from search.sweep import plan as plans

    s = Section("Sensitivity (one parameter at a time)")
    folder = out / layout.SENS_DIR
    plan = curves.read_plan(out)
    curves_path = folder / layout.SENS_CURVES
    if not curves_path.is_file():
        s.note(
            "No sensitivity/curves.csv: no sweep has run here"
            + (" (a sweep is planned: rerun it with the same flags to resume)." if plan else ".")
        )
        return s
    curves = curves.read_curves(curves_path)
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
    metrics = {ds: figures.metric_for(plan, ds, metric) for ds in plan["datasets"]}
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
                figures.same_value(value, (plan.get("anchor") or {}).get(ds, {}).get(name))
                for ds in plan["datasets"]
            )
            label = plans.fmt(value) + (" ★" if anchored else "")
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
    from search.analysis import figures
    from search.analysis.diagnostics import load_diagnostics

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
