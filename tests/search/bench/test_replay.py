"""The curve table, its recording command and the replay through the search's own driver."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
from searchtest_util import REPO, env
from tune_replay import tune_replay

from search.bench.curve_table import distance, load_table, nearest, read_curves
from search.bench.replay import trial_order_best

SPACE = [
    {"name": "num_bands", "kind": "int", "low": 1, "high": 8, "log": False, "choices": []},
    {"name": "band_split", "kind": "categorical", "low": None, "high": None, "log": False,
     "choices": ["uniform", "log"]},
    {"name": "lr", "kind": "float", "low": 1e-4, "high": 1e-2, "log": True, "choices": []},
]  # fmt: skip


def _table(*params: dict) -> dict:
    trials = [
        {"trial_id": f"t{k}", "params": p, "scores": [1.0 - k / 10], "seconds": [1.0]}
        for k, p in enumerate(params)
    ]
    return {"meta": {"space": SPACE, "metric": "MAE", "mode": "min"}, "trials": trials}


def test_nearest_is_measured_on_log_scales_in_the_unit_cube():
    table = _table({"num_bands": 4, "lr": 1e-4}, {"num_bands": 4, "lr": 1e-2})
    # 9e-4 is nearer to 1e-4 than to 1e-2 on a log scale (linear distance says the opposite)
    assert nearest(table, {"num_bands": 4, "lr": 9e-4})["trial_id"] == "t0"
    assert nearest(table, {"num_bands": 4, "lr": 2e-3})["trial_id"] == "t1"
    assert distance(SPACE, {"lr": 1e-4}, {"lr": 1e-2}) == (0, pytest.approx(1.0))


def test_categoricals_and_active_parameters_match_first():
    table = _table(
        {"num_bands": 2, "band_split": "log", "lr": 1e-3},
        {"num_bands": 8, "band_split": "uniform", "lr": 1e-2},
        {"num_bands": 1, "lr": 1e-3},  # one band: band_split inactive
    )
    # numerically t0 is far nearer, but only t1 has band_split 'uniform'
    assert nearest(table, {"num_bands": 2, "band_split": "uniform", "lr": 1e-3})["trial_id"] == "t1"
    assert nearest(table, {"num_bands": 2, "lr": 1e-3})["trial_id"] == "t2"


def test_trial_order_best_so_far():
    assert trial_order_best([[0.9, 0.8], [1.0], [0.7, 0.75]], "min") == [0.8, 0.8, 0.7]
    assert trial_order_best([[0.1], [0.3, 0.2]], "max") == [0.1, 0.3]


@pytest.mark.slow
def test_recorded_random_search_replays_exactly(shared_ray, tmp_path):
    """Record 4 configurations of 2 epochs with the command, then replay random search with the
    recording's seed through the driver: the same configurations in the same order, and the
    recorded best-so-far trajectory exactly."""
    work, table_path = tmp_path / "record", tmp_path / "table.json.gz"
    args = ["--trials", "4", "--epochs", "2", "--scale", "0.02", "--work", str(work)]
    command = [sys.executable, "-m", "search.bench.record", *args, "--table", str(table_path)]
    command += ["--address", shared_ray["address"]]
    done = subprocess.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "curve table:" in done.stdout and "rank correlation with the final best" in done.stdout
    table = load_table(table_path)
    meta = table["meta"]
    assert meta["command"].startswith("python -m search.bench.record --trials 4")
    assert len(meta["data_sha256"]) == 64 and meta["scale"] == 0.02 and meta["trials"] == 4
    assert all(len(t["scores"]) == len(t["seconds"]) >= 1 for t in table["trials"])
    with gzip.open(table_path, "rt") as f:
        assert json.load(f)["meta"]["sampler"] == "random"

    from search.settings import load

    settings = load(work).to_json()
    settings.update(out=str(tmp_path / "replay"), address=shared_ray["address"])
    done = tune_replay(settings, table_path, time_scale=0.01)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    replayed = read_curves(tmp_path / "replay")
    assert [t["params"] for t in replayed] == [t["params"] for t in table["trials"]]
    recorded = trial_order_best([t["scores"] for t in table["trials"]], meta["mode"])
    assert trial_order_best([t["scores"] for t in replayed], meta["mode"]) == recorded
    before = table_path.read_bytes()
    grown = [*command[:4], "5", *command[5:]]  # --trials 5 on the folder that holds 4
    done = subprocess.run(grown, cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--trials 4, not 5" in done.stderr
    assert "Traceback" not in done.stderr and table_path.read_bytes() == before
    code = subprocess.run(
        [sys.executable, "-m", "search.bench.record", "--trials", "0"],
        cwd=REPO, env=env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert code.returncode == 2 and "--trials: expected a positive integer, got '0'" in code.stderr


@pytest.mark.slow
def test_a_recording_on_real_format_data_keeps_its_file_pins_and_seed(shared_ray, tmp_path):
    """`--data` (an MMSA pickle written by the project's own writer stands in for real
    features), `--set` and `--train-seed`: the table names the file and its sha256, the pins
    and every curve's training seed; the replay rebuilds its space without the pinned key and
    the recording's sampler seed draws exactly the recorded configurations."""
    from atsuko.data.registry import get_spec
    from atsuko.data.synth_write import synthesize
    from search.bench.simulate import simulate_search, table_space
    from search.provenance import sha256_file
    from search.settings import Settings
    from search.study.driver import search_algorithms

    data = synthesize(get_spec("mosi"), tmp_path / "data", scale=0.02, seed=0)
    table_path = tmp_path / "real.json.gz"
    args = ["--data", str(data), "--set", "lr=0.002", "--train-seed", "7", "--trials", "3"]
    args += ["--epochs", "2", "--work", str(tmp_path / "record"), "--table", str(table_path)]
    command = [sys.executable, "-m", "search.bench.record", *args]
    command += ["--address", shared_ray["address"]]
    done = subprocess.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"MOSI {data.name}" in done.stdout
    table = load_table(table_path)
    meta = table["meta"]
    assert meta["synthetic"] is False and meta["scale"] is None and meta["data_file"] == data.name
    assert meta["data_sha256"] == sha256_file(data)
    assert meta["sets"] == ["lr=0.002", "train.seed=7"] and meta["train_seed"] == 7
    assert str(tmp_path) not in json.dumps(meta)  # files by name, never this machine's folders
    assert f"--data {data.name} " in meta["command"]
    assert isinstance(meta["label_median_score"], float)
    assert [t["seed"] for t in table["trials"]] == [7, 7, 7]

    space = table_space(table)
    assert "lr" not in [p.name for p in space.params]
    assert [p["name"] for p in meta["space"]] == [p.name for p in space.params]
    settings = {"dataset": "mosi", "synthetic": True, "scale": meta["scale"], "max_epochs": 2,
                "num_samples": 3, "concurrency": 2, "seed": 0, "sampler": "random",
                "scheduler": "none"}  # fmt: skip
    assert simulate_search(table, space, settings, budget=6)  # the replay answers from it
    searcher, _ = search_algorithms(Settings(**settings), space, meta["mode"], 2)
    drawn = [searcher.suggest(f"t{k}") for k in range(3)]
    assert all(distance(meta["space"], d, t["params"]) == (0, 0.0)
               for d, t in zip(drawn, table["trials"], strict=True))  # fmt: skip
    held = dict(meta, sets=["lr=0.002"])  # a second seed's recording draws the same space
    assert table_space({"meta": held}).params == space.params


def test_a_tables_paths_are_their_names():
    from search.bench.record import portable

    assert portable("/data/mosi/aligned_50.pkl") == "aligned_50.pkl"
    assert (
        portable("model.bert_path=/models/all-MiniLM-L6-v2") == "model.bert_path=all-MiniLM-L6-v2"
    )
    assert [portable(a) for a in ("--trials", "4", "lr=0.002", "runs/x")] == [
        "--trials", "4", "lr=0.002", "runs/x"]  # fmt: skip


def test_only_the_plain_planted_recording_writes_the_committed_table():
    """A real-data, pinned or second-seed recording goes to a table named after its --work,
    never over the committed planted-MOSI table."""
    from pathlib import Path

    from search.bench.curve_table import TABLE
    from search.bench.record import default_table, default_work, parser

    def where(*argv: str) -> tuple[Path, Path]:
        args = parser().parse_args(list(argv))
        work = Path(args.work) if args.work else default_work(args)
        return work, default_table(args, work)

    assert where() == (Path("runs/record/mosi-0.2"), TABLE)
    real = where("--data", "x/aligned_50.pkl")
    assert real == (
        Path("runs/record/mosi-real-aligned_50"),
        TABLE.parent / "mosi-real-aligned_50.json.gz",
    )
    assert where("--train-seed", "1112", "--work", "w/seed2")[1] == TABLE.parent / "seed2.json.gz"
    assert where("--set", "lr=0.002")[1] != TABLE and where("--dataset", "sims")[1] != TABLE
