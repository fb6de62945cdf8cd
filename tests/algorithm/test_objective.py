"""The PPO-style clipped objective (Appendix F): values, aggregation modes, gradient
accumulation with agg_denom, dual-clip, entropy/KL terms, metrics and masking."""

from __future__ import annotations

import math

import pytest
import torch

from asymcli.algorithm.objective import LOSS_AGG_MODES, aggregate, policy_loss

torch.set_num_threads(1)


def batch(seed=0, B=6, T=7, scale=0.3):
    gen = torch.Generator().manual_seed(seed)
    old = -torch.rand(B, T, generator=gen, dtype=torch.float64) * 3
    logp = (old + scale * torch.randn(B, T, generator=gen, dtype=torch.float64)).requires_grad_(True)
    adv = torch.randn(B, generator=gen, dtype=torch.float64)
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    mask = torch.arange(T)[None, :] < lengths[:, None]
    return logp, old, adv, mask


def reference_loss(logp, old, adv, mask, lo, hi, agg, max_len=None, c=None):
    """Per-token loop over the textbook formula."""
    B, T = logp.shape
    per_seq_sum = [0.0] * B
    per_seq_n = [0] * B
    for b in range(B):
        for t in range(T):
            if not mask[b, t]:
                continue
            r = math.exp(float(logp[b, t].detach() - old[b, t]))
            a = float(adv[b])
            obj = min(r * a, min(max(r, 1 - lo), 1 + hi) * a)
            loss = -obj
            if c is not None and a < 0:
                loss = min(loss, -c * a)
            per_seq_sum[b] += loss
            per_seq_n[b] += 1
    if agg == "token-mean":
        return sum(per_seq_sum) / sum(per_seq_n)
    if agg == "seq-mean-token-mean":
        return sum(s / n for s, n in zip(per_seq_sum, per_seq_n)) / B
    return sum(s / max_len for s in per_seq_sum) / B


@pytest.mark.parametrize("agg", LOSS_AGG_MODES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loop_reference(agg, seed):
    logp, old, adv, mask = batch(seed)
    loss, _ = policy_loss(logp, old, adv, mask, clip_eps_low=0.2, clip_eps_high=0.28,
                          loss_agg=agg, max_len=10)
    assert loss.item() == pytest.approx(reference_loss(logp, old, adv, mask, 0.2, 0.28, agg, 10), rel=1e-10)


@pytest.mark.parametrize("seed", [0, 3])
def test_dual_clip_matches_reference(seed):
    logp, old, adv, mask = batch(seed, scale=1.5)
    loss, m = policy_loss(logp, old, adv, mask, dual_clip_c=3.0)
    assert loss.item() == pytest.approx(reference_loss(logp, old, adv, mask, 0.2, 0.2, "token-mean", c=3.0), rel=1e-10)
    assert "clipfrac_dual" in m


def test_hand_values_and_gradient_at_ratio_one():
    # ratio = 1: loss = -agg(A) and d loss / d logp = -A / n_tokens on each masked token.
    old = torch.zeros(2, 3, dtype=torch.float64)
    logp = old.clone().requires_grad_(True)
    adv = torch.tensor([2.0, -1.0], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    loss, m = policy_loss(logp, old, adv, mask)
    assert loss.item() == pytest.approx(-(2 * 2 - 1 * 3) / 5)
    loss.backward()
    want = torch.tensor([[-2 / 5, -2 / 5, 0.0], [1 / 5, 1 / 5, 1 / 5]], dtype=torch.float64)
    assert torch.allclose(logp.grad, want)
    assert m["ratio_mean"] == pytest.approx(1.0) and m["ratio_max"] == pytest.approx(1.0)
    assert m["clipfrac_low"] == 0.0 and m["clipfrac_high"] == 0.0
    assert m["approx_kl"] == pytest.approx(0.0)
    assert m["n_tokens"] == 5.0


def test_clip_cuts_gradient_and_fractions():
    # Token 0: A > 0, ratio 1.5 > 1.2 -> clipped (high). Token 1: A < 0, ratio 0.5 < 0.8 ->
    # clipped (low). Token 2: A > 0, ratio 0.5 -> not clipped (pessimistic side).
    old = torch.zeros(1, 3, dtype=torch.float64)
    logp = torch.log(torch.tensor([[1.5, 0.5, 0.5]], dtype=torch.float64)).requires_grad_(True)
    adv = torch.tensor([[1.0, -1.0, 1.0]], dtype=torch.float64)
    mask = torch.ones(1, 3, dtype=torch.bool)
    loss, m = policy_loss(logp, old, adv, mask)
    assert loss.item() == pytest.approx(-(1.2 - 0.8 + 0.5) / 3)
    loss.backward()
    assert logp.grad[0, 0] == 0 and logp.grad[0, 1] == 0 and logp.grad[0, 2] != 0
    assert m["clipfrac_high"] == pytest.approx(1 / 3)
    assert m["clipfrac_low"] == pytest.approx(1 / 3)


def test_dual_clip_caps_negative_advantage_loss():
    # A = -1, ratio = 10: the PPO loss is -min(-10, -1.2) = 10; dual-clip caps it at c*|A| = 3.
    old = torch.zeros(1, 2, dtype=torch.float64)
    logp = torch.log(torch.tensor([[10.0, 1.0]], dtype=torch.float64)).requires_grad_(True)
    adv = torch.tensor([-1.0], dtype=torch.float64)
    mask = torch.tensor([[True, False]])
    loss, m = policy_loss(logp, old, adv, mask)
    assert loss.item() == pytest.approx(10.0)
    loss, m = policy_loss(logp, old, adv, mask, dual_clip_c=3.0)
    assert loss.item() == pytest.approx(3.0)
    loss.backward()
    assert logp.grad[0, 0] == 0
    assert m["clipfrac_dual"] == 1.0
    # Positive advantages are never dual-clipped.
    loss, _ = policy_loss(logp.detach(), old, -adv, mask, dual_clip_c=3.0)
    assert loss.item() == pytest.approx(-1.2)


def test_token_advantages_equal_broadcast():
    logp, old, adv, mask = batch(4)
    l1, _ = policy_loss(logp, old, adv, mask)
    l2, _ = policy_loss(logp, old, adv[:, None].expand_as(logp), mask)
    assert l1.item() == pytest.approx(l2.item())


@pytest.mark.parametrize("agg", LOSS_AGG_MODES)
def test_gradient_accumulation_with_agg_denom(agg):
    logp, old, adv, mask = batch(5, B=8)
    kw = dict(loss_agg=agg, max_len=9, clip_eps_high=0.28)
    full, _ = policy_loss(logp, old, adv, mask, **kw)
    (g_full,) = torch.autograd.grad(full, logp)
    denom = float(mask.sum()) if agg == "token-mean" else float(logp.shape[0])
    total = 0.0
    g_acc = torch.zeros_like(logp)
    for rows in (slice(0, 3), slice(3, 8)):
        part = logp.detach()[rows].clone().requires_grad_(True)
        loss, _ = policy_loss(part, old[rows], adv[rows], mask[rows], agg_denom=denom, **kw)
        loss.backward()
        total += loss.item()
        g_acc[rows] = part.grad
    assert total == pytest.approx(full.item(), rel=1e-12)
    assert torch.allclose(g_acc, g_full, atol=1e-14)


def test_entropy_bonus_and_kl():
    logp, old, adv, mask = batch(6)
    ent = torch.rand_like(logp).requires_grad_(True)
    base, _ = policy_loss(logp, old, adv, mask)
    with_ent, m = policy_loss(logp, old, adv, mask, entropy=ent, entropy_coef=0.01)
    agg_ent = aggregate(ent.detach(), mask)
    assert with_ent.item() == pytest.approx(base.item() - 0.01 * agg_ent.item())
    assert m["entropy"] == pytest.approx(agg_ent.item())
    with_ent.backward()
    assert torch.allclose(ent.grad, torch.where(mask, -0.01 / mask.sum(), 0.0).double())
    # KL to an identical reference is 0; to a different one it is k3 >= 0 and enters the loss.
    same, m = policy_loss(logp, old, adv, mask, ref_logp=logp.detach(), kl_coef=0.1)
    assert same.item() == pytest.approx(base.item()) and m["kl"] == pytest.approx(0.0)
    ref = logp.detach() - 0.3
    with_kl, m = policy_loss(logp, old, adv, mask, ref_logp=ref, kl_coef=0.1)
    k3 = math.exp(-0.3) + 0.3 - 1
    assert m["kl"] == pytest.approx(k3)
    assert with_kl.item() == pytest.approx(base.item() + 0.1 * k3)
    # Metrics only: entropy/ref given with coefficient 0 leave the loss unchanged.
    same, m = policy_loss(logp, old, adv, mask, entropy=ent, ref_logp=ref)
    assert same.item() == pytest.approx(base.item()) and "entropy" in m and "kl" in m


def test_approx_kl_is_k3():
    logp, old, adv, mask = batch(7)
    _, m = policy_loss(logp, old, adv, mask)
    d = (logp.detach() - old)[mask]
    assert m["approx_kl"] == pytest.approx(float((d.exp() - 1 - d).mean()))
    assert m["approx_kl"] >= 0


def test_masked_garbage_is_ignored():
    logp, old, adv, mask = batch(8)
    clean, _ = policy_loss(logp, old, adv, mask)
    (g_clean,) = torch.autograd.grad(clean, logp)
    dirty_old = torch.where(mask, old, torch.tensor(float("nan"), dtype=old.dtype))
    dirty_logp = torch.where(mask, logp, torch.tensor(float("inf"), dtype=old.dtype))
    loss, m = policy_loss(dirty_logp, dirty_old, adv, mask)
    (g,) = torch.autograd.grad(loss, logp)
    assert loss.item() == pytest.approx(clean.item())
    assert torch.equal(g, g_clean)
    assert all(math.isfinite(v) for v in m.values())


def test_float_mask_accepted():
    logp, old, adv, mask = batch(9)
    a, _ = policy_loss(logp, old, adv, mask)
    b, _ = policy_loss(logp, old, adv, mask.double())
    assert a.item() == pytest.approx(b.item())


def test_empty_sequence_in_seq_mean():
    logp, old, adv, mask = batch(10, B=3)
    mask[1] = False
    loss, _ = policy_loss(logp, old, adv, mask, loss_agg="seq-mean-token-mean")
    assert math.isfinite(loss.item())


def test_errors():
    logp, old, adv, mask = batch(11)
    with pytest.raises(ValueError, match="max_len"):
        policy_loss(logp, old, adv, mask, loss_agg="seq-mean-token-sum-norm")
    with pytest.raises(ValueError, match="unknown loss_agg 'sum'"):
        policy_loss(logp, old, adv, mask, loss_agg="sum")
    with pytest.raises(ValueError, match="entropy"):
        policy_loss(logp, old, adv, mask, entropy_coef=0.1)
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(logp, old, adv, mask, kl_coef=0.1)
    with pytest.raises(ValueError, match="dual_clip_c"):
        policy_loss(logp, old, adv, mask, dual_clip_c=1.0)
    with pytest.raises(ValueError, match="shape"):
        policy_loss(logp, old[:, :-1], adv, mask)
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(logp, old, adv[:-1], mask)
