"""A cluster that holds no trial yet (an autoscaling cluster's start: a head with no CPU for
trials, no worker) is not refused: the search says it waits for resources and completes once a
worker joins (`cluster/local.py add-worker` stands in for the autoscaler). A local Ray, which
nothing can join, still refuses (tests/search/study/test_driver_faults.py). The pure parts of
`search.runtime.waiting`: tests/search/runtime/test_waiting.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from searchtest_util import FAST, REPO, rows, start, wait_for

from atsuko.errors import ConfigError
from search import layout
from search.runtime import waiting
from search.settings import Settings
from search.study import driver

LOCAL = [sys.executable, str(REPO / "cluster" / "local.py")]


def _fake_cluster(monkeypatch, nodes, ceiling=None) -> None:
    import ray

    total: dict[str, float] = {}
    for n in nodes:
        for k, v in n.items():
            total[k] = total.get(k, 0) + v
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": n} for n in nodes])
    monkeypatch.setattr(ray, "cluster_resources", lambda: total)
    monkeypatch.setattr(waiting, "autoscaler_ceiling", lambda: ceiling)


def test_check_resources_refuses_on_a_local_ray(monkeypatch) -> None:
    _fake_cluster(monkeypatch, [{"CPU": 0.0}])
    with pytest.raises(ConfigError, match="--cpus-per-trial 1: no Ray node has that many CPUs"):
        driver.check_resources(Settings(num_samples=5))
    _fake_cluster(monkeypatch, [{"CPU": 4.0}])
    with pytest.raises(ConfigError, match="--gpus-per-trial 1: no Ray node has that many GPUs"):
        driver.check_resources(Settings(num_samples=5, gpus_per_trial=1))


def test_check_resources_waits_on_a_cluster(monkeypatch, capsys) -> None:
    address = "127.0.0.1:6379"
    _fake_cluster(monkeypatch, [{"CPU": 0.0}])  # the head only, no worker yet
    assert driver.check_resources(Settings(num_samples=20, address=address)) == 4
    said = capsys.readouterr().out
    assert "no Ray node has that many CPUs (largest: 0) yet" in said
    assert "trials wait for resources (4 at once: the default while no node fits" in said
    assert driver.check_resources(Settings(num_samples=2, address=address)) == 2
    assert driver.check_resources(Settings(num_samples=20, concurrency=6, address=address)) == 6
    # the autoscaler published its ceiling: 8 workers of 4 CPUs and 1 GPU
    _fake_cluster(monkeypatch, [{"CPU": 0.0}], ceiling={"CPU": 32, "GPU": 8})
    s = Settings(num_samples=20, gpus_per_trial=0.5, address=address)
    assert driver.check_resources(s) == 16
    assert "16 at once: the autoscaler's ceiling" in capsys.readouterr().out
    # one worker up, seven more to come: the default is the ceiling, not the nodes up now
    _fake_cluster(monkeypatch, [{"CPU": 0.0}, {"CPU": 4.0, "GPU": 1.0}], {"CPU": 32, "GPU": 8})
    assert driver.check_resources(s) == 16
    _fake_cluster(monkeypatch, [{"CPU": 0.0}, {"CPU": 4.0, "GPU": 1.0}])
    assert driver.check_resources(s) == 2  # no autoscaler: what the nodes hold


# ----------------------------------------------------------------------------- on a cluster


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LOCAL, *args], capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_search_waits_for_a_worker_then_completes(tmp_path) -> None:
    from cluster.local import LocalCluster

    sdir = Path(tempfile.mkdtemp(prefix="atw-"))  # short: Ray's sockets live under it
    out, log = tmp_path / "out", tmp_path / "log.txt"
    proc = None
    try:
        r = _cli("up", "--head-cpus", "0", "--workers", "0", "--state-dir", str(sdir))
        assert r.returncode == 0, r.stdout + r.stderr
        c = LocalCluster.attach(sdir)
        assert c.address.startswith("127.0.0.1:")
        proc = start(
            *FAST,
            "--final-seeds",
            "1",
            "--diagnostics",
            "--diagnostics-epochs",
            "1",
            "--address",
            c.address,
            "--out",
            str(out),
            log=log,
            extra_env={**c.env(), "ATSUKO_WAIT_AFTER_S": "3"},
        )
        said = lambda: "Waiting for resources:" in log.read_text()  # noqa: E731
        assert wait_for(said, 240, proc), log.read_text()[-3000:]
        text = log.read_text()
        assert "no Ray node has that many CPUs (largest: 0) yet" in text
        assert not list((out / layout.TUNE_DIR).glob("mosei_*/result.json"))  # nothing ran yet
        r = _cli("add-worker", "--cpus", "2", "--state-dir", str(sdir))
        assert r.returncode == 0 and "added worker-1" in r.stdout, r.stdout + r.stderr
        code = proc.wait(timeout=400)
        text = log.read_text()
        assert code == 0, text[-3000:]
        assert "Resources arrived" in text
        worker = LocalCluster.attach(sdir).node_ids()["worker-1"]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()  # ours: the search CLI (its Ray is the cluster's, stopped below)
            proc.wait(timeout=60)
        _cli("down", "--state-dir", str(sdir))
        shutil.rmtree(sdir, ignore_errors=True)
    table = rows(out / layout.TRIALS)
    assert len(table) == 3 and all(r["node_id"] == worker for r in table)
    summary = json.loads((out / layout.SUMMARY).read_text())
    assert summary["final"]["seeds"] == [1111] and not summary["final"]["failed"]
    # the diagnostics trained in a Ray task on the worker, not in the driver on the 0-CPU head
    diag = json.loads((layout.diagnostics_dir(out) / layout.DIAG_JSON).read_text())
    assert diag["ran_on"]["node_id"] == worker and set(diag["variants"]) == {
        "full",
        "no_mcm",
        "no_sbr",
        "baseline",
    }
