"""Diagnostics: entropy, kappa_B, group fractions/histograms, log-prob gain, avg/pass/maj@k."""

from __future__ import annotations

import math
from math import comb

import numpy as np
import pytest
import torch

from asymcli.algorithm import metrics as M
from asymcli.algorithm.advantages import compute_advantages, w_neg, w_pos

torch.set_num_threads(1)


# ---------------------------------------------------------------------------
# Entropy
# ---------------------------------------------------------------------------


def test_token_entropy_matches_definition():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 11, generator=gen, dtype=torch.float64) * 3
    p = torch.softmax(logits, -1)
    want = -(p * p.log()).sum(-1)
    got = M.token_entropy(logits)
    assert got.shape == (3, 4)
    assert torch.allclose(got, want)


def test_token_entropy_edge_cases():
    assert M.token_entropy(torch.zeros(5)).item() == pytest.approx(math.log(5))
    # -inf logits (masked vocabulary) contribute nothing instead of NaN.
    x = torch.tensor([0.0, 0.0, -math.inf, -math.inf])
    assert M.token_entropy(x).item() == pytest.approx(math.log(2))
    # A near-deterministic distribution: entropy ~ 0, never NaN or negative.
    h = M.token_entropy(torch.tensor([1000.0, 0.0, 0.0]))
    assert 0.0 <= h.item() < 1e-6
    assert M.token_entropy(torch.zeros(2, 8, dtype=torch.bfloat16)).dtype == torch.float32


def test_token_entropy_gradient_is_finite_with_masked_vocab():
    x = torch.tensor([[0.5, -0.2, -math.inf]], requires_grad=True)
    M.token_entropy(x).sum().backward()
    assert torch.isfinite(x.grad[:, :2]).all()


def test_mean_token_entropy():
    ent = torch.tensor([[1.0, 2.0, 99.0], [3.0, 99.0, 99.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert M.mean_token_entropy(ent, mask) == pytest.approx(2.0)
    assert math.isnan(M.mean_token_entropy(ent, torch.zeros_like(mask)))


# ---------------------------------------------------------------------------
# kappa_B
# ---------------------------------------------------------------------------


def kappa_reference(L, r, ids):
    ks = []
    for g in sorted(set(ids)):
        Ls = [l for l, i in zip(L, ids) if i == g]
        rs = [x for x, i in zip(r, ids) if i == g]
        p = sum(rs) / len(rs)
        if p in (0.0, 1.0):
            continue
        pos = [l for l, x in zip(Ls, rs) if x == 1]
        neg = [l for l, x in zip(Ls, rs) if x == 0]
        delta = sum(pos) / len(pos) - sum(neg) / len(neg)
        ks.append(p * (1 - p) * delta * math.log(p / (1 - p)))
    return sum(ks) / len(ks) if ks else math.nan


def test_kappa_hand_value():
    # One group, p = 1/4: w = 3/16, l = log(1/3), delta = -1 - (-2) = 1.
    L = torch.tensor([-1.0, -2.0, -2.0, -2.0])
    r = torch.tensor([1.0, 0, 0, 0])
    ids = torch.zeros(4, dtype=torch.int64)
    assert M.kappa_from_seq_logp(L, r, ids) == pytest.approx(3 / 16 * math.log(1 / 3))


@pytest.mark.parametrize("seed", range(4))
def test_kappa_matches_reference_and_skips_uniform_groups(seed):
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(2, 9, (7,), generator=gen)
    ids = torch.repeat_interleave(torch.randperm(50, generator=gen)[:7], sizes)
    n = int(sizes.sum())
    r = (torch.rand(n, generator=gen) < 0.5).double()
    r[ids == ids[0]] = 1.0  # one all-solved group, excluded
    L = -torch.rand(n, generator=gen, dtype=torch.float64)
    want = kappa_reference(L.tolist(), r.tolist(), ids.tolist())
    assert M.kappa_from_seq_logp(L, r, ids) == pytest.approx(want, rel=1e-12, nan_ok=True)


def test_kappa_batch_uses_length_normalised_logp():
    old = torch.tensor([[-1.0, -3.0, 7.0], [-2.0, 5.0, 5.0], [-1.0, -1.0, -1.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]])
    r = torch.tensor([1.0, 0.0, 0.0])
    ids = torch.tensor([0, 0, 0])
    L = torch.tensor([-2.0, -2.0, -1.0])
    assert M.kappa_batch(old, mask, r, ids) == pytest.approx(M.kappa_from_seq_logp(L, r, ids))
    assert torch.allclose(M.seq_mean_logp(old, mask), L)


def test_kappa_nan_without_mixed_groups():
    r = torch.tensor([1.0, 1.0, 0.0, 0.0])
    ids = torch.tensor([0, 0, 1, 1])
    assert math.isnan(M.kappa_from_seq_logp(torch.randn(4), r, ids))
    with pytest.raises(ValueError, match="binary"):
        M.kappa_from_seq_logp(torch.randn(2), torch.tensor([0.5, 1.0]), torch.tensor([0, 0]))


def test_kappa_hat():
    ks = [1.0, math.nan, 3.0, 100.0]
    assert M.kappa_hat(ks, 3) == pytest.approx(2.0)  # NaN step skipped, step 4 outside T
    assert M.kappa_hat(ks, 20) == pytest.approx(104 / 3)
    assert math.isnan(M.kappa_hat([math.nan], 5))
    with pytest.raises(ValueError):
        M.kappa_hat(ks, 0)


# ---------------------------------------------------------------------------
# Group diagnostics
# ---------------------------------------------------------------------------


def test_solved_fractions_and_hist():
    r = torch.tensor([1.0, 1, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
    ids = torch.tensor([5, 5, 5, 9, 9, 9, 2, 2, 2, 7, 7, 7])
    # groups: 5 -> [1,1,0] mixed, 9 -> [0,0,0] none, 2 -> [1,0,1] mixed, 7 -> [1,1,1] all
    none, full, mixed = M.solved_fractions(r, ids)
    assert (none, full, mixed) == pytest.approx((0.25, 0.25, 0.5))
    assert M.group_accuracy_hist(r, ids, 3) == [1, 0, 2, 1]
    with pytest.raises(ValueError, match="G=4"):
        M.group_accuracy_hist(r, ids, 4)


def test_advantage_mass_hist_matches_eq9_eq10():
    G, bp, bn = 8, 0.9, 0.4
    rewards, ids = [], []
    counts = {1: 2, 3: 1, 6: 3, 8: 1, 0: 1}
    gid = 0
    for k, n in counts.items():
        for _ in range(n):
            rewards += [1.0] * k + [0.0] * (G - k)
            ids += [gid] * G
            gid += 1
    r, ids = torch.tensor(rewards), torch.tensor(ids)
    a = compute_advantages("asym", r, ids, beta_pos=bp, beta_neg=bn)
    pos, neg = M.advantage_mass_hist(r, ids, a, G)
    for k in range(G + 1):
        n = counts.get(k, 0)
        p = k / G
        want_pos = n * G * w_pos(p, bp) if n else 0.0
        want_neg = n * G * w_neg(p, bn) if n else 0.0
        assert pos[k] == pytest.approx(want_pos, rel=1e-5, abs=1e-6), k
        assert neg[k] == pytest.approx(want_neg, rel=1e-5, abs=1e-6), k


def test_logprob_gain_correct():
    old = torch.zeros(3, 3)
    new = torch.tensor([[0.1, 0.2, 9.0], [1.0, 1.0, 1.0], [0.3, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]])
    correct = torch.tensor([True, False, True])
    seq, tok = M.logprob_gain_correct(new, old, mask, correct)
    assert seq == pytest.approx((0.3 + 0.3) / 2)
    assert tok == pytest.approx(0.6 / 3)
    seq, tok = M.logprob_gain_correct(new, old, mask, torch.zeros(3, dtype=torch.bool))
    assert math.isnan(seq) and math.isnan(tok)


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def test_masked_reductions_and_k3():
    x = torch.tensor([[1.0, float("nan")], [2.0, 3.0]])
    m = torch.tensor([[True, False], [True, True]])
    assert M.masked_sum(x, m).item() == 6.0
    assert M.masked_mean(x, m, dim=-1).tolist() == [1.0, 2.5]
    d = torch.linspace(-2, 2, 41)
    k3 = M.kl_k3(d)
    assert (k3 >= 0).all() and k3[20] == 0
    small = torch.tensor([1e-3])
    assert M.kl_k3(small).item() == pytest.approx(0.5e-6, rel=1e-2)  # ~ d^2 / 2


def test_clip_fractions():
    ratio = torch.tensor([[1.5, 0.5, 0.5, 1.5]])
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    assert M.clip_fractions(ratio, adv, mask, 0.2, 0.2) == (0.25, 0.25)
    assert M.clip_fractions(ratio, adv, mask, 0.6, 0.6) == (0.0, 0.0)


# ---------------------------------------------------------------------------
# Evaluation metrics
# ---------------------------------------------------------------------------


def test_avg_at_k():
    assert M.avg_at_k([[1, 0, 1, 1], [0, 0, 0, 0]]) == pytest.approx(0.375)
    assert M.avg_at_k(np.array([[True, False]])) == 0.5
    assert M.avg_at_k(torch.tensor([[1.0, 1.0]])) == 1.0
    assert M.avg_at_k([[1], [0, 0, 1, 1]]) == pytest.approx(0.75)  # ragged: per-problem first
    assert math.isnan(M.avg_at_k([]))


def test_pass_at_k_matches_combinatorial_form():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                want = 1 - comb(n - c, k) / comb(n, k)
                assert M.pass_at_k(n, c, k) == pytest.approx(want, abs=1e-12), (n, c, k)
    assert M.pass_at_k(200, 1, 1) == pytest.approx(1 / 200)
    assert 0.0 <= M.pass_at_k(2000, 3, 50) <= 1.0
    with pytest.raises(ValueError):
        M.pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        M.pass_at_k(4, 1, 5)


def test_maj_at_k():
    answers = [
        ["3", "4", "4", "3"],          # tie 2-2 -> first seen ("3") wins
        [None, None, "7", "5"],        # blanks never win while an answer exists -> "7"
        [None, "", " ", None],         # nothing extracted -> unsolved
        ["1", "2", "2", "2"],          # "2" wins for k >= 3
    ]
    correct = [
        [True, False, False, True],
        [False, False, True, False],
        [False, False, False, False],
        [True, False, False, False],
    ]
    assert M.maj_at_k(answers, correct, 4) == pytest.approx(2 / 4)
    assert M.maj_at_k(answers, correct, 1) == pytest.approx(2 / 4)  # first answers only
    assert M.maj_at_k(answers, correct, 3) == pytest.approx(1 / 4)  # "4", "7", -, "2"
    assert M.maj_at_k([["1", "2", "1"]], [[True, False, True]], 3) == 1.0
    with pytest.raises(ValueError, match="fewer than k=5"):
        M.maj_at_k(answers, correct, 5)
    with pytest.raises(ValueError):
        M.maj_at_k(answers, correct[:2], 2)


def test_advantage_mass_hist_token_weights():
    """Weights multiply each rollout's advantage before the per-k sums (the trainer's
    token-weighted mass of claim 6); unit weights give the plain mass."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    gids = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    adv = torch.tensor([3.0, -1.0, -1.0, -1.0, 1.0 / 3, 1.0 / 3, 1.0 / 3, -3.0])
    plain = M.advantage_mass_hist(rewards, gids, adv, 4)
    assert M.advantage_mass_hist(rewards, gids, adv, 4, weights=torch.ones(8)) == plain
    w = torch.tensor([2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5])
    pos, neg = M.advantage_mass_hist(rewards, gids, adv, 4, weights=w)
    assert pos == pytest.approx([0.0, 6.0, 0.0, 1.0, 0.0]) and neg == pytest.approx([0.0, 3.0, 0.0, 1.5, 0.0])
    with pytest.raises(ValueError, match="weights has shape"):
        M.advantage_mass_hist(rewards, gids, adv, 4, weights=torch.ones(3))
