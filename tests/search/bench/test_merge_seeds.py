"""Two recordings of the same configurations with two training seeds, merged into one table."""

from __future__ import annotations

import subprocess
import sys

from searchtest_util import REPO, env

from search.bench.curve_table import load_table, write_table
from search.bench.merge_seeds import merge

META = {"dataset": "mosi", "synthetic": False, "scale": None, "data_file": "aligned_50.pkl",
        "data_sha256": "ab" * 32, "metric": "MAE", "mode": "min", "max_epochs": 3,
        "patience": 5, "sampler": "random", "seed": 0, "space": [],
        "label_median_score": 1.2}  # fmt: skip


def _table(seed: int, params: list[dict], shift: float) -> dict:
    meta = dict(META, sets=["lr=0.002", f"train.seed={seed}"], train_seed=seed, command=f"s{seed}")
    trials = [{"trial_id": f"t{k}", "params": p, "scores": [1.0 + shift, 0.9 + shift],
               "seconds": [1.0, 1.0], "seed": seed} for k, p in enumerate(params)]  # fmt: skip
    return {"meta": meta, "trials": trials}


CONFIGS = [{"num_bands": 2}, {"num_bands": 5}, {"num_bands": 7}]


def _run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "search.bench.merge_seeds", *args]
    return subprocess.run(command, cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)


def test_the_second_seed_becomes_repeats_of_the_shared_configurations(tmp_path):
    first, second = _table(1111, CONFIGS, 0.0), _table(1112, CONFIGS[:2], 0.1)
    for name, table in (("a", first), ("b", second)):
        write_table(tmp_path / f"{name}.json.gz", table["meta"], table["trials"])
    done = _run(
        str(tmp_path / "a.json.gz"),
        str(tmp_path / "b.json.gz"),
        "--out",
        str(tmp_path / "m.json.gz"),
    )
    assert done.returncode == 0, done.stderr
    merged = load_table(tmp_path / "m.json.gz")
    trials = merged["trials"]
    assert [t["scores"] for t in trials] == [t["scores"] for t in first["trials"]]
    assert [r["seed"] for r in trials[0]["repeats"]] == [1112] and "repeats" not in trials[2]
    assert trials[1]["repeats"][0]["scores"] == [1.1, 1.0]
    assert merged["meta"]["repeats"] == {"command": "s1112", "seed": 1112, "trials": 2}


def test_curves_of_different_configurations_data_or_seed_are_not_merged(tmp_path):
    first = _table(1111, CONFIGS, 0.0)
    cases = {
        "trial 2 of the second table (t1) is a configuration the first never recorded": _table(
            1112, [CONFIGS[0], {"num_bands": 3}], 0.1
        ),
        "differ in data_sha256": _table(1112, CONFIGS, 0.1),
        "both tables were trained with seed 1111": _table(1111, CONFIGS, 0.1),
        "differ in their --set pins": _table(1112, CONFIGS, 0.1),
    }
    cases["differ in data_sha256"]["meta"]["data_sha256"] = "cd" * 32
    cases["differ in their --set pins"]["meta"]["sets"] = ["train.seed=1112"]
    for message, second in cases.items():
        try:
            merge(first, second)
        except ValueError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"merged although {message}")
    write_table(tmp_path / "a.json.gz", first["meta"], first["trials"])
    (tmp_path / "b.json.gz").write_text("not a table")
    done = _run(
        str(tmp_path / "a.json.gz"), str(tmp_path / "b.json.gz"), "--out", str(tmp_path / "m")
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "not a readable curve table" in done.stderr
    assert not (tmp_path / "m").exists()


def test_curves_pair_up_by_configuration_not_position():
    """A resumed recording lists its trials in another order than the sampler drew them."""
    first, second = _table(1111, CONFIGS[::-1], 0.0), _table(1112, CONFIGS[:2], 0.1)
    trials = merge(first, second)["trials"]
    by_bands = {t["params"]["num_bands"]: t for t in trials}
    assert [t["params"] for t in trials] == CONFIGS[::-1]  # the first table's order stays
    assert by_bands[2]["repeats"][0]["seed"] == 1112 and "repeats" not in by_bands[7]
    assert by_bands[5]["repeats"][0]["scores"] == [1.1, 1.0]
