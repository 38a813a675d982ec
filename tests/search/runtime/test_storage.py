"""`--out` as an object-store URI: the Storage round trip, bad URIs, a search on file:// and
its --resume after the driver is killed (from another working folder, as on another machine).

The searches join the module's shared loopback Ray with --address (see conftest.py).
"""

from __future__ import annotations

import json
import pickle
import signal
import threading
import time

import optuna
import pytest
from searchtest_util import FAST, kill_tree, rows, run, start, wait_for

from atsuko.cli import run_cli
from atsuko.errors import ConfigError
from search import run as cli
from search.runtime import storage as storage_mod
from search.runtime.storage import CACHE_ENV, Storage, is_uri, working_dir

OUTPUTS = ("trials.csv", "study.db", "best_config.yaml", "summary.json", "search.json")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def _uri(path) -> str:
    return path.resolve().as_uri()  # file:///...


def test_a_local_path_is_its_own_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Storage("runs/x")
    assert not store.remote and store.local_dir == tmp_path / "runs" / "x"
    assert store.location == str(tmp_path / "runs" / "x") and store.join("tune").endswith("x/tune")
    assert store.upload() == 0 and store.download() == 0
    assert not is_uri("runs/x") and is_uri("s3://b/p") and is_uri("file:///a")


def test_fetch_copies_a_uri_down_and_names_the_flag_when_it_cannot(tmp_path, cache, monkeypatch):
    folder = Storage(tmp_path / "here", flag="--resume")
    assert folder.fetch() is folder  # a folder: nothing to copy
    bucket = tmp_path / "bucket" / "run"
    (bucket / "search.json").parent.mkdir(parents=True)
    (bucket / "search.json").write_text("{}")
    store = Storage(_uri(bucket), flag="--warm-start")
    assert store.fetch() is store and (store.local_dir / "search.json").read_text() == "{}"

    def unreadable(*_args, **_kwargs):
        raise OSError("access denied")

    monkeypatch.setattr(store, "download", unreadable)
    with pytest.raises(ConfigError, match=r"^--warm-start file://\S+/run: cannot read it \("):
        store.fetch()


def test_upload_and_download_round_trip_on_a_file_uri(tmp_path, cache, monkeypatch):
    bucket = tmp_path / "bucket" / "run"
    uri = _uri(bucket)
    store = Storage(uri)
    assert store.remote and store.location == uri
    assert store.local_dir == working_dir(uri) and store.local_dir.parent == cache
    assert store.is_new() and not store.has_file("search.json")
    store.reset_working_dir()
    local = store.local_dir
    (local / "search.json").write_text('{"a": 1}')
    (local / "trials.csv").write_text("trial_id\n1\n")
    (local / "report").mkdir()
    (local / "report" / "fig.png").write_bytes(b"\x89PNG")
    (local / "trials.csv.tmp").write_text("half")  # being written: never copied
    (local / "tune").mkdir()
    (local / "tune" / "x.json").write_text("{}")  # Tune's own folder: Tune writes it
    assert store.upload() == 3
    assert (bucket / "search.json").read_text() == '{"a": 1}'
    assert (bucket / "report" / "fig.png").read_bytes() == b"\x89PNG"
    assert not (bucket / "trials.csv.tmp").exists() and not (bucket / "tune").exists()
    assert store.has_file("search.json") and store.has_folder("report") and not store.is_new()

    (bucket / "tune" / "mosei_a" / "checkpoint_000001").mkdir(parents=True)
    (bucket / "tune" / "mosei_b" / "checkpoint_000000").mkdir(parents=True)
    (bucket / "tune" / "mosei_b" / "result.json").write_text("{}")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "elsewhere"))  # another machine
    there = pickle.loads(pickle.dumps(store))  # as Tune restores its callbacks
    assert there.location == uri and there.local_dir.parent == tmp_path / "elsewhere"
    (there.local_dir).mkdir(parents=True)
    (there.local_dir / "stale.txt").write_text("from an earlier search")
    assert there.download() == 3  # search.json, trials.csv, report/fig.png; not tune/
    assert sorted(p.name for p in there.local_dir.rglob("*")) == [
        "fig.png",
        "report",
        "search.json",
        "trials.csv",
    ]
    assert there.prune_checkpoints("tune", keep="mosei_a") == 1
    assert (bucket / "tune" / "mosei_a" / "checkpoint_000001").is_dir()
    assert not (bucket / "tune" / "mosei_b" / "checkpoint_000000").exists()
    assert (bucket / "tune" / "mosei_b" / "result.json").is_file()


def test_join_keeps_a_query_string_at_the_end(tmp_path, cache):
    store = Storage(_uri(tmp_path / "b" / "run"))
    store.uri = "s3://bucket/run?region=eu-west-1"  # no network here: only the string matters
    assert store.join("tune") == "s3://bucket/run/tune?region=eu-west-1"


@pytest.mark.parametrize("flag", ["--out", "--resume"])
def test_an_unknown_scheme_exits_2_naming_the_flag(flag, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [flag, "nope://bucket/run"]
    if flag == "--out":
        argv = ["--dataset", "mosei", "--synthetic", *argv]
    with pytest.raises(SystemExit) as stop:
        run_cli(cli.main, argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert err.startswith(f"error: {flag} nope://bucket/run: cannot open this storage location")
    assert "s3://BUCKET/PREFIX" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="--out"):
        Storage("file://host-not-allowed/run")


def _finished(bucket) -> list[str]:
    """Trial folders under the URI whose result.json reached the last epoch (3)."""
    return [
        d.name
        for d in (bucket / "tune").glob("mosei_*")
        if (d / "result.json").is_file() and '"epoch": 3' in (d / "result.json").read_text()
    ]


def test_a_storage_that_does_not_answer_fails_in_time(monkeypatch):
    """The probe gives up while the storage is still silent (it answers only once the test
    lets it, or after 30 s: a probe that waits for it gets an answer and raises nothing)."""
    answer = threading.Event()

    class Silent:  # a bucket behind a dead network: GCS would retry for 15 minutes
        def get_file_info(self, path):
            answer.wait(30)

    monkeypatch.setattr(storage_mod, "PROBE_TIMEOUT_S", 0.2)
    try:
        with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
            storage_mod._probe(Silent(), "bucket/run")
    finally:
        answer.set()


def _study_states(path) -> dict[str, str]:
    study = optuna.load_study(study_name="atsuko-mosei", storage=f"sqlite:///{path}")
    return {t.user_attrs["tune_trial_id"]: t.state.name for t in study.trials}


@pytest.mark.slow
def test_a_search_writes_everything_to_a_file_uri(shared_ray, tmp_path):
    bucket = tmp_path / "bucket" / "run"
    uri = _uri(bucket)
    cache_env = {CACHE_ENV: str(tmp_path / "cache")}
    args = ["--num-samples", "2", "--max-epochs", "1", "--final-seeds", "0"]
    address = ["--address", shared_ray["address"]]
    done = run(*FAST, *args, "--out", uri, *address, extra_env=cache_env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in OUTPUTS:
        assert (bucket / name).is_file(), name
    table = rows(bucket / "trials.csv")
    assert len(table) == 2 and all(r["state"] in ("COMPLETE", "PRUNED") for r in table)
    for r in table:
        trial = bucket / "tune" / f"mosei_{r['trial_id']}"
        assert (trial / "result.json").is_file() and list(trial.glob("events.out.tfevents.*"))
    assert set(_study_states(bucket / "study.db")) == {r["trial_id"] for r in table}
    assert f"--resume {uri}" in done.stdout and f"Outputs in {uri}" in done.stdout
    again = run("--resume", uri, *address, extra_env={CACHE_ENV: str(tmp_path / "other")})
    assert again.returncode == 0 and "is complete" in again.stdout


@pytest.mark.slow
def test_resume_of_a_uri_after_the_driver_is_killed(shared_ray, tmp_path):
    bucket = tmp_path / "bucket" / "run"
    uri = _uri(bucket)
    address = ["--address", shared_ray["address"]]
    args = ["--scheduler", "none", "--num-samples", "3", "--max-epochs", "3", "--final-seeds", "0"]
    log = tmp_path / "first.txt"
    proc = start(
        *FAST, *args, "--out", uri, *address, log=log, extra_env={CACHE_ENV: str(tmp_path / "c1")}
    )
    checkpoint = lambda: any((bucket / "tune").glob("mosei_*/checkpoint_000000"))  # noqa: E731
    assert wait_for(checkpoint, 240, proc), log.read_text()[-3000:]
    time.sleep(1.5)  # let the experiment snapshot that follows the checkpoint land
    kill_tree(proc, signal.SIGKILL)
    assert not (bucket / "summary.json").exists()
    assert len(_finished(bucket)) < 3, "every trial ended before the kill: nothing to resume"
    assert json.loads((bucket / "search.json").read_text())["out"] == uri

    other = {CACHE_ENV: str(tmp_path / "c2")}  # resumed from another working folder
    first = {p: p.stat().st_mtime_ns for p in (tmp_path / "c1").rglob("*") if p.is_file()}
    done = run("--resume", uri, *address, extra_env=other)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Resuming mosei" in done.stdout
    table = rows(bucket / "trials.csv")
    assert len({r["trial_id"] for r in table}) == len(table) == 3
    assert all(r["state"] == "COMPLETE" and r["epochs"] == "3" for r in table)
    assert _study_states(bucket / "study.db") == {r["trial_id"]: "COMPLETE" for r in table}
    assert (bucket / "summary.json").is_file() and (bucket / "best_config.yaml").is_file()
    # the restored callbacks wrote to this run's working folder, not the first run's
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "c1").rglob("*") if p.is_file()} == first
    assert "could not update" not in done.stdout + done.stderr
