"""`python -m atsuko.data`: exit 0 on usable input, exit 2 with one line and no traceback else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "atsuko.data", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    for fragment in fragments:
        assert fragment in last, (fragment, last)


@pytest.mark.slow
def test_synth_check_convert(tmp_path):
    made = cli(
        "synth", "--dataset", "mosei", "--out", tmp_path / "d", "--scale", "0.002", "--seed", "3"
    )
    assert made.returncode == 0, made.stderr
    path = Path(made.stdout.strip())
    assert path == tmp_path / "d" / "aligned_50.pkl" and path.is_file()
    checked = cli("check", path)
    assert checked.returncode == 0, checked.stderr
    out = checked.stdout
    assert "dataset: mosei (CMU-MOSEI)" in out and "train: 33 rows" in out
    assert "audio   (N, T, d) = (33, 50, 74)" in out and "usable: yes" in out
    assert "non-finite values replaced with 0: 0" in out and "planted text band 0" in out
    converted = cli("convert", path, tmp_path / "m.npz")
    assert converted.returncode == 0, converted.stderr
    assert converted.stdout.strip().splitlines()[-1] == str(tmp_path / "m.npz")
    again = cli("check", tmp_path / "m.npz")
    assert again.returncode == 0 and "dataset: mosei" in again.stdout


@pytest.mark.slow
def test_synth_mintrec_unaligned_folder(tmp_path):
    made = cli(
        "synth", "--dataset", "mintrec", "--out", tmp_path, "--scale", "0.001", "--unaligned"
    )
    assert made.returncode == 0, made.stderr
    assert Path(made.stdout.strip()) == tmp_path and (tmp_path / "video_feats.pkl").is_file()


def test_check_infers_and_reports_repairs(mmsa_file):
    def spoil(obj):
        obj["train"]["audio"][0, 0, 0] = np.nan
        obj["valid"]["regression_labels"][0] = 3.4

    result = cli("check", mmsa_file(spoil))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dataset: mosi" in out and "non-finite values replaced with 0: 1" in out
    assert "train/audio: 1" in out and "1 labels outside mosi's range" in out
    assert "Warning" not in result.stderr


def test_check_missing_file(tmp_path):
    assert_user_error(cli("check", tmp_path / "aligned_50.pkl"), "aligned_50.pkl", "--synthetic")


def test_check_bad_pickle(mmsa_file):
    path = mmsa_file(lambda o: o["train"].pop("vision"))
    assert_user_error(cli("check", path, "--dataset", "mosi"), "split 'train' has no key 'vision'")
    path.write_bytes(b"\x80\x04garbage")
    assert_user_error(cli("check", path, "--dataset", "mosi"), "not a readable pickle")


@pytest.mark.slow
def test_bad_flags(tmp_path):
    assert_user_error(
        cli("synth", "--dataset", "sims", "--aligned", "--out", tmp_path), "unaligned only"
    )
    assert_user_error(cli("synth", "--dataset", "iemocap", "--out", tmp_path), "invalid choice")
    assert_user_error(
        cli("synth", "--dataset", "mosi", "--out", tmp_path, "--scale", "0"), "--scale"
    )
    assert_user_error(cli("convert", tmp_path / "x.pkl", tmp_path / "x.bin"), "must end in .npz")
