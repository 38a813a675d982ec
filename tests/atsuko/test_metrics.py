"""The field's metrics: hand-computed cases and the real MOSI test labels."""

import csv

import numpy as np
import pytest

from atsuko.errors import DataError
from atsuko.metrics import score, sims_bins


def test_mosi_half_integers_round_to_even():
    truth = np.array([2.5, -2.5, 0.5, 1.5])
    pred = np.array(
        [2.0, -2.0, 0.0, 2.0]
    )  # round(2.5)=2, round(-2.5)=-2, round(.5)=0, round(1.5)=2
    out = score("mosi", pred, truth)
    assert out["Mult_acc_7"] == 1.0
    assert out["Mult_acc_5"] == 1.0


def test_mosi_clipping_and_unclipped_mae():
    truth = np.array([3.0, -3.0])
    pred = np.array([10.0, -2.6])  # clipped to 3 and rounds to -3: both right for Acc-7
    out = score("mosi", pred, truth)
    assert out["Mult_acc_7"] == 1.0
    assert out["Mult_acc_5"] == 1.0  # both clip to +-2
    assert out["MAE"] == pytest.approx((7.0 + 0.4) / 2)  # MAE is unclipped


def test_mosi_zero_labels_has0_vs_non0():
    truth = np.array([0.0, 0.0, 1.0, -1.0])
    pred = np.array([0.5, -0.5, 1.0, 1.0])
    out = score("mosi", pred, truth)
    # Has0: 0 counts as non-negative: [T, F, T, F]
    assert out["Has0_acc_2"] == pytest.approx(0.5)
    # Non0 drops the zero labels: rows 3 and 4 -> [T, F]
    assert out["Non0_acc_2"] == pytest.approx(0.5)


def test_mosi_perfect_and_correlation():
    truth = np.linspace(-3, 3, 19)
    out = score("mosi", truth.copy(), truth)
    assert out["MAE"] == 0 and out["Corr"] == pytest.approx(1.0)
    assert out["Has0_F1_score"] == pytest.approx(1.0)


def test_sims_bins_right_closed():
    v = np.array([-1.0, -0.7, -0.69, -0.1, 0.0, 0.1, 0.11, 0.7, 0.71, 1.0])
    assert sims_bins(v, 2).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert sims_bins(v, 3).tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert sims_bins(v, 5).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_sims_clips_before_mae():
    out = score("sims", np.array([2.0, -0.2]), np.array([1.0, -0.2]))
    assert out["MAE"] == 0.0
    assert out["Mult_acc_2"] == out["Mult_acc_3"] == out["Mult_acc_5"] == 1.0
    assert set(out) == {"Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr"}


def test_intents_macro_and_weighted():
    truth = np.array([0, 0, 0, 1])
    logits = np.eye(2)[[0, 0, 1, 1]]
    out = score("mintrec", logits, truth)
    assert out["acc"] == pytest.approx(0.75)
    # class 0: P=1, R=2/3, F1=.8; class 1: P=.5, R=1, F1=2/3
    assert out["f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert out["f1_weighted"] == pytest.approx(0.75 * 0.8 + 0.25 * 2 / 3)
    assert out["precision"] == pytest.approx(0.75)


def test_bad_input():
    with pytest.raises(DataError, match="3 predictions for 2 labels"):
        score("mosi", np.zeros(3), np.zeros(2))
    with pytest.raises(DataError, match="no metrics"):
        score("iemocap", np.zeros(2), np.zeros(2))


def test_real_mosi_constant_negative_predictor(real_data):
    """SOURCES.md: constant just-below-zero predictor on MOSI test (685 rows, 30 zeros)."""
    rows = [
        r for r in csv.DictReader(open(real_data / "mosi" / "label.csv")) if r["mode"] == "test"
    ]
    truth = np.array([float(r["label"]) for r in rows])
    assert len(truth) == 685 and (truth == 0).sum() == 30
    out = score("mosi", np.full_like(truth, -0.01), truth)
    assert out["Has0_acc_2"] == pytest.approx(0.5518, abs=1e-4)
    assert out["Non0_acc_2"] == pytest.approx(0.5771, abs=1e-4)
    assert out["Mult_acc_7"] == pytest.approx(0.1547, abs=1e-4)
    assert out["MAE"] == pytest.approx(1.4155, abs=1e-4)
    assert out["Corr"] == 0.0


def test_real_mintrec_majority_class(real_data):
    from atsuko.data.registry import get_spec

    classes = list(get_spec("mintrec").classes)
    rows = list(csv.DictReader(open(real_data / "mintrec" / "test.tsv"), delimiter="\t"))
    truth = np.array([classes.index(r["label"]) for r in rows])
    out = score("mintrec", np.zeros_like(truth), truth)  # always Complain
    assert out["acc"] == pytest.approx(0.1281, abs=1e-4)
    assert out["f1"] == pytest.approx(0.0114, abs=1e-4)
