"""`python -m atsuko.bench`: the real-lengths case and its keys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atsuko import bench


def test_real_text_lengths_come_from_label_csv_or_the_recorded_counts(real_data, tmp_path):
    from_csv, source = bench.real_text_lengths(real_data / "mosi" / "label.csv")
    recorded, fallback = bench.real_text_lengths(tmp_path / "absent.csv")
    assert source.endswith("label.csv") and "MOSI_TEXT_COUNTS" in fallback
    assert np.array_equal(np.sort(from_csv), np.sort(recorded))  # the same distribution
    assert 0.7 < np.mean((recorded >= 8) & (recorded <= 50)) < 0.9  # mostly 8-50 tokens


@pytest.mark.slow
def test_json_has_the_real_lengths_case(capsys):
    assert bench.main(["--json", "--steps", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("mosi_aligned", "mosi_unaligned", "mosei_aligned", "mosi_real_lengths"):
        assert doc[key] > 0
    assert 0 < doc["band_projection_share_real_lengths"] < 1
    assert 0 < doc["band_projection_share"] < 1
