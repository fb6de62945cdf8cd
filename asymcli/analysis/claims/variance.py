"""Where the noise of a paired accuracy difference comes from: evaluation sampling, the base
model, or the training seed. Sizing an experiment needs this split: raising k (more samples
per problem) only shrinks the first part, more seeds shrink all of them, and more bases the
second.

Model, for the difference d = Avg@k(A) - Avg@k(B) of one pair of runs (same base and seed):

    d = delta + b_base + e_seed + e_eval

- ``e_eval``: the sampling noise of the two Avg@k evaluations given each run's per-problem
  accuracy. Its variance is known from the samples themselves: for one run with N problems
  and k samples each, Var(Avg@k) = sum_i q_i (1 - q_i) / (k N^2), estimated without bias by
  sum_i s_i^2 / (k N^2) with s_i^2 = k / (k - 1) * phat_i (1 - phat_i) (:func:`eval_var`).
  The pair's is the sum of its two runs'.
- ``b_base``: a base-to-base shift of the difference (several bases only), the one-way
  random-effects ANOVA component (:func:`decompose`).
- ``e_seed``: what is left, the training run's own randomness.

Everything here is pure (numbers in, numbers out): numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Decomposition", "crn_gain", "decompose", "eval_var"]


def eval_var(correct: np.ndarray) -> float:
    """Unbiased variance of one run's Avg@k (as a fraction in [0, 1]) from evaluation sampling.

    ``correct``: [N, k] 0/1 outcomes, problem by sample (k >= 2). Returns
    sum_i s_i^2 / (k N^2), s_i^2 the unbiased sample variance of problem i's k outcomes."""
    c = np.asarray(correct, dtype=float)
    if c.ndim != 2 or c.shape[1] < 2 or c.shape[0] == 0:
        raise ValueError(f"correct must be [N, k] with N >= 1 and k >= 2, got shape {c.shape}")
    n, k = c.shape
    s2 = c.var(axis=1, ddof=1)
    return float(s2.sum() / (k * n * n))


@dataclass(frozen=True)
class Decomposition:
    """Variance components of a paired difference, in the difference's unit squared."""

    n: int  # pairs
    bases: int  # distinct bases among them
    mean: float
    total: float  # sample variance of the differences (n - 1)
    eval: float  # mean evaluation-sampling variance of a difference (known from the samples)
    base: float  # between-base component (0 with one base, or when the ANOVA estimate is < 0)
    seed: float  # within-base variance less eval (floored at 0); with one base: total - eval

    @property
    def sd(self) -> float:
        return math.sqrt(self.total)

    def share(self, part: str) -> float:
        return getattr(self, part) / self.total if self.total > 0 else math.nan

    def sd_with_k(self, k_old: int, k_new: int) -> float:
        """The sd of a difference had each evaluation drawn ``k_new`` samples per problem
        instead of ``k_old`` (the eval part scales as 1/k, the rest stays)."""
        return math.sqrt(max(0.0, self.total - self.eval + self.eval * k_old / k_new))


def decompose(diffs: Sequence[float], eval_vars: Sequence[float], bases: Sequence[int] | None = None) -> Decomposition:
    """Split the variance of paired differences ``diffs`` into evaluation sampling (each
    pair's known ``eval_vars``, same unit squared), base and training seed.

    ``bases``: the base of each pair (None or all equal: no base component). The base part
    is the random-effects one-way ANOVA estimate (MSB - MSW) / n0 with n0 the effective group
    size, floored at 0."""
    d = np.asarray(diffs, dtype=float)
    ev = np.asarray(eval_vars, dtype=float)
    if d.shape != ev.shape or d.ndim != 1 or len(d) < 2:
        raise ValueError("diffs and eval_vars must be equal-length 1-D sequences of at least 2 pairs")
    n = len(d)
    total = float(d.var(ddof=1))
    e = float(ev.mean())
    base_part = 0.0
    within = total  # the variance of a difference within one base
    n_bases = 1
    if bases is not None:
        b = np.asarray(bases)
        if b.shape != d.shape:
            raise ValueError("bases must give one base per difference")
        labels = sorted(set(b.tolist()))
        n_bases = len(labels)
        if n_bases > 1:
            groups = [d[b == lab] for lab in labels]
            sizes = np.array([len(g) for g in groups], dtype=float)
            grand = d.mean()
            msb = float(sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / (n_bases - 1))
            dfw = n - n_bases
            msw = float(sum(((g - g.mean()) ** 2).sum() for g in groups) / dfw) if dfw > 0 else math.nan
            n0 = (n - (sizes ** 2).sum() / n) / (n_bases - 1)
            if math.isfinite(msw) and n0 > 0:
                base_part = max(0.0, (msb - msw) / n0)
                within = msw
    seed_part = max(0.0, within - e)
    return Decomposition(n=n, bases=n_bases, mean=float(d.mean()), total=total, eval=e, base=base_part,
                         seed=seed_part)


def crn_gain(a: Mapping[int, float], b: Mapping[int, float], base_of: Mapping[int, int] | None = None) -> tuple[float, float, int]:
    """What pairing by seed buys (common random numbers: the same base, prompt order and
    sampling streams for both methods of a seed).

    Returns (sd of the matched differences a[s] - b[s], sd of the mismatched differences
    a[s] - b[t] over every s != t sharing a base, number of mismatched pairs). Without
    pairing, a difference of two independent runs has the mismatched sd; the ratio of the
    two variances is how many times more seeds an unpaired design would need."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        raise ValueError("need at least 2 seeds with both methods")
    base_of = base_of or {}
    matched = np.array([a[s] - b[s] for s in seeds])
    mism = np.array([a[s] - b[t] for s in seeds for t in seeds
                     if s != t and base_of.get(s) == base_of.get(t)])
    if len(mism) < 2:
        raise ValueError("no two seeds share a base: nothing to mismatch")
    return float(matched.std(ddof=1)), float(mism.std(ddof=1)), len(mism)
