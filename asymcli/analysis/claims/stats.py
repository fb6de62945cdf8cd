"""Paired statistics for method comparisons over seeds: the test behind every verdict.

Why it exists: a claim about methods is a paired comparison over seeds (same seed = same
starting policy and sampling seed), so each check reduces to one number per seed, a
difference A - B, and the question "is its mean on the claimed side of 0?". The first wave
called a mean "significant" when it was one standard error from 0, which says "holds"
about one time in six with no effect at all; this module replaces that rule with a test.

The test (decided before any run was looked at, and the same for every check):

- **Primary: one-sided paired t-test**, t = mean / (sd / sqrt(n)) with n - 1 degrees of
  freedom; p = P(T >= t) for a claimed "> 0" (P(T <= t) for "< 0"). The 95% interval is the
  two-sided t interval mean +- t_{0.975, n-1} sd / sqrt(n).
- **Beside it: the exact sign-flip (permutation) test** of the same mean: under H0 each
  difference is equally likely to have either sign, so p = the fraction of the 2^n sign
  patterns whose mean is at least the observed one (claimed direction). It assumes only
  symmetry, not normality; its smallest possible p is 2^-n (0.125 at 3 seeds, 0.031 at 5),
  which is why it is reported and not used for the verdict at the seed counts a CPU affords.
- **Verdict words of a check** (``VERDICTS``), first that applies: *holds* p < 0.05 in the
  claimed direction; *fails* the opposite direction is significant (p_opposite < 0.05);
  *equivalent* (checks given an equivalence margin m, i.e. accuracy) the two one-sided tests
  (TOST) of H0: mean <= -m and H0: mean >= +m both reject at 0.05, i.e. the 90% t interval
  lies inside [-m, +m]; *trend* 0.05 <= p < 0.2 in the claimed direction; *inconclusive*
  otherwise; *insufficient* fewer than ``MIN_SEEDS`` = 3 paired seeds (the renderers name
  the ``asym run-grid`` command that adds them). So a difference that is significant *and*
  inside the margin is holds / fails (the directional test has priority), and equivalence
  replaces only trend and inconclusive.
- **Minimum detectable effect** (:func:`mde`): the true mean difference the one-sided
  paired t-test at alpha 0.05 detects with 80% power at the check's n, taking the observed
  sd of the differences as the true one (exact, noncentral t). Shown beside every check, so
  a null result says how large an effect it could have missed; :func:`seeds_for` inverts it.
- **A claim's verdict** (:func:`claim_decision`, over its checks): *holds* if every check
  holds (an intersection-union test: each part at 0.05 gives the conjunction a false-holds
  rate <= 0.05, no correction needed); *fails* if any Holm-adjusted opposite-direction p,
  over the claim's tested checks, is < 0.05 (so with no effect a claim fails at most 5% of
  the time, whatever its number of checks); else *insufficient* if a check lacks seeds;
  else *equivalent* if a check is equivalent; else the weakest of inconclusive < trend (a
  check that fails alone but not after Holm counts as inconclusive). Holm-adjusted p-values
  over all the checks of a report (:func:`holm`) are printed beside them.

Everything here is pure (floats in, dataclasses out) and imports only the standard library
and scipy (the t and noncentral t distributions, a root finder).
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy import optimize as _opt
from scipy import special as _sp
from scipy import stats as _st

__all__ = ["ALPHA", "MIN_SEEDS", "POWER", "TREND", "VERDICTS", "ClaimDecision", "PairedTest", "claim_decision",
           "combine", "heterogeneity_p", "holm", "mde", "paired_test", "seeds_for", "signflip_p", "stdev",
           "stratified_test", "tost_p"]

ALPHA = 0.05  # "holds" / "fails" / "equivalent" threshold (one-sided; TOST: each of its two tests)
TREND = 0.2  # 0.05 <= p < TREND in the claimed direction: "trend"
MIN_SEEDS = 3  # fewer paired seeds: "insufficient"
POWER = 0.8  # the power at which the minimum detectable effect is stated
#: "measured": a claim reported as a measurement, with no verdict (never counts as fails).
VERDICTS = ("holds", "trend", "equivalent", "inconclusive", "fails", "insufficient", "measured")
#: Exact sign-flip enumeration up to this many seeds (2^n patterns); Monte Carlo is never used.
SIGNFLIP_MAX_N = 20


def finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def stdev(xs: Sequence[float]) -> float:
    """Sample std (n - 1), two-pass with exact sums (math.fsum; statistics.stdev's exact
    fractions are ~20x slower and the simulated calibration tests call this thousands of
    times); rounding noise of equal values (1e-12 relative) reads as 0."""
    n = len(xs)
    if n < 2:
        raise statistics.StatisticsError("stdev requires at least two data points")
    m = math.fsum(xs) / n
    sd = math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (n - 1))
    return 0.0 if sd <= 1e-12 * max(1.0, max(abs(x) for x in xs)) else sd


def signflip_p(xs: Sequence[float], sign: int) -> float | None:
    """Exact one-sided sign-flip p-value of mean(xs) in direction ``sign`` (+1 / -1):
    the fraction of the 2^n sign patterns s with sign * mean(s * |x|) >= sign * mean(xs).
    None for n = 0 or n > SIGNFLIP_MAX_N."""
    n = len(xs)
    if n == 0 or n > SIGNFLIP_MAX_N:
        return None
    obs = sign * sum(xs)
    mags = [abs(x) for x in xs]
    tol = 1e-12 * max(1.0, sum(mags))  # ties (equal sums up to rounding) count as "at least"
    hits = sum(1 for signs in itertools.product((1, -1), repeat=n)
               if sign * sum(s * m for s, m in zip(signs, mags)) >= obs - tol)
    return hits / 2 ** n


def mde(sd: float | None, n: int, alpha: float = ALPHA, power: float = POWER, df: int | None = None) -> float | None:
    """Minimum detectable effect of the one-sided paired t-test at level ``alpha`` with ``n``
    paired differences of standard deviation ``sd``: the true mean delta with
    P(T > t_{1-alpha, n-1} | T ~ noncentral t(n - 1, delta sqrt(n) / sd)) = ``power``, exact
    (scipy.stats.nct). In the unit of ``sd`` (proportional to it); 0 when sd = 0 (no spread:
    any difference is seen); None when n < 2 or sd is unknown. ``df``: the t statistic's degrees
    of freedom (default n - 1; a pooled test over R replications has n - R)."""
    if sd is None or n < 2 or not math.isfinite(sd):
        return None
    return sd * _mde_unit(n, alpha, power, n - 1 if df is None else df)  # the MDE scales with sd: solve once per (n, alpha, power)


@functools.lru_cache(maxsize=4096)
def _mde_unit(n: int, alpha: float, power: float, df: int | None = None) -> float:
    """:func:`mde` at sd = 1."""
    df = n - 1 if df is None else df
    tcrit = float(_st.t.ppf(1.0 - alpha, df))
    f = lambda ncp: float(_st.nct.sf(tcrit, df, ncp)) - power  # noqa: E731  (increasing in ncp)
    hi = max(1.0, tcrit + 2 * float(_st.norm.ppf(power)) + 2)
    while f(hi) < 0:
        hi *= 2
    ncp = _opt.brentq(f, 0.0 if f(0.0) < 0 else -hi, hi, xtol=1e-12, rtol=1e-12)
    return ncp / math.sqrt(n)


def seeds_for(sd: float, target_mde: float, alpha: float = ALPHA, power: float = POWER,
              max_n: int = 100_000) -> int:
    """The smallest number of paired seeds n >= 2 whose :func:`mde` is <= ``target_mde``
    (the seeds an experiment needs to detect ``target_mde`` with ``power``, at the observed
    ``sd``). Raises ValueError if ``max_n`` seeds do not suffice or target_mde <= 0 < sd."""
    if sd < 0 or target_mde < 0:
        raise ValueError(f"sd and target_mde must be >= 0, got {sd}, {target_mde}")
    if sd == 0:
        return 2

    def ok(n: int) -> bool:
        return mde(sd, n, alpha, power) <= target_mde  # type: ignore[operator]

    if target_mde == 0 or not ok(max_n):
        raise ValueError(f"no n <= {max_n} reaches an MDE of {target_mde} at sd {sd}")
    lo, hi = 1, 2  # invariant: not ok(lo) (n = 1 has no test), ok(hi) once found
    while not ok(hi):
        lo, hi = hi, min(2 * hi, max_n)
    while hi - lo > 1:  # mde decreases in n
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def tost_p(mean: float, se: float, n: int, margin: float, df: int | None = None) -> float:
    """Two one-sided tests of equivalence within [-margin, +margin]: the larger of the t-test
    p-values of H0: mean <= -margin and H0: mean >= +margin (n - 1 df). < alpha iff the
    two-sided (1 - 2 alpha) t interval lies inside the margin. se = 0: 0 if |mean| < margin, else 1."""
    if se == 0:
        return 0.0 if abs(mean) < margin else 1.0
    df = n - 1 if df is None else df
    return max(_t_sf((mean + margin) / se, df), _t_sf((margin - mean) / se, df))


def _t_sf(x: float, df: int) -> float:
    """P(T > x), T ~ t(df): scipy.stats.t.sf without building a distribution object (which
    costs ~1 ms, too slow for the simulated calibration tests)."""
    return float(_sp.stdtr(df, -x))


@dataclass(frozen=True)
class PairedTest:
    """The test of one check: n paired differences, claimed direction ``sign``."""

    n: int
    mean: float | None
    sd: float | None
    se: float | None
    ci_low: float | None  # 95% two-sided t interval of the mean
    ci_high: float | None
    t: float | None
    p: float | None  # one-sided t-test p in the claimed direction (the verdict's)
    p_signflip: float | None  # exact one-sided sign-flip p (reported beside)
    agree: int  # seeds on the claimed side
    verdict: str
    reason: str
    p_opposite: float | None = None  # one-sided p in the opposite direction (claim-level "fails", Holm)
    mde: float | None = None  # minimum detectable effect at 80% power (:func:`mde`), unit of the values
    margin: float | None = None  # equivalence margin (None: no equivalence test)
    p_tost: float | None = None  # TOST p within [-margin, +margin]
    ci90_low: float | None = None  # 90% two-sided t interval: the one a one-sided test at 0.05 matches
    ci90_high: float | None = None  # (its claimed-side end is the one-sided 95% bound)
    df: int | None = None  # degrees of freedom of the t statistic (n - 1; pooled: n - replications)


def paired_test(values: Iterable[float | None], sign: int, *, alpha: float = ALPHA, trend: float = TREND,
                min_n: int = MIN_SEEDS, margin: float | None = None) -> PairedTest:
    """One-sided paired t-test of per-seed differences ``values`` (NaN / None dropped) for a
    claimed sign ``sign`` (+1: mean > 0, -1: mean < 0), with the verdict of the module doc.
    ``margin``: equivalence margin (> 0) for the TOST ("equivalent"); None: no such verdict."""
    return stratified_test([values], sign, alpha=alpha, trend=trend, min_n=min_n, margin=margin)


def stratified_test(strata: Sequence[Iterable[float | None]], sign: int, *, alpha: float = ALPHA,
                    trend: float = TREND, min_n: int = MIN_SEEDS, margin: float | None = None) -> PairedTest:
    """The paired t-test of :func:`paired_test` over several independent replications (strata),
    pooled as a **fixed-effect, stratified** test: each replication r has its own mean m_r of
    its n_r paired differences; the pooled estimate is sum(n_r m_r) / N (each stratum weighted
    by its inverse variance under a common within-replication variance, i.e. by n_r), its
    standard error s_p / sqrt(N) with s_p^2 the pooled within-replication variance, and t has
    N - R degrees of freedom (R non-empty replications). It assumes one common true difference
    (no replication x effect interaction; :func:`heterogeneity_p` tests that); replication
    differences in level are removed, not counted as noise. One stratum = the paired t-test."""
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    if margin is not None and not margin > 0:
        raise ValueError(f"the equivalence margin must be > 0, got {margin!r}")
    groups = [g for g in (finite(v) for v in strata) if g]
    xs = [x for g in groups for x in g]
    n = len(xs)
    agree = sum(1 for x in xs if sign * x > 0)
    if n == 0:
        return PairedTest(0, None, None, None, None, None, None, None, None, 0, "insufficient", "no paired value",
                          margin=margin)
    mean = sum(xs) / n
    df = n - len(groups)
    if df < 1:
        return PairedTest(n, mean, None, None, None, None, None, None, signflip_p(xs, sign), agree,
                          "insufficient", f"{n} paired seed: a direction, not a result (need >= {min_n})",
                          margin=margin)
    if len(groups) == 1:
        sd = stdev(xs)
    else:
        ss = math.fsum((x - math.fsum(g) / len(g)) ** 2 for g in groups for x in g)
        sd = math.sqrt(ss / df)
        sd = 0.0 if sd <= 1e-12 * max(1.0, max(abs(x) for x in xs)) else sd
    se = sd / math.sqrt(n)
    pf = signflip_p(xs, sign)  # flipping signs within strata = flipping them all (the sum is the statistic)
    if se == 0:
        # Every seed gave the same difference: no spread to test against. Exact ties are a
        # property of the setup (e.g. identical runs), so the verdict says so instead of p = 0.
        t = p = None
        lo = hi = lo90 = hi90 = mean
        p_opp = 0.0 if sign * mean < 0 else 1.0
        p_eq = None if margin is None else tost_p(mean, 0.0, n, margin)
        if mean == 0:
            verdict = "equivalent" if p_eq == 0.0 else "inconclusive"
            reason = "every seed exactly 0"
        else:
            verdict = "holds" if sign * mean > 0 else "fails"
            reason = "every seed equal (no spread): the difference is deterministic"
    else:
        t = mean / se
        p = _t_sf(sign * t, df)  # one-sided, claimed direction
        half = float(_sp.stdtrit(df, 0.975)) * se
        lo, hi = mean - half, mean + half
        half90 = float(_sp.stdtrit(df, 0.95)) * se
        lo90, hi90 = mean - half90, mean + half90
        p_opp = _t_sf(-sign * t, df)  # = 1 - p, without the cancellation near p = 1
        p_eq = None if margin is None else tost_p(mean, se, n, margin, df=df)
        if p < alpha:
            verdict = "holds"
        elif p_opp < alpha:
            verdict = "fails"
        elif p_eq is not None and p_eq < alpha:
            verdict = "equivalent"
        elif p < trend:
            verdict = "trend"
        else:
            verdict = "inconclusive"
        reason = f"one-sided t-test p = {_p(p)}" + (f" (opposite direction p = {_p(p_opp)})" if verdict == "fails" else "")
        if verdict == "equivalent":
            reason += f"; TOST p = {_p(p_eq)}: the 90% CI lies inside ±{margin:g}"  # type: ignore[arg-type]
    if n < min_n:
        reason = f"{n} paired seeds (< {min_n}): {reason}; not a result"
        verdict = "insufficient"
    reason += f"; {agree}/{n} seeds on the claimed side"
    if len(groups) > 1:
        reason += f"; fixed-effect pooled over {len(groups)} replications ({df} df)"
    return PairedTest(n, mean, sd, se, lo, hi, t, p, pf, agree, verdict, reason, p_opp,
                      mde(sd, n, alpha, df=df), margin, p_eq, lo90, hi90, df)


def heterogeneity_p(strata: Sequence[Iterable[float | None]]) -> float | None:
    """p of the F test that every replication has the same mean difference (one-way ANOVA of
    the paired differences on replication): small p = the replications disagree beyond their
    within-replication noise, so a fixed-effect pooled estimate hides that. None with fewer
    than 2 non-empty replications or no within-replication df or spread."""
    groups = [g for g in (finite(v) for v in strata) if g]
    n = sum(len(g) for g in groups)
    r = len(groups)
    if r < 2 or n - r < 1:
        return None
    grand = math.fsum(x for g in groups for x in g) / n
    means = [math.fsum(g) / len(g) for g in groups]
    between = math.fsum(len(g) * (m - grand) ** 2 for g, m in zip(groups, means)) / (r - 1)
    within = math.fsum((x - m) ** 2 for g, m in zip(groups, means) for x in g) / (n - r)
    if within <= 0:
        return None
    return float(_sp.fdtrc(r - 1, n - r, between / within))


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


@dataclass(frozen=True)
class ClaimDecision:
    """A claim's verdict from its checks (:func:`claim_decision`)."""

    verdict: str
    reason: str
    p_fails_holm: float | None  # smallest Holm-adjusted opposite-direction p over the tested checks


def claim_decision(verdicts: Sequence[str], p_opposite: Sequence[float | None], *,
                   alpha: float = ALPHA) -> ClaimDecision:
    """A claim's verdict from its checks' verdicts and opposite-direction p-values (same order).

    - *holds*: every check holds. An intersection-union test: the conjunction is declared
      only if each part rejects at ``alpha``, so its false-holds rate is <= alpha without
      correction (each part alone already has it).
    - *fails*: some check's opposite-direction p, Holm-adjusted over the claim's tested
      checks (those not insufficient, with a p), is < alpha: the family-wise rate of a false
      "fails" is <= alpha for any number of checks and any dependence between them.
    - else *insufficient* if any check lacks seeds; else *equivalent* if any check is
      equivalent (a part of the claim is shown to be within the margin); else the weakest of
      inconclusive < trend. A check that fails on its own but not after Holm counts as
      inconclusive.
    """
    if len(verdicts) != len(p_opposite):
        raise ValueError(f"{len(verdicts)} verdicts but {len(p_opposite)} p-values")
    if not verdicts:
        return ClaimDecision("insufficient", "no check", None)
    tested = [i for i, v in enumerate(verdicts) if v != "insufficient" and p_opposite[i] is not None]
    adj = holm([p_opposite[i] for i in tested])
    p_fail = min((a for a in adj if a is not None), default=None)
    m = len(tested)
    if all(v == "holds" for v in verdicts):
        return ClaimDecision("holds", "every check holds", p_fail)
    if p_fail is not None and p_fail < alpha:
        return ClaimDecision("fails", f"a check's opposite direction is significant after Holm over the claim's "
                             f"{m} tested check{'s' if m != 1 else ''} (p = {_p(p_fail)})", p_fail)
    alone = [i for i in tested if verdicts[i] == "fails"]
    note = (f"; {len(alone)} check{'s' if len(alone) != 1 else ''} fail{'s' if len(alone) == 1 else ''} alone but not "
            f"after Holm over the claim's {m} checks (p = {_p(p_fail)})") if alone else ""  # type: ignore[arg-type]
    if "insufficient" in verdicts:
        return ClaimDecision("insufficient", "a check lacks paired seeds" + note, p_fail)
    if "equivalent" in verdicts:
        return ClaimDecision("equivalent", "a check is equivalent within its margin" + note, p_fail)
    for v in ("inconclusive", "trend"):
        if v in verdicts or (v == "inconclusive" and alone):
            return ClaimDecision(v, f"weakest check: {v}" + note, p_fail)
    return ClaimDecision("holds", "every check holds", p_fail)  # unreachable: all holds handled above


def combine(verdicts: Sequence[str], p_opposite: Sequence[float | None]) -> str:
    """The verdict word of :func:`claim_decision` (both arguments required: a claim's
    "fails" needs its checks' p-values for the Holm correction)."""
    return claim_decision(verdicts, p_opposite).verdict


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values (None stays None), in the input order."""
    idx = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])  # type: ignore[arg-type,return-value]
    m = len(idx)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))  # type: ignore[operator]
        out[i] = running
    return out
