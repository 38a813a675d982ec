"""`python -m atsuko.bench`: the real-lengths case and its keys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atsuko import bench


def test_without_label_csv_the_benchmark_uses_the_recorded_counts(monkeypatch, tmp_path):
    """The path the benchmark takes where the real files are absent, taken here everywhere:
    the 2195 recorded MOSI utterances, 5 of 3 tokens up to 17 of 50."""
    monkeypatch.setattr(bench, "LABEL_CSV", tmp_path / "absent.csv")
    lengths, source = bench.real_text_lengths()  # as `measure` and `main` call it
    assert source == "atsuko.data.synthetic.MOSI_TEXT_COUNTS"
    assert len(lengths) == 2195 and lengths.min() == 3 and lengths.max() == 50
    assert np.sum(lengths == 3) == 5 and np.sum(lengths == 50) == 17
    assert 0.7 < np.mean((lengths >= 8) & (lengths <= 50)) < 0.9  # mostly 8-50 tokens


def test_with_label_csv_the_lengths_are_its_own_and_match_the_recorded_counts(
    real_data, monkeypatch, tmp_path
):
    monkeypatch.setattr(bench, "LABEL_CSV", real_data / "mosi" / "label.csv")
    from_csv, source = bench.real_text_lengths()
    monkeypatch.setattr(bench, "LABEL_CSV", tmp_path / "absent.csv")
    recorded, _ = bench.real_text_lengths()
    assert source.endswith("label.csv")
    assert np.array_equal(np.sort(from_csv), np.sort(recorded))  # the same distribution


@pytest.mark.slow
def test_json_has_the_real_lengths_case(capsys):
    assert bench.main(["--json", "--steps", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("mosi_aligned", "mosi_unaligned", "mosei_aligned", "mosi_real_lengths"):
        assert doc[key] > 0
    assert 0 < doc["band_projection_share_real_lengths"] < 1
    assert 0 < doc["band_projection_share"] < 1
