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
- **Verdict words** (``VERDICTS``): *holds* p < 0.05 in the claimed direction; *fails* the
  opposite direction is significant (p_opposite < 0.05); *trend* 0.05 <= p < 0.2 in the
  claimed direction; *inconclusive* otherwise; *insufficient* fewer than ``MIN_SEEDS`` = 3
  paired seeds (the renderers name the ``asym run-grid`` command that adds them).
- No correction for multiplicity in the verdicts (each check is its own hypothesis, as
  the issue that specified this asks); :func:`holm` gives Holm-adjusted p-values over all
  the checks of a report, printed beside them.

Everything here is pure (floats in, dataclasses out) and imports only the standard library
and scipy (for the t distribution).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy import stats as _st

__all__ = ["ALPHA", "MIN_SEEDS", "TREND", "VERDICTS", "PairedTest", "combine", "holm", "paired_test",
           "signflip_p", "stdev"]

ALPHA = 0.05  # "holds" / "fails" threshold (one-sided)
TREND = 0.2  # 0.05 <= p < TREND in the claimed direction: "trend"
MIN_SEEDS = 3  # fewer paired seeds: "insufficient"
VERDICTS = ("holds", "trend", "inconclusive", "fails", "insufficient")
#: Exact sign-flip enumeration up to this many seeds (2^n patterns); Monte Carlo is never used.
SIGNFLIP_MAX_N = 20


def finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def stdev(xs: Sequence[float]) -> float:
    """Sample std (n - 1); rounding noise of equal values (1e-12 relative) reads as 0."""
    sd = statistics.stdev(xs)
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


def paired_test(values: Iterable[float | None], sign: int, *, alpha: float = ALPHA, trend: float = TREND,
                min_n: int = MIN_SEEDS) -> PairedTest:
    """One-sided paired t-test of per-seed differences ``values`` (NaN / None dropped) for a
    claimed sign ``sign`` (+1: mean > 0, -1: mean < 0), with the verdict of the module doc."""
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    xs = finite(values)
    n = len(xs)
    agree = sum(1 for x in xs if sign * x > 0)
    if n == 0:
        return PairedTest(0, None, None, None, None, None, None, None, None, 0, "insufficient", "no paired value")
    mean = sum(xs) / n
    if n < 2:
        return PairedTest(n, mean, None, None, None, None, None, None, signflip_p(xs, sign), agree,
                          "insufficient", f"{n} paired seed: a direction, not a result (need >= {min_n})")
    sd = stdev(xs)
    se = sd / math.sqrt(n)
    pf = signflip_p(xs, sign)
    if se == 0:
        # Every seed gave the same difference: no spread to test against. Exact ties are a
        # property of the setup (e.g. identical runs), so the verdict says so instead of p = 0.
        t = p = None
        lo = hi = mean
        if mean == 0:
            verdict, reason = "inconclusive", "every seed exactly 0"
        else:
            verdict = "holds" if sign * mean > 0 else "fails"
            reason = "every seed equal (no spread): the difference is deterministic"
    else:
        t = mean / se
        tdist = _st.t(df=n - 1)
        p = float(tdist.sf(sign * t))  # one-sided, claimed direction
        half = float(tdist.ppf(0.975)) * se
        lo, hi = mean - half, mean + half
        p_opp = 1.0 - p
        if p < alpha:
            verdict = "holds"
        elif p_opp < alpha:
            verdict = "fails"
        elif p < trend:
            verdict = "trend"
        else:
            verdict = "inconclusive"
        reason = f"one-sided t-test p = {_p(p)}" + (f" (opposite direction p = {_p(p_opp)})" if verdict == "fails" else "")
    if n < min_n:
        reason = f"{n} paired seeds (< {min_n}): {reason}; not a result"
        verdict = "insufficient"
    reason += f"; {agree}/{n} seeds on the claimed side"
    return PairedTest(n, mean, sd, se, lo, hi, t, p, pf, agree, verdict, reason)


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def combine(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its checks': *fails* if any check fails; else *insufficient* if
    any lacks runs; else the weakest of holds > trend > inconclusive (a claim holds only if
    every part of it does)."""
    if not verdicts:
        return "insufficient"
    if "fails" in verdicts:
        return "fails"
    if "insufficient" in verdicts:
        return "insufficient"
    for v in ("inconclusive", "trend"):
        if v in verdicts:
            return v
    return "holds"


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
