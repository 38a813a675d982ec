"""MCM: complementarity distribution, KL to the router, losses, warm-up, training-only branches."""

import pytest
import torch

from atsuko.model import Atsuko
from atsuko.model.mcm import (
    BimodalOutput,
    MarginalComplementarity,
    complementarity,
    kl_to_router,
    per_sample_loss,
)

SHAPES = {"audio": (12, 5), "text": (12, 24), "vision": (12, 7)}
MODS = sorted(SHAPES)


def build(tiny, **overrides):
    torch.manual_seed(0)
    dims = {m: d for m, (_, d) in SHAPES.items()}
    return Atsuko(config=tiny(**overrides), dims=dims, num_outputs=1, task="regression")


def test_c_sums_to_one_and_passes_no_gradient():
    delta = torch.randn(7, 3, requires_grad=True)
    c = complementarity(delta, tau=0.5)
    assert torch.allclose(c.sum(-1), torch.ones(7))
    assert not c.requires_grad and c.grad_fn is None


def test_c_ranks_the_modality_whose_removal_hurts_most():
    delta = torch.tensor([[0.1, 2.0, 0.0], [3.0, 0.0, -1.0]])
    c = complementarity(delta, tau=1.0)
    assert c.argmax(-1).tolist() == [1, 0]
    assert (complementarity(delta, tau=1e-3).max(-1).values > 0.99).all()
    assert torch.allclose(complementarity(delta, tau=1e4), torch.full((2, 3), 1 / 3), atol=1e-3)


def test_kl_is_zero_when_w_equals_c_and_positive_otherwise():
    c = torch.softmax(torch.randn(5, 3), -1)
    assert kl_to_router(c, c.log()).abs() < 1e-6
    w_logits = torch.randn(5, 3, requires_grad=True)
    kl = kl_to_router(c, torch.log_softmax(w_logits, -1))
    assert kl > 0
    kl.backward()
    assert w_logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="c and log w"):
        kl_to_router(c, c.log()[:, :2])


def test_kl_stays_finite_for_one_hot_targets():
    c = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.isfinite(kl_to_router(c, torch.log_softmax(torch.randn(1, 3), -1)))


def test_per_sample_losses():
    pred, y = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 1.0])
    assert torch.allclose(per_sample_loss(pred, y, "regression"), torch.tensor([0.5, 3.0]))
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    ce = per_sample_loss(logits, torch.tensor([0, 0]), "classification")
    assert ce[0] < ce[1]
    with pytest.raises(ValueError, match="regression"):
        per_sample_loss(pred[:, None], y, "regression")
    with pytest.raises(ValueError, match="classification"):
        per_sample_loss(pred, y.long(), "classification")


def test_moving_average_of_c_is_a_buffer_and_a_distribution():
    mcm = MarginalComplementarity(
        modalities=MODS, dim=8, num_outputs=1, task="regression", c_ema=0.9
    )
    assert "c_running" in dict(mcm.named_buffers())
    delta = torch.tensor([[5.0, 0.0, 0.0]] * 4)
    c = mcm.target(delta)
    assert torch.allclose(c.sum(-1), torch.ones(4))
    assert mcm.c_running[0] > 1 / 3  # moved toward the observed distribution
    raw = complementarity(delta, 1.0)
    assert (c[:, 0] < raw[:, 0]).all()  # smoothed toward the running mean
    before = mcm.c_running.clone()
    mcm.eval()
    mcm.target(delta)
    assert torch.equal(mcm.c_running, before)  # no update outside training


def test_bimodal_branch_of_m_ignores_m():
    mcm = MarginalComplementarity(modalities=MODS, dim=8, num_outputs=1, task="regression")
    pooled = {m: torch.randn(3, 8) for m in MODS}
    out = mcm(pooled)
    changed = dict(pooled, audio=torch.randn(3, 8))
    out2 = mcm(changed)
    assert torch.equal(out.preds["audio"], out2.preds["audio"])
    assert not torch.equal(out.preds["text"], out2.preds["text"])


def test_branches_do_not_run_at_inference(tiny, make_batch):
    model = build(tiny)
    calls = []
    for m in MODS:
        model.mcm.fuse[m].register_forward_hook(lambda *_: calls.append(1))
        model.mcm.head[m].register_forward_hook(lambda *_: calls.append(1))
    feats, lens = make_batch(SHAPES)
    model.eval()
    with torch.no_grad():
        out = model(feats, lens)
    assert out.bimodal is None and calls == []
    loss = model.loss(out, torch.zeros(4), epoch=5)
    assert loss.c is None and loss.terms["bi"] == loss.terms["mcm"] == loss.terms["kd"] == 0
    model.train()
    out = model(feats, lens)
    assert isinstance(out.bimodal, BimodalOutput) and len(calls) == 2 * len(MODS)
    assert model(feats, lens, branches=False).bimodal is None


def test_branches_on_request_in_eval_mode_for_analysis(tiny, make_batch, make_labels):
    model = build(tiny, c_ema=0.5).eval()
    feats, lens = make_batch(SHAPES)
    with torch.no_grad():
        out = model(feats, lens, branches=True)
        res = model.loss(out, make_labels("regression"), epoch=5)
        again = model.loss(model(feats, lens, branches=True), make_labels("regression"), epoch=5)
    assert out.bimodal is not None and res.c.shape == (4, 3)
    assert torch.equal(res.c, again.c)  # deterministic; the moving average is not updated
    assert torch.allclose(model.mcm.c_running, torch.full((3,), 1 / 3))


def test_ablation_has_no_branches(tiny, make_batch):
    model = build(tiny, use_mcm=False)
    assert model.mcm is None
    assert not any(name.startswith("mcm.") for name, _ in model.named_parameters())
    feats, lens = make_batch(SHAPES)
    out = model.train()(feats, lens)
    assert out.bimodal is None


def test_warm_up_delays_the_kl_term_only(tiny, make_batch, make_labels):
    model = build(
        tiny, mcm_warmup_epochs=2, lambda_mcm=0.7, lambda_bi=0.3, lambda_kd=0.2, dropout=0.0
    )
    feats, lens = make_batch(SHAPES)
    y = make_labels("regression")
    out = model.train()(feats, lens)
    for epoch, lam in ((1, 0.0), (2, 0.0), (3, 0.7)):
        res = model.loss(out, y, epoch=epoch)
        t = res.terms
        expected = t["task"] + 0.3 * t["bi"] + lam * t["mcm"] + 0.2 * t["kd"]
        assert res.total.item() == pytest.approx(expected, rel=1e-5)
        assert t["mcm"] > 0 and t["bi"] > 0 and t["kd"] > 0
        assert torch.allclose(res.c.sum(-1), torch.ones(4)) and not res.c.requires_grad


def test_kl_gradient_reaches_the_router_not_the_branches(tiny, make_batch, make_labels):
    model = build(tiny, dropout=0.0)
    feats, lens = make_batch(SHAPES)
    y = make_labels("regression")
    out = model.train()(feats, lens)
    full = per_sample_loss(out.pred, y, "regression")
    terms = model.mcm.losses(out.bimodal, labels=y, full_loss=full, z=out.z, log_w=out.log_w)
    terms.mcm.backward()
    assert model.router.post["audio"][0].weight.grad.abs().sum() > 0
    assert model.mcm.head["audio"].weight.grad is None  # c is detached: no path to branches
    assert model.head[0].weight.grad is None


def test_delta_uses_the_branch_and_full_losses():
    mcm = MarginalComplementarity(modalities=MODS, dim=4, num_outputs=1, task="regression")
    y = torch.zeros(2)
    preds = {"audio": torch.tensor([3.0, 0.0]), "text": torch.zeros(2), "vision": torch.zeros(2)}
    bimodal = BimodalOutput(preds=preds, z={m: torch.zeros(2, 4) for m in MODS})
    terms = mcm.losses(
        bimodal,
        labels=y,
        full_loss=torch.zeros(2),
        z=torch.zeros(2, 4),
        log_w=torch.full((2, 3), 1 / 3).log(),
    )
    assert terms.c[0].argmax() == 0  # removing audio hurts sample 0
    assert torch.allclose(terms.c[1], torch.full((3,), 1 / 3))
    assert terms.bi.item() == pytest.approx(0.5)  # mean over samples and modalities of |y_-m - y|
