"""Router diagnostics of a configuration: four ablation variants trained small, then w, alpha,
agreement with the complementarity distribution, and t-SNE of z."""

from __future__ import annotations

import numpy as np
import pytest

from atsuko import config as cfg
from atsuko.errors import ConfigError
from search.analysis.diagnostics import agreement, decider_hits, load_diagnostics, run_diagnostics


def test_agreement_and_decider_hits_count_top_ones():
    w = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    c = np.array([[0.5, 0.4, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    assert agreement(w, c) == pytest.approx(2 / 3)
    hits = decider_hits(
        np.array([0, 0, 2, 2]),  # top-1 index into the sorted modalities
        np.array([1, 0, 2, 3]),
        ["text", "audio", "vision", "audio+vision"],
        ["audio", "text", "vision"],
    )
    # deciders: audio, text, vision, audio+vision (which has no single right answer)
    assert hits == {"audio": 1.0, "text": 0.0, "vision": 1.0}


def test_no_config_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no best_config.yaml"):
        run_diagnostics(tmp_path)


@pytest.mark.slow
def test_four_variants_on_tiny_synthetic_data(tmp_path):
    config = cfg.resolve(
        None,
        {"data.synthetic": True, "data.scale": 0.05, "hidden": 16, "train.epochs": 1},
        dataset="mosi",
    )
    cfg.write(config, tmp_path / "best_config.yaml")
    run_diagnostics(tmp_path, samples=6, log=None)
    doc, arrays = load_diagnostics(tmp_path)
    assert set(doc["variants"]) == {"full", "no_mcm", "no_sbr", "baseline"}
    assert {(v["use_sbr"], v["use_mcm"]) for v in doc["variants"].values()} == {
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    }
    mods = doc["modalities"]
    assert mods == ["audio", "text", "vision"]
    for key in ("w_with_mcm", "w_without_mcm", "c"):
        assert arrays[key].shape == (6, 3)
        assert np.allclose(arrays[key].sum(axis=1), 1.0, atol=1e-3)
    for m, weights in doc["band_weights"].items():
        assert len(weights) == 3 and sum(weights) == pytest.approx(1.0, abs=1e-3), m
    agree = doc["agreement"]
    assert 0.0 <= agree["router_vs_complementarity"] <= 1.0 and agree["chance"] == 1 / 3
    assert set(doc["planted_hits"]["complementarity_top"]) <= {"text", "audio", "vision"}
    n = len(arrays["tsne_labels"])
    for name in doc["variants"]:
        assert arrays[f"tsne_{name}"].shape == (n, 2)
        assert np.all(np.isfinite(arrays[f"tsne_{name}"]))
    assert len(doc["data"]["sha256"]) == 64
