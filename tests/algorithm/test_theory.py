"""The paper's propositions, checked: Proposition 2 symbolically (sympy), the covariance
identity and Proposition 1's first-order expansion numerically with the library's own
estimators and kappa_B."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from asymcli.algorithm.advantages import compute_advantages, w_neg, w_pos
from asymcli.algorithm.metrics import kappa_from_seq_logp
from asymcli.algorithm.theory import entropy_shift, group_cov, peak_neg, peak_pos

torch.set_num_threads(1)


# ---------------------------------------------------------------------------
# Proposition 2 (Appendix D), symbolically
# ---------------------------------------------------------------------------


def _unit_interval(name: str) -> tuple[sp.Symbol, sp.Expr]:
    """A symbol u > 0 and x = 1/(1+u), which ranges exactly over (0, 1)."""
    u = sp.Symbol(name, positive=True)
    return u, 1 / (1 + u)


@pytest.mark.parametrize("channel", ["pos", "neg"])
def test_proposition2_symbolic(channel):
    p, b = sp.symbols("p beta", positive=True)
    if channel == "pos":
        W = p * ((1 - p) / p) ** b  # Eq. (9)
        expected = 1 - b
    else:
        W = (1 - p) * (p / (1 - p)) ** b  # Eq. (10)
        expected = b
    logW = sp.expand_log(sp.log(W), force=True)
    d1 = sp.diff(logW, p)
    assert [sp.simplify(s - expected) for s in sp.solve(sp.Eq(d1, 0), p)] == [0]
    # Strict concavity of log W on (0, 1) for beta in (0, 1): write p, beta = 1/(1+u), 1/(1+v)
    # with u, v > 0 so sympy's sign reasoning covers exactly the open intervals.
    u, p_of_u = _unit_interval("u")
    v, b_of_v = _unit_interval("v")
    d2 = sp.diff(logW, p, 2).subs({p: p_of_u, b: b_of_v})
    num, den = sp.fraction(sp.together(sp.simplify(d2)))
    # Expanded, each is a sum of same-signed monomials in positive u, v: sympy can decide.
    num, den = sp.expand(num), sp.expand(den)
    assert (num.is_negative and den.is_positive) or (num.is_positive and den.is_negative)
    # W vanishes at both ends, so the interior stationary point is the maximum.
    W_b = W.subs(b, sp.Rational(3, 10))
    assert sp.limit(W_b, p, 0, "+") == 0 and sp.limit(W_b, p, 1, "-") == 0


@pytest.mark.parametrize("beta", [0.1, 0.4, 0.5, 0.9])
def test_proposition2_numeric_grid(beta):
    grid = np.linspace(1e-4, 1 - 1e-4, 20001)
    assert grid[np.argmax(w_pos(grid, beta))] == pytest.approx(1 - beta, abs=1e-4)
    assert grid[np.argmax(w_neg(grid, beta))] == pytest.approx(beta, abs=1e-4)
    assert peak_pos(beta) == pytest.approx(1 - beta) and peak_neg(beta) == beta


def test_peaks_outside_open_interval():
    for b in (0.0, 1.0, 1.5, None):
        assert peak_pos(b) is None and peak_neg(b) is None
    assert peak_pos(0.9) == 0.1  # printed as 0.1, not 0.09999999999999998


# ---------------------------------------------------------------------------
# Proposition 1 (Appendix B), numerically
# ---------------------------------------------------------------------------


def mixed_batch(seed: int, n_groups: int = 12, G: int = 8):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.arange(n_groups).repeat_interleave(G) * 5 + 3
    rewards = torch.zeros(n_groups * G, dtype=torch.float64)
    for g in range(n_groups):
        k = int(torch.randint(1, G, (1,), generator=gen))  # 0 < p < 1: every group mixed
        rewards[g * G:g * G + k] = 1.0
    rewards[:G] = 1.0  # plus one all-solved group, which kappa and the shift both skip
    # Correct rollouts somewhat more likely under the policy (delta_g > 0 on average).
    L = -torch.rand(n_groups * G, generator=gen, dtype=torch.float64) - 0.3 * (1 - rewards)
    perm = torch.randperm(n_groups * G, generator=gen)
    return rewards[perm], ids[perm], L[perm]


@pytest.mark.parametrize("seed", range(4))
def test_covariance_identity(seed):
    # Cov_g(L, Z) = w_g * delta_g with w = p(1-p), delta = mean L | Z=1 - mean L | Z=0.
    r, ids, L = mixed_batch(seed)
    cov = group_cov(L, r, ids)
    for j, g in enumerate(torch.unique(ids).tolist()):
        sel = ids == g
        Lg, rg = L[sel], r[sel]
        p = float(rg.mean())
        if p in (0.0, 1.0):
            assert cov[j].item() == pytest.approx(0.0, abs=1e-15)
            continue
        delta = float(Lg[rg == 1].mean() - Lg[rg == 0].mean())
        assert cov[j].item() == pytest.approx(p * (1 - p) * delta, rel=1e-12)
        assert cov[j].item() == pytest.approx(float(np.cov(Lg.numpy(), rg.numpy(), bias=True)[0, 1]), rel=1e-12)


def shift(r, ids, L, beta_pos, beta_neg):
    a = compute_advantages("asym", r, ids, beta_pos=beta_pos, beta_neg=beta_neg)
    ref = compute_advantages("reinforce", r, ids)
    return entropy_shift(L, a, ref, r, ids)


@pytest.mark.parametrize("seed", range(4))
def test_proposition1_first_order(seed):
    # d/dbeta E_g[-Cov_g(L, A(beta) - A_REIN)] at beta = 0 is +kappa (positive channel)
    # and -kappa (negative channel), by forward/central differences on the library's asym.
    r, ids, L = mixed_batch(seed)
    kappa = kappa_from_seq_logp(L, r, ids)
    assert abs(kappa) > 1e-4  # a non-degenerate batch (the identity holds for either sign)
    h = 1e-4
    assert shift(r, ids, L, 0.0, 0.0) == pytest.approx(0.0, abs=1e-15)
    # f(0) = 0 and f is smooth: (4 f(h) - f(2h)) / (2h) cancels the O(h) term.
    d_pos = (4 * shift(r, ids, L, h, 0.0) - shift(r, ids, L, 2 * h, 0.0)) / (2 * h)
    d_neg = (4 * shift(r, ids, L, 0.0, h) - shift(r, ids, L, 0.0, 2 * h)) / (2 * h)
    assert d_pos == pytest.approx(kappa, rel=1e-6)
    assert d_neg == pytest.approx(-kappa, rel=1e-6)


@pytest.mark.parametrize("beta", [0.3, 0.9])
def test_proposition1_exact_group_terms(beta):
    # Before linearising, Appendix B's per-group terms are exact:
    # positive: w delta (1 - e^{-beta l}), negative: -w delta (e^{beta l} - 1).
    r, ids, L = mixed_batch(7)
    pos_terms, neg_terms = [], []
    for g in torch.unique(ids).tolist():
        sel = ids == g
        p = float(r[sel].mean())
        if p in (0.0, 1.0):
            continue
        delta = float(L[sel][r[sel] == 1].mean() - L[sel][r[sel] == 0].mean())
        w, lg = p * (1 - p), math.log(p / (1 - p))
        pos_terms.append(w * delta * (1 - math.exp(-beta * lg)))
        neg_terms.append(-w * delta * (math.exp(beta * lg) - 1))
    assert shift(r, ids, L, beta, 0.0) == pytest.approx(np.mean(pos_terms), rel=1e-10)
    assert shift(r, ids, L, 0.0, beta) == pytest.approx(np.mean(neg_terms), rel=1e-10)


def test_entropy_shift_nan_without_mixed_groups():
    r = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    ids = torch.tensor([0, 0, 1, 1])
    assert math.isnan(entropy_shift(torch.randn(4), r, r, r, ids))
