"""The report: rebuilt from finished and interrupted runs, self-contained, rendered by Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import write_diagnostics, write_search, write_sweep
from searchtest_util import REPO, env

from atsuko.errors import ConfigError
from search.report import build_report
from search.runtime.records import TrialRecord

REPORT = REPO / "search" / "report.py"
SECTIONS = (
    "Best configuration",
    "Validation and test results",
    "Search history",
    "Parameter importance",
    "Sensitivity (one parameter at a time)",
    "Router diagnostics",
    "Run facts",
)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    out = write_search(tmp_path_factory.mktemp("full") / "out")
    write_sweep(out)
    write_diagnostics(out)
    build_report(out)
    return out


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', page)


def test_finished_run_gives_every_section_self_contained(full_run):
    page = (full_run / "report.html").read_text()
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page
    images = _images(page)
    assert len(images) >= 9  # history, importance, marginals, 3 sensitivity, 3 diagnostics
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:|file:|//)', page)  # nothing outside the page
    assert "0.7100 ± 0.0100" in page  # valid MAE over 3 seeds, from summary.json
    # the default on the same seeds: worse on validation (0.81), better on test (0.71 < 0.77)
    assert "better on validation and not better on test" in page
    assert "0.8100 ± 0.0100" in page
    assert "one-at-a-time" in page  # why sweeps, not sampled trials, measure sensitivity
    assert "★" in page  # the anchor row of the sensitivity tables
    assert "data-images-loaded" in page


def test_markdown_links_figures_that_exist(full_run):
    md = (full_run / "report.md").read_text()
    for title in SECTIONS:
        assert f"## {title}" in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 9
    assert all((full_run / link).is_file() for link in links)


def test_facts_name_versions_seeds_data_hash_hardware_and_time(full_run):
    page = (full_run / "report.html").read_text()
    for word in ("torch", "ray", "optuna", "sensitivity seeds", "final re-run seeds", "CPUs"):
        assert word in page
    assert "0" * 64 in page  # sha256 recorded by the sweep
    assert re.search(r"search \(first trial start to last report\)</td><td>\d+ s", page)


def test_interrupted_search_with_only_trials_csv(full_run, tmp_path):
    shutil.copy(full_run / "trials.csv", tmp_path / "trials.csv")
    html_path, md_path = build_report(tmp_path)
    page = html_path.read_text()
    assert "has not finished" in page
    assert "No best configuration yet" in page
    assert "No sensitivity/curves.csv" in page and "No diagnostics/" in page
    assert len(_images(page)) == 2 + 0 + 1  # history, importance, marginals
    assert (tmp_path / "importance.json").is_file()


def test_interrupted_search_with_running_trials_and_a_partial_sweep(tmp_path):
    write_search(tmp_path, n=6, finished=False, running=2)
    write_sweep(tmp_path, drop=7)
    (tmp_path / "sensitivity" / "plan.json").unlink()  # killed before its plan was kept
    html_path, _ = build_report(tmp_path)
    page = html_path.read_text()
    assert "plan.json is missing" in page
    assert "Sensitivity to tau_mod" in page


def test_sweep_planned_but_not_started(tmp_path):
    write_sweep(tmp_path)
    (tmp_path / "sensitivity" / "curves.csv").unlink()
    page = build_report(tmp_path)[0].read_text()
    assert "a sweep is planned" in page


def test_bad_out_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        build_report(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no search outputs"):
        build_report(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        build_report(tmp_path / "file")


@pytest.mark.slow
def test_cli_rebuilds_and_rejects_a_bad_folder(full_run, tmp_path):
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, str(REPORT), *a], cwd=REPO, env=env(), capture_output=True, text=True
    )
    bad = run(str(tmp_path / "nowhere"))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: ")
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    out = tmp_path / "copy"
    shutil.copytree(full_run, out)
    (out / "report.html").unlink()
    ok = run(str(out), "--importance", "fanova")
    assert ok.returncode == 0, ok.stderr
    assert (out / "report.html").is_file() and "FanovaImportanceEvaluator" in (
        out / "report.html"
    ).read_text()


CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/install-test-deps.sh)"
)
def test_report_renders_in_headless_chromium_with_its_images(full_run, tmp_path):
    url = (full_run / "report.html").resolve().as_uri()
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", url, profile=tmp_path / "p1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    assert 'data-images-loaded="true"' in body.group(0), body.group(0)
    count = int(re.search(r'data-image-count="(\d+)"', body.group(0)).group(1))
    assert count == len(_images((full_run / "report.html").read_text()))

    shot = tmp_path / "report.png"
    done = _chromium(
        f"--screenshot={shot}", "--window-size=1280,2000", url, profile=tmp_path / "p2"
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    from matplotlib import image

    pixels = image.imread(str(shot))  # (H, W, 3|4) floats
    assert pixels.shape[:2] == (2000, 1280)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50, "the screenshot is (nearly) blank"
    dark = (pixels[..., :3].mean(axis=2) < 0.5).mean()
    assert 0.001 < dark < 0.5  # text and plots on a light page


def _final_summary(winner_runs, default_runs, candidates, default_chosen=False) -> dict:
    from search.study.final import Candidate, FinalChoice, choice_doc

    sides = [
        Candidate(TrialRecord(trial_id=t, state="COMPLETE", params={}, score=s), None, r)
        for t, s, r in candidates
    ]
    winner = None if default_chosen else sides[0]
    choice = FinalChoice(sides, winner, winner_runs, default_runs, [1111, 1112])
    doc = {
        "select": {"metric": "MAE", "mode": "min"},
        "final": {
            "seeds": [1111, 1112],
            "runs": winner_runs,
            "valid": {"MAE": {"mean": 0.3, "std": 0.0, "n": 1}},
            "test": {},
        },
        **choice_doc(choice, "MAE", "min"),
    }
    if default_chosen:
        doc["choice"].update(winner="default", default_chosen=True)
        doc["candidates"][-1]["chosen"] = True
    return doc


def test_the_report_compares_on_the_shared_seeds_and_notes_a_failed_default_run(tmp_path):
    from search.analysis.sections import best_section, results_section

    runs = [
        {"seed": 1111, "valid": {"MAE": 0.3}, "test": {"MAE": 0.4}},
        {"seed": 1112, "error": "x"},
    ]
    default = [
        {"seed": 1111, "valid": {"MAE": 0.5}, "test": {"MAE": 0.6}},
        {"seed": 1112, "error": "ActorDiedError: lost"},
    ]
    text = "\n".join(results_section(_final_summary(runs, default, [("a", 0.2, runs)]), None).md)
    assert "on the seeds both finished, [1111]" in text
    assert "the default configuration's run with seed 1112 failed: ActorDiedError" in text
    ok = [{"seed": s, "valid": {"MAE": 0.5}, "test": {"MAE": 0.6}} for s in (1111, 1112)]
    doc = _final_summary(ok, ok, [("a", 0.2, runs)], default_chosen=True)
    text = "\n".join(best_section(tmp_path, doc).md + results_section(doc, None).md)
    assert "found nothing better than the default configuration" in text
    assert "| default | - |" in text
    doc["choice"]["gain"] = {"trial_id": "a", "gain": 0.02, "standard_error": 0.03, "margin": 1}
    text = "\n".join(best_section(tmp_path, doc).md + results_section(doc, None).md)
    assert "paired seed by seed, exceeds 1 standard error(s) of that gain (here 0.0200" in text
    assert "the best trial, a, beat it on mean valid MAE over seeds [1111, 1112] by 0.0200" in text
    assert "within 1 standard error(s) of that paired gain (0.0300)" in text
    doc["choice"]["folds"] = 2  # --final-cv
    text = "\n".join(best_section(tmp_path, doc).md + results_section(doc, None).md)
    assert "validated on fold k of 2 cross-validation folds of the train and valid" in text
    assert "over seeds [1111, 1112] (each validating on its own of 2 cross-validation" in text
