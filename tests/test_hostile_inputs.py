"""Every input honoured or refused: a table of hostile inputs for each command that takes them.

Each row runs the real command in a fresh process (`search/run.py`, `python -m atsuko.train`,
a sweep via `search/run.py --sensitivity`, `python -m search.bench` and its `record`) and
asserts the house rule for bad input: exit status 2, one line that names the flag or key, no
traceback, and nothing written (neither the fresh `--out`/`--work` nor a default `runs/`
folder). They all fail before Ray starts, so the rows run a few at a time and the table takes
about as long as importing the commands.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_SPACE = REPO / "tests" / "search" / "tiny_space.yaml"
COMMANDS = {
    "search": [sys.executable, str(REPO / "search" / "run.py"), "--dataset", "mosei"],
    "train": [sys.executable, "-m", "atsuko.train", "--dataset", "mosi"],
    "sweep": [
        sys.executable,
        str(REPO / "search" / "run.py"),
        *("--dataset", "mosi", "--sensitivity", "tau_band"),
    ],
    "resume": [sys.executable, str(REPO / "search" / "run.py")],  # a search's own flags
    "record": [sys.executable, "-m", "search.bench.record"],
    "bench": [sys.executable, "-m", "search.bench"],
    "replay_one": [sys.executable, "-m", "search.bench.replay_one"],
}
# where each writes (the others: --out); replay_one writes nothing
OUT_FLAG = {"record": "--work", "bench": "--work", "resume": None, "replay_one": None}
SYNTH = ["--synthetic", "--space", "{tiny_space}"]  # search and sweep: tiny, generated data

# (id, command, arguments, what the one error line must name); {name} is a file of `files`
ROWS = [
    # numeric flags: sign, NaN, infinities, huge, zero
    ("search seed -1", "search", [*SYNTH, "--seed", "-1"], "--seed"),
    ("search seed nan", "search", [*SYNTH, "--seed", "nan"], "--seed"),
    ("search seed 2**32", "search", [*SYNTH, "--seed", "4294967296"], "--seed"),
    ("train seed -1", "train", ["--synthetic", "--seed", "-1"], "--seed"),
    ("train seed huge", "train", ["--synthetic", "--seed", "9" * 30], "--seed"),
    ("train epochs 0", "train", ["--synthetic", "--epochs", "0"], "--epochs"),
    ("search max-epochs 0", "search", [*SYNTH, "--max-epochs", "0"], "--max-epochs"),
    ("search time-budget inf", "search", [*SYNTH, "--time-budget", "inf"], "--time-budget"),
    ("search time-budget nan", "search", [*SYNTH, "--time-budget", "nan"], "--time-budget"),
    ("search gpus nan", "search", [*SYNTH, "--gpus-per-trial", "nan"], "--gpus-per-trial"),
    ("search cpus -inf", "search", [*SYNTH, "--cpus-per-trial", "-inf"], "--cpus-per-trial"),
    ("search sampler grid", "search", [*SYNTH, "--sampler", "grid"], "--sampler"),
    ("train unknown dataset", "train", ["--dataset", "iemocap"], "--dataset"),
    ("sweep seeds 0", "sweep", [*SYNTH, "--seeds", "0"], "--seeds"),
    ("sweep points -1", "sweep", [*SYNTH, "--points", "-1"], "--points"),
    ("sweep unknown parameter", "sweep", ["--synthetic", "--sensitivity", "nope"], "nope"),
    # flags that would do nothing in the chosen mode
    ("asha flag, no asha", "search", [*SYNTH, "--scheduler", "none", "--grace-period", "2"],
     "--grace-period"),
    ("brackets, no asha", "search", [*SYNTH, "--scheduler", "none", "--brackets", "2"],
     "--brackets"),
    ("onset epoch, default asha", "search", [*SYNTH, "--onset-epoch", "2"], "--onset-epoch"),
    ("onset epoch, rung", "search", [*SYNTH, "--scheduler", "rung", "--onset-epoch", "2"],
     "--onset-epoch"),
    ("grace, onset", "search", [*SYNTH, "--scheduler", "onset", "--grace-period", "2"],
     "--grace-period"),
    ("brackets, rung", "search", [*SYNTH, "--scheduler", "rung", "--brackets", "2"],
     "--brackets"),
    ("onset epoch 0", "search", [*SYNTH, "--scheduler", "onset", "--onset-epoch", "0"],
     "--onset-epoch"),
    ("onset epoch above the epochs", "search",
     [*SYNTH, "--scheduler", "onset", "--max-epochs", "3", "--onset-epoch", "4"],
     "--onset-epoch 4"),
    ("concurrency above the trials", "search",
     [*SYNTH, "--num-samples", "2", "--concurrency", "3"], "--concurrency 3"),
    ("top-k, no final seeds", "search", [*SYNTH, "--final-seeds", "0", "--final-top-k", "2"],
     "--final-top-k"),
    ("grace above the config's epochs", "search",
     [*SYNTH, "--set", "epochs=3", "--grace-period", "4"], "--grace-period 4"),
    ("search set device", "search", [*SYNTH, "--set", "device=cuda"], "--gpus-per-trial"),
    ("search set threads", "search", [*SYNTH, "--set", "train.threads=8"], "--cpus-per-trial"),
    ("sweep set device", "sweep", [*SYNTH, "--set", "train.device=cpu"], "--gpus-per-trial"),
    ("sweep importance, no search", "sweep", [*SYNTH, "--importance", "fanova"],
     "--importance"),
    ("sweep search seed", "sweep", [*SYNTH, "--seed", "3"], "--seed"),
    ("train stand-in key on real data", "train", ["--data", "{wrong_shape}", "--set", "scale=.5"],
     "--set scale"),
    ("search stand-in key on real data", "search",
     ["--data", "{wrong_shape}", "--set", "synth_seed=3"], "--set synth_seed"),
    ("train epochs twice", "train", ["--synthetic", "--epochs", "2", "--set", "epochs=3"],
     "--epochs"),
    ("search epochs twice", "search", [*SYNTH, "--max-epochs", "2", "--set", "train.epochs=3"],
     "--max-epochs"),
    ("train dataset twice", "train", ["--synthetic", "--set", "dataset=sims"], "--dataset"),
    ("bench seeds 0", "bench", ["--only", "replay", "--seeds", "0"], "--seeds"),
    ("bench seeds, no replay", "bench", ["--only", "memory", "--seeds", "3"], "--seeds"),
    ("bench table, no replay", "bench", ["--only", "memory", "--table", "{wrong_shape}"],
     "--table"),
    ("bench held-out, no replay", "bench",
     ["--only", "memory", "--held-out", "{wrong_shape}"], "--held-out"),
    ("bench held-out missing", "bench", ["--only", "replay", "--held-out", "{missing}"],
     "--held-out"),
    ("replay one seeds 0", "replay_one", ["{missing}", "--seeds", "0"], "--seeds"),
    ("replay one missing table", "replay_one", ["{missing}"], "no curve table"),
    ("replay one not a table", "replay_one", ["{wrong_shape}"], "unreadable curve table"),
    ("replay one budgets -1", "replay_one", ["{missing}", "--budgets", "-1"], "--budgets"),
    ("record seed -1", "record", ["--seed", "-1"], "--seed"),
    ("record scale nan", "record", ["--scale", "nan"], "--scale"),
    ("record gpus -1", "record", ["--gpus-per-trial", "-1"], "--gpus-per-trial"),
    ("record scale with data", "record", ["--data", "{wrong_shape}", "--scale", "0.5"],
     "--scale 0.5"),
    ("record set seed", "record", ["--set", "seed=3"], "--train-seed"),
    ("record train seed -1", "record", ["--train-seed", "-1"], "--train-seed"),
    # configuration values via --set
    ("search set scale nan", "search", [*SYNTH, "--set", "scale=nan"], "data.scale"),
    ("train set scale nan", "train", ["--synthetic", "--set", "scale=nan"], "data.scale"),
    ("train set lr inf", "train", ["--synthetic", "--set", "lr=.inf"], "train.lr"),
    ("search set weight decay -1", "search", [*SYNTH, "--set", "weight_decay=-1"],
     "train.weight_decay"),
    ("sweep set lr -inf", "sweep", [*SYNTH, "--set", "lr=-.inf"], "train.lr"),
    ("train set seed -1", "train", ["--synthetic", "--set", "seed=-1"], "train.seed"),
    ("train set unknown key", "train", ["--synthetic", "--set", "tau_bnd=1"], "tau_bnd"),
    ("search set wrong type", "search", [*SYNTH, "--set", "hidden=wide"], "model.hidden"),
    # configuration values via --config
    ("train config nan", "train", ["--synthetic", "--config", "{nan_yaml}"], "train.lr"),
    ("search config negative decay", "search", [*SYNTH, "--config", "{negative_yaml}"],
     "train.weight_decay"),
    ("sweep config inf", "sweep", [*SYNTH, "--config", "{inf_yaml}"], "model.tau_mod"),
    ("train config unknown key", "train", ["--synthetic", "--config", "{unknown_yaml}"],
     "bogus_key"),
    ("search config wrong type", "search", [*SYNTH, "--config", "{wrong_type_yaml}"],
     "model.hidden"),
    ("train config bad syntax", "train", ["--synthetic", "--config", "{bad_yaml}"],
     "not valid YAML"),
    ("sweep config bad syntax", "sweep", [*SYNTH, "--config", "{bad_yaml}"], "not valid YAML"),
    ("search config missing", "search", [*SYNTH, "--config", "{missing}"], "missing.yaml"),
    # search spaces
    ("search space missing", "search", ["--synthetic", "--space", "{missing}"], "missing.yaml"),
    ("search space malformed", "search", ["--synthetic", "--space", "{bad_yaml}"],
     "not valid YAML"),
    ("search space unknown parameter", "search", ["--synthetic", "--space", "{space_unknown}"],
     "nope"),
    ("search space empty range", "search", ["--synthetic", "--space", "{space_empty}"],
     "params.tau_band"),
    ("sweep space unknown parameter", "sweep", ["--synthetic", "--space", "{space_unknown}"],
     "nope"),
    # data files
    ("train data missing", "train", ["--data", "{missing_pkl}"], "missing.pkl"),
    ("search data missing", "search", ["--data", "{missing_pkl}", "--space", "{tiny_space}"],
     "missing.pkl"),
    ("sweep data missing", "sweep", ["--data", "{missing_pkl}"], "missing.pkl"),
    ("train data not a pickle", "train", ["--data", "{not_pickle}"], "not a readable pickle"),
    ("search data not a pickle", "search", ["--data", "{not_pickle}"], "not a readable pickle"),
    ("train data wrong shapes", "train", ["--data", "{wrong_shape}"], "'vision' has 5 rows"),
    ("sweep data wrong shapes", "sweep", ["--data", "{wrong_shape}"], "'vision' has 5 rows"),
    # --resume and --warm-start folders
    ("resume missing", "resume", ["--resume", "{missing}"], "--resume"),
    ("resume not a search", "resume", ["--resume", "{not_a_search}"], "search.json"),
    ("resume without search.json", "resume", ["--resume", "{tune_only}"], "search.json"),
    ("sweep resume", "sweep", [*SYNTH, "--resume", "{tune_only}"], "--resume"),
    ("warm start missing", "search", [*SYNTH, "--warm-start", "{missing}"], "--warm-start"),
    ("warm start not a search", "search", [*SYNTH, "--warm-start", "{not_a_search}"],
     "--warm-start"),
]  # fmt: skip


def _bad_data_pickle() -> dict:
    """A MOSI-keyed pickle whose vision rows disagree with its labels (the data tests' helper)."""
    where = REPO / "tests" / "atsuko" / "data" / "conftest.py"
    spec = importlib.util.spec_from_file_location("atsuko_data_fixtures", where)
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    sizes = {"train": 8, "valid": 4, "test": 4}
    obj = {s: helpers.mmsa_split(n, seed=i) for i, (s, n) in enumerate(sizes.items())}
    obj["train"]["vision"] = obj["train"]["vision"][:5]
    return obj


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The files and folders the rows name."""
    root = tmp_path_factory.mktemp("hostile")
    texts = {
        "nan_yaml": "train:\n  lr: .nan\n",
        "negative_yaml": "train:\n  weight_decay: -1\n",
        "inf_yaml": "model:\n  tau_mod: .inf\n",
        "unknown_yaml": "model:\n  bogus_key: 1\n",
        "wrong_type_yaml": "model:\n  hidden: big\n",
        "bad_yaml": "train: [lr: 1\n",
        "space_unknown": "params:\n  nope: {type: int, low: 1, high: 2}\n",
        "space_empty": "params:\n  tau_band: {type: float, low: 2.0, high: 1.0}\n",
        "not_pickle": "just some text\n",
    }
    paths = {"tiny_space": str(TINY_SPACE), "missing": str(root / "missing.yaml")}
    paths["missing_pkl"] = str(root / "missing.pkl")
    for name, text in texts.items():
        path = root / (f"{name}.pkl" if name == "not_pickle" else f"{name}.yaml")
        path.write_text(text)
        paths[name] = str(path)
    paths["wrong_shape"] = str(root / "wrong_shape.pkl")
    Path(paths["wrong_shape"]).write_bytes(pickle.dumps(_bad_data_pickle(), protocol=4))
    (root / "not_a_search").mkdir()
    (root / "not_a_search" / "notes.txt").write_text("not a search\n")
    (root / "tune_only" / "tune").mkdir(parents=True)
    paths.update(not_a_search=str(root / "not_a_search"), tune_only=str(root / "tune_only"))
    return paths


def env() -> dict[str, str]:
    e = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    e.pop("RAY_ADDRESS", None)  # never join someone else's Ray by accident
    return e


def command(kind: str, args: list[str], files: dict[str, str], out: Path) -> list[str]:
    flag = OUT_FLAG.get(kind, "--out")
    where = [flag, str(out)] if flag else []
    return [*COMMANDS[kind], *(a.format(**files) for a in args), *where]


def run_in(folder: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """`argv` with `folder` as the working directory (where a default --out would go)."""
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(argv, cwd=folder, env=env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def results(files, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every row run once, a few at a time (each fails within its imports)."""
    root = tmp_path_factory.mktemp("rows")

    def one(i: int, row: tuple) -> tuple[subprocess.CompletedProcess, Path]:
        name, kind, args, _ = row
        folder = root / f"row{i}"
        return run_in(folder, command(kind, args, files, folder / "out")), folder

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = pool.map(lambda pair: one(*pair), enumerate(ROWS))
        return {row[0]: result for row, result in zip(ROWS, done, strict=True)}


def assert_refused(done: subprocess.CompletedProcess, names: str) -> None:
    """Exit 2, one line that names `names`, no traceback."""
    shown = done.stdout[-2000:] + done.stderr[-2000:]
    assert done.returncode == 2, shown
    assert "Traceback" not in done.stdout + done.stderr, shown
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    assert names in lines[0], shown


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_hostile_input_is_refused_before_anything_is_written(row, results):
    done, folder = results[row[0]]
    assert_refused(done, row[3])
    assert list(folder.iterdir()) == []  # neither the fresh --out nor a default runs/


def test_the_table_covers_every_command_and_kind_of_input():
    assert len(ROWS) >= 30 and len({r[0] for r in ROWS}) == len(ROWS)
    assert {r[1] for r in ROWS} == set(COMMANDS)


@pytest.mark.slow
def test_a_search_out_folder_stays_usable_after_a_bad_command(files, tmp_path):
    """A bad search into an existing empty --out leaves it empty: the next search may use it
    (its checks before Ray, `driver.prepare`, accept the folder)."""
    from search import run as cli
    from search import settings
    from search.study import driver

    out = tmp_path / "out"
    out.mkdir()
    bad = command("search", [*SYNTH, "--smoke-test", "--set", "scale=nan"], files, out)
    assert_refused(run_in(tmp_path, bad), "data.scale")
    assert list(out.iterdir()) == []
    good = ["--dataset", "mosei", "--smoke-test", "--space", str(TINY_SPACE), "--out", str(out)]
    job = driver.prepare(settings.from_args(cli.parser().parse_args(good)), resume=False)
    assert job.out == out and job.base.data.scale == 0.02


@pytest.mark.slow
def test_a_train_out_folder_stays_usable_after_a_bad_command(files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(run_in(tmp_path, command("train", ["--seed", "-1"], files, out)), "--seed")
    assert list(out.iterdir()) == []
    tiny = ["--synthetic", "--epochs", "1", "--set", "scale=0.02", "--set", "hidden=16"]
    done = run_in(tmp_path, command("train", [*tiny, "--json"], files, out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "results.json").is_file()


HELD = ["--data", "{not_pickle}", "--set", "lr=0.002", "--train-seed", "7"]  # a recording's flags


@pytest.mark.slow
@pytest.mark.parametrize(
    "given, names",
    [(["--data", "{not_pickle}", "--set", "lr=0.003", "--train-seed", "7"],
      "--set lr=0.002, not lr=0.003"),
     (["--data", "{wrong_shape}", "--set", "lr=0.002", "--train-seed", "7"], "--data"),
     (["--data", "{not_pickle}", "--set", "lr=0.002", "--train-seed", "8"],
      "--train-seed 7, not 8"),
     (["--data", "{not_pickle}", "--train-seed", "7"], "--set lr=0.002, not (none)"),
     (["--set", "lr=0.002", "--train-seed", "7"], "--data")],
)  # fmt: skip
def test_record_refuses_a_work_folder_that_holds_another_recording(files, tmp_path, given, names):
    """A --work holding a recording of other data, pins or training seed is refused before
    anything runs, naming the flag; the folder is left as it was."""
    import json

    from search.bench import record

    work = tmp_path / "work"
    held = record.parser().parse_args([a.format(**files) for a in HELD])
    work.mkdir()
    (work / "search.json").write_text(json.dumps(record.settings_for(held, work).to_json()))
    before = {f.name: f.read_bytes() for f in work.iterdir()}
    assert_refused(run_in(tmp_path / "cwd", command("record", given, files, work)), names)
    assert {f.name: f.read_bytes() for f in work.iterdir()} == before
