"""`asym claims` rules on simulated seeds: how often each verdict comes out when the truth is known.

Each test draws normal per-seed differences (numpy, fixed seeds) and compares the rate of a
verdict with what the rule promises. Check verdicts come from :func:`check_verdicts`, the
rule of :func:`asymcli.analysis.claims.stats.paired_test` vectorised over simulations (it is checked
equal to paired_test, draw by draw, on a few hundred draws of every scenario); claim
verdicts from the real :func:`~asymcli.analysis.claims.stats.claim_decision`. Tolerances are 4
binomial standard deviations of the simulation count.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special as sp
from scipy import stats as st

from asymcli.analysis.claims import stats

ALPHA = stats.ALPHA
N_SIM = 10_000
N_CROSS = 100  # draws per scenario also run through paired_test itself


def tol(rate: float, n_sim: int = N_SIM) -> float:
    return 4 * math.sqrt(rate * (1 - rate) / n_sim)


def check_verdicts(x: np.ndarray, sign: int, margin: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(verdicts, p_opposite) of paired_test for each row of ``x`` (simulations x seeds),
    vectorised; the first N_CROSS rows are also run through paired_test and must agree."""
    n = x.shape[-1]
    df = n - 1
    mean = x.mean(-1)
    se = x.std(-1, ddof=1) / math.sqrt(n)
    assert (se > 0).all()
    t = mean / se
    p, p_opp = sp.stdtr(df, -sign * t), sp.stdtr(df, sign * t)
    v = np.full(x.shape[:-1], "inconclusive", dtype=object)
    v[p < stats.TREND] = "trend"
    if margin is not None:
        p_tost = np.maximum(sp.stdtr(df, -(mean + margin) / se), sp.stdtr(df, -(margin - mean) / se))
        v[p_tost < ALPHA] = "equivalent"
    v[p_opp < ALPHA] = "fails"
    v[p < ALPHA] = "holds"
    if n < stats.MIN_SEEDS:
        v[:] = "insufficient"
    for i in range(min(N_CROSS, len(x))):
        ref = stats.paired_test(x[i].tolist(), sign, margin=margin)
        assert (ref.verdict, ref.p_opposite) == (v[i], pytest.approx(p_opp[i], rel=1e-9, abs=1e-15)), x[i]
    return v, p_opp


def claim_rates(diffs: np.ndarray, margin=None) -> dict[str, float]:
    """Rates of each claim verdict over simulations. ``diffs``: (n_sim, m checks, n seeds), claimed > 0."""
    n_sim, m, _ = diffs.shape
    cols = [check_verdicts(diffs[:, j, :], +1, margin) for j in range(m)]
    counts: dict[str, int] = {}
    for i in range(n_sim):
        v = stats.combine([c[0][i] for c in cols], [float(c[1][i]) for c in cols])
        counts[v] = counts.get(v, 0) + 1
    rates = {k: c / n_sim for k, c in counts.items()}
    rates["any check fails (uncorrected)"] = float(np.any([c[0] == "fails" for c in cols], axis=0).mean())
    return rates


# ---------------------------------------------------------------------------
# A claim's "fails" and "holds" with no effect
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("m", [2, 3, 4])
def test_claim_fails_and_holds_rates_without_an_effect(m):
    """No effect in any of m independent checks, 3 seeds: with Holm over the claim's
    opposite-direction p, "fails" is at most alpha (measured 0.050 / 0.049 / 0.050 for
    m = 2 / 3 / 4; exactly 1 - (1 - 0.05/m)^m = 0.049); counting any failing check (the old
    rule) it is 1 - 0.95^m (measured 0.094 / 0.144 / 0.191). "holds" needs every check:
    0.05^m (measured 0.0018 / 0.0001 / 0)."""
    n_sim = N_SIM
    rng = np.random.default_rng(100 + m)
    r = claim_rates(rng.normal(0.0, 1.0, size=(n_sim, m, 3)))
    fails = r.get("fails", 0.0)
    assert fails <= ALPHA + tol(ALPHA, n_sim)
    assert fails >= ALPHA / 2  # Holm is not needlessly strict with independent checks (~ 1 - (1 - a/m)^m)
    old = 1 - (1 - ALPHA) ** m
    assert abs(r["any check fails (uncorrected)"] - old) <= tol(old, n_sim)
    assert r.get("holds", 0.0) <= ALPHA ** m + tol(ALPHA ** m, n_sim)


def test_claim_fails_rate_with_a_shared_baseline():
    """Checks of one claim often share an arm (A − B, C − B with the same B runs): positively
    correlated p-values. Holm stays valid under any dependence: "fails" at most alpha
    (measured 0.050; any check failing: 0.135)."""
    n_sim, m, n = N_SIM, 3, 3
    rng = np.random.default_rng(7)
    arms = rng.normal(0.0, 1.0, size=(n_sim, m + 1, n))
    diffs = arms[:, 1:, :] - arms[:, :1, :]  # every check against arm 0
    r = claim_rates(diffs)
    assert r.get("fails", 0.0) <= ALPHA + tol(ALPHA, n_sim)


def test_claim_holds_rate_is_alpha_at_worst():
    """The intersection-union test needs no correction: its worst case is every check but one
    far on the claimed side, the last with no effect; then "holds" is that check's alpha
    (measured 0.052)."""
    n_sim = N_SIM
    rng = np.random.default_rng(11)
    diffs = rng.normal(0.0, 1.0, size=(n_sim, 2, 3))
    diffs[:, 0, :] += 50.0  # this part always holds
    r = claim_rates(diffs)
    assert abs(r.get("holds", 0.0) - ALPHA) <= tol(ALPHA, n_sim)


# ---------------------------------------------------------------------------
# Equivalence (TOST)
# ---------------------------------------------------------------------------


def check_rates(mean: float, sd: float, n: int, n_sim: int, seed: int, margin: float | None = 1.0,
                sign: int = +1) -> dict[str, float]:
    x = np.random.default_rng(seed).normal(mean, sd, size=(n_sim, n))
    v, _ = check_verdicts(x, sign, margin)
    return {k: float((v == k).mean()) for k in set(v)}


@pytest.mark.parametrize("n,sd", [(3, 0.3), (5, 0.5), (10, 1.0)])
def test_equivalence_rate_at_the_margin_is_at_most_alpha(n, sd):
    """A true difference of exactly the margin (either sign) reads "equivalent" at most 5% of
    the time (TOST's size; measured 0.0002-0.03: holds / fails come first at the boundary)."""
    n_sim = N_SIM
    for k, mean in enumerate((1.0, -1.0)):
        r = check_rates(mean, sd, n, n_sim, seed=20 + n + k)
        assert r.get("equivalent", 0.0) <= ALPHA + tol(ALPHA, n_sim)


def exact_equivalence_rate(n: int, sd: float, margin: float = 1.0) -> float:
    """P(90% t interval inside ±margin) with no effect: |mean| + q s / sqrt(n) < margin,
    q = t_{0.95, n-1}, mean ~ N(0, sd^2 / n) independent of (n - 1) s^2 / sd^2 ~ chi2(n - 1);
    integrated over the chi2."""
    q = st.t.ppf(0.95, n - 1)
    grid = np.linspace(1e-9, 80, 40001)
    s_ = sd * np.sqrt(grid / (n - 1))
    room = margin - q * s_ / math.sqrt(n)
    inside = np.where(room > 0, 2 * st.norm.cdf(room / (sd / math.sqrt(n))) - 1, 0.0)
    return float(np.trapezoid(inside * st.chi2.pdf(grid, n - 1), grid))


@pytest.mark.parametrize("n,sd", [(5, 0.5), (3, 2.0)])
def test_equivalence_rate_without_an_effect(n, sd):
    """No effect: "equivalent" comes out as often as TOST has power (the exact rate,
    integrated), less the draws where holds / fails come first (about 10%, partly inside
    TOST's region). Measured: 0.857 (exact 0.950; holds + fails 0.098) at n = 5, sd = 0.5;
    0.015 (exact 0.019) at n = 3, sd = 2, where a 1-point margin is narrower than the noise."""
    exact = exact_equivalence_rate(n, sd)
    r = check_rates(0.0, sd, n, N_SIM, seed=30 + n)
    eq, first = r.get("equivalent", 0.0), r.get("holds", 0.0) + r.get("fails", 0.0)
    assert exact - first - tol(exact) <= eq <= exact + tol(exact)


def test_no_equivalence_without_a_margin():
    assert "equivalent" not in check_rates(0.0, 0.1, 5, 500, seed=39, margin=None)


# ---------------------------------------------------------------------------
# Minimum detectable effect
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 5, 10])
def test_power_at_the_mde_is_80_percent(n):
    """A true difference equal to the stated MDE (80% power, the observed sd taken as the
    true one) reads "holds" 80% of the time (measured 0.800 / 0.803 / 0.802 at n = 3 / 5 / 10)."""
    sd, n_sim = 2.0, N_SIM
    delta = stats.mde(sd, n)
    r = check_rates(delta, sd, n, n_sim, seed=40 + n, margin=None)
    assert abs(r.get("holds", 0.0) - stats.POWER) <= tol(stats.POWER, n_sim)


def test_mde_is_exact_and_seeds_for_inverts_it():
    for n in (2, 3, 5, 12, 40):
        d = stats.mde(1.7, n)
        tcrit = st.t.ppf(0.95, n - 1)
        assert st.nct.sf(tcrit, n - 1, d * math.sqrt(n) / 1.7) == pytest.approx(0.8, abs=1e-9)
        assert stats.mde(3.4, n) == pytest.approx(2 * d)  # proportional to sd
    # large n: the normal approximation (z_0.95 + z_0.8) sd / sqrt(n)
    assert stats.mde(1.0, 2000) == pytest.approx((st.norm.ppf(0.95) + st.norm.ppf(0.8)) / math.sqrt(2000), rel=2e-3)
    assert stats.mde(1.0, 10) == pytest.approx(0.8528, abs=1e-4)  # the textbook d for n = 10
    assert stats.mde(0.0, 3) == 0.0 and stats.mde(1.0, 1) is None and stats.mde(None, 5) is None
    for sd, target in ((1.0, 1.0), (3.0, 1.0), (2.5, 0.7), (0.4, 1.0)):
        n = stats.seeds_for(sd, target)
        assert stats.mde(sd, n) <= target and (n == 2 or stats.mde(sd, n - 1) > target)
    assert stats.seeds_for(1.0, 1.0) == 8
    with pytest.raises(ValueError):
        stats.seeds_for(1.0, 0.0)
