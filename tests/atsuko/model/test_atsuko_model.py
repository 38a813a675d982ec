"""The full model: every variant trains a step without NaN; masking; modalities by name."""

import pytest
import torch

from atsuko.errors import ConfigError, DataError
from atsuko.model import Atsuko, AtsukoOutput, LossOutput

VARIANTS = {
    "default": {},
    "no_sbr": {"use_sbr": False},
    "no_mcm": {"use_mcm": False},
    "baseline": {"use_sbr": False, "use_mcm": False},
    "knn": {"graph": "knn", "knn_k": 3},
    "log": {"band_split": "log", "num_bands": 4},
    "one_band": {"num_bands": 1},
    "top_k": {"band_top_k": 1, "tau_band": 0.05},
    "gate": {"router_mix": "gate"},
    "conv": {"proj": "conv", "proj_kernel": 3},
    "conv_even": {"proj": "conv", "proj_kernel": 4},
    "ema": {"c_ema": 0.5, "tau_c": 0.05},
    "hot": {"tau_mod": 0.05, "tau_c": 10.0, "lambda_mcm": 1.0, "mcm_warmup_epochs": 0},
    "deep": {"layers": 2, "heads": 4},
}
FOUR = {"audio": (9, 5), "depth": (14, 3), "text": (9, 24), "vision": (11, 7)}
TWO = {"text": (9, 24), "vision": (11, 7)}


def build(config, shapes, task="regression", classes=5):
    torch.manual_seed(0)
    dims = {m: d for m, (_, d) in shapes.items()}
    outputs = 1 if task == "regression" else classes
    return Atsuko(config=config, dims=dims, num_outputs=outputs, task=task)


def train_step(model, feats, lens, y, epoch=3):
    model.train()
    out = model(feats, lens)
    res = model.loss(out, y, epoch=epoch)
    model.zero_grad()
    res.total.backward()
    return out, res


def check_finite(model, out, res, batch=4):
    assert isinstance(out, AtsukoOutput) and isinstance(res, LossOutput)
    assert torch.isfinite(res.total)
    assert all(torch.isfinite(torch.tensor(v)) for v in res.terms.values())
    assert set(res.terms) == {"task", "bi", "mcm", "kd"}
    grads = [(n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    assert grads, "no gradient reached the parameters"
    for name, grad in grads:
        assert torch.isfinite(grad).all(), f"non-finite gradient in {name}"
    M = len(model.modalities)
    assert out.w.shape == (batch, M) and torch.allclose(out.w.sum(-1), torch.ones(batch))
    assert out.z.shape == (batch, model.config.hidden)
    assert set(out.pooled) == set(model.modalities)


@pytest.mark.parametrize("layout", ["aligned", "unaligned"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_trains_without_nan(variant, layout, tiny, make_batch, make_labels, shapes):
    config = tiny(**VARIANTS[variant])
    model = build(config, shapes[layout])
    feats, lens = make_batch(shapes[layout], variable=layout == "unaligned")
    out, res = train_step(model, feats, lens, make_labels("regression"))
    check_finite(model, out, res)
    assert out.pred.shape == (4,)
    if config.use_sbr:
        assert set(out.alpha) == set(model.modalities)
        for alpha in out.alpha.values():
            assert alpha.shape == (4, config.num_bands)
            assert torch.allclose(alpha.sum(-1), torch.ones(4))
    else:
        assert out.alpha == {}
    assert (out.bimodal is not None) == config.use_mcm
    assert (res.c is not None) == config.use_mcm
    model.eval()
    with torch.no_grad():
        pred = model(feats, lens).pred
    assert torch.isfinite(pred).all()


@pytest.mark.parametrize("variant", ["default", "baseline", "knn", "gate"])
def test_classification(variant, tiny, make_batch, make_labels, shapes):
    model = build(tiny(**VARIANTS[variant]), shapes["unaligned"], task="classification", classes=20)
    feats, lens = make_batch(shapes["unaligned"], variable=True)
    out, res = train_step(model, feats, lens, make_labels("classification", classes=20))
    check_finite(model, out, res)
    assert out.pred.shape == (4, 20)
    if out.bimodal is not None:
        assert all(p.shape == (4, 20) for p in out.bimodal.preds.values())


@pytest.mark.parametrize("layout", [TWO, FOUR], ids=["two", "four"])
@pytest.mark.parametrize("variant", ["default", "gate", "baseline"])
def test_two_and_four_modalities(layout, variant, tiny, make_batch, make_labels):
    model = build(tiny(**VARIANTS[variant]), layout)
    feats, lens = make_batch(layout, variable=True)
    out, res = train_step(model, feats, lens, make_labels("regression"))
    check_finite(model, out, res)
    assert model.modalities == sorted(layout)
    if out.bimodal is not None:
        assert sorted(out.bimodal.preds) == sorted(layout)


def test_modalities_are_keyed_by_name_not_position(tiny, make_batch, shapes):
    shapes_ = shapes["unaligned"]
    forward = build(tiny(), dict(sorted(shapes_.items())))
    backward = build(tiny(), dict(sorted(shapes_.items(), reverse=True)))
    feats, lens = make_batch(shapes_, variable=True)
    reordered = {m: feats[m] for m in reversed(sorted(feats))}
    with torch.no_grad():
        a = forward.eval()(feats, lens)
        b = backward.eval()(reordered, lens)
    assert torch.equal(a.pred, b.pred) and torch.equal(a.w, b.w)


@pytest.mark.parametrize("variant", ["default", "conv", "knn", "baseline"])
def test_padding_does_not_change_the_output(variant, tiny, make_batch, shapes):
    shapes_ = shapes["unaligned"]
    model = build(tiny(**VARIANTS[variant]), shapes_).eval()
    feats, lens = make_batch(shapes_, variable=True)
    noisy = {}
    for m, x in feats.items():
        pad = torch.arange(x.shape[1])[None, :] >= lens[m][:, None]  # (B, T)
        noisy[m] = x + 5.0 * torch.randn_like(x) * pad[..., None]
    with torch.no_grad():
        a, b = model(feats, lens), model(noisy, lens)
    assert torch.allclose(a.pred, b.pred, atol=1e-5)
    assert torch.allclose(a.w, b.w, atol=1e-5)


def test_eval_is_deterministic(tiny, make_batch, shapes):
    model = build(tiny(), shapes["aligned"]).eval()
    feats, lens = make_batch(shapes["aligned"])
    with torch.no_grad():
        assert torch.equal(model(feats, lens).pred, model(feats, lens).pred)


def test_parameter_names_suit_rank_based_optimizer_groups(tiny, shapes):
    model = build(tiny(router_mix="gate"), shapes["aligned"])
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if p.ndim < 2:
            assert leaf.startswith("bias") or "norm" in name, name
        else:
            assert not leaf.startswith("bias") and "norm" not in name, name
    groups = model.optimizer_groups(0.01)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert groups[1]["weight_decay"] == 0.0


def _short(lens, rows):
    """Lengths 0, 1, 2 (0 is read as one step) on the given rows of every modality."""
    for m in lens:
        for row, n in zip(rows, (0, 1, 2), strict=False):
            lens[m][row] = n
    return lens


@pytest.mark.parametrize("graph", ["path", "knn"])
@pytest.mark.parametrize("split", ["uniform", "log"])
@pytest.mark.parametrize("num_bands", [1, 3, 8])
def test_sequences_shorter_than_the_bands_train(
    tiny, make_batch, make_labels, shapes, graph, split, num_bands
):
    model = build(tiny(num_bands=num_bands, band_split=split, graph=graph), shapes["unaligned"])
    feats, lens = make_batch(shapes["unaligned"], batch=6, variable=True)
    lens = _short(lens, [1, 2, 3])
    for m, x in feats.items():
        x[torch.arange(x.shape[1])[None, :] >= lens[m][:, None]] = 0
    out, res = train_step(model, feats, lens, make_labels("regression", 6))
    check_finite(model, out, res, batch=6)
    for m, alpha in out.alpha.items():
        present = out.band_mask[m]
        assert present.shape == alpha.shape == (6, num_bands)
        assert present[:, 0].all()  # band 0 (the constant frequency) always exists
        assert torch.allclose(alpha.sum(-1), torch.ones(6))
        assert (alpha[~present] == 0).all()  # an empty band gets no weight
        assert present[0].all()  # a full-length row has every band
    assert out.band_mask["text"][2].sum() == 1  # one step: band 0 only


@pytest.mark.parametrize("graph", ["path", "knn"])
def test_long_samples_are_unchanged_by_short_ones_in_the_batch(tiny, make_batch, shapes, graph):
    """A sample at least K long gives the same outputs alone as beside short samples."""
    model = build(tiny(num_bands=8, graph=graph, dropout=0.0), shapes["unaligned"]).eval()
    feats, lens = make_batch(shapes["unaligned"], batch=5, variable=True, seed=3)
    for m in lens:
        lens[m][1:] = lens[m][1:].clamp(min=8)
    short_feats = {m: x.clone() for m, x in feats.items()}
    short_lens = _short({m: n.clone() for m, n in lens.items()}, [2, 3, 4])
    for m, x in short_feats.items():
        x[torch.arange(x.shape[1])[None, :] >= short_lens[m][:, None]] = 0
    with torch.no_grad():
        mixed = model(short_feats, short_lens)
        for row in (0, 1):
            alone = model(
                {m: x[row : row + 1] for m, x in feats.items()},
                {m: n[row : row + 1] for m, n in lens.items()},
            )
            assert torch.allclose(alone.pred, mixed.pred[row : row + 1], atol=1e-5)
            for m in alone.alpha:
                assert torch.allclose(alone.alpha[m], mixed.alpha[m][row : row + 1], atol=1e-5)
                assert mixed.band_mask[m][row].all()


def test_bad_construction_is_a_config_error(tiny):
    with pytest.raises(ConfigError, match="two modalities"):
        Atsuko(config=tiny(), dims={"text": 8}, num_outputs=1, task="regression")
    with pytest.raises(ConfigError, match="task"):
        Atsuko(config=tiny(), dims={"text": 8, "audio": 3}, num_outputs=1, task="ranking")
    with pytest.raises(ConfigError, match="num_outputs"):
        Atsuko(config=tiny(), dims={"text": 8, "audio": 3}, num_outputs=3, task="regression")
    with pytest.raises(ConfigError, match="proj"):
        Atsuko(
            config=tiny(proj="mlp"), dims={"text": 8, "audio": 3}, num_outputs=1, task="regression"
        )


def test_missing_modality_is_a_data_error(tiny, make_batch, shapes):
    model = build(tiny(), shapes["aligned"])
    feats, lens = make_batch(shapes["aligned"])
    del feats["vision"]
    with pytest.raises(DataError, match="vision"):
        model(feats, lens)
