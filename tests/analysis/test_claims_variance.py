"""asymcli.analysis.claims.variance: the eval-sampling variance is unbiased and the decomposition
recovers known components on simulated pairs."""

from __future__ import annotations

import numpy as np
import pytest

from asymcli.analysis.claims.variance import crn_gain, decompose, eval_var


def test_eval_var_is_unbiased_for_avg_at_k():
    rng = np.random.default_rng(0)
    q = rng.uniform(0.05, 0.95, size=200)  # per-problem accuracies of one run
    k = 4
    draws = rng.random((4000, 200, k)) < q[None, :, None]
    avg = draws.mean(axis=(1, 2))
    truth = float((q * (1 - q)).sum() / (k * 200 ** 2))
    assert avg.var(ddof=1) == pytest.approx(truth, rel=0.06)
    est = np.mean([eval_var(d) for d in draws[:500]])
    assert est == pytest.approx(truth, rel=0.03)


def test_eval_var_rejects_a_single_sample():
    with pytest.raises(ValueError, match="k >= 2"):
        eval_var(np.ones((3, 1)))


def test_decompose_recovers_base_seed_and_eval_parts():
    rng = np.random.default_rng(1)
    n_bases, per_base, reps = 3, 40, 300
    sb, ss, se = 0.8, 1.2, 0.5
    est = []
    for _ in range(reps):
        base = np.repeat(np.arange(n_bases), per_base)
        d = 1.0 + rng.normal(0, sb, n_bases)[base] + rng.normal(0, ss, len(base)) + rng.normal(0, se, len(base))
        est.append(decompose(d, np.full(len(d), se ** 2), base))
    assert np.mean([e.eval for e in est]) == pytest.approx(se ** 2)
    assert np.mean([e.seed for e in est]) == pytest.approx(ss ** 2, rel=0.1)
    # the base part of 3 bases is a noisy estimate; its mean is near the truth
    assert np.mean([e.base for e in est]) == pytest.approx(sb ** 2, rel=0.35)
    one = decompose([0.0, 1.0, 2.0], [0.1, 0.1, 0.1])
    assert one.bases == 1 and one.base == 0.0 and one.total == pytest.approx(1.0)
    assert one.seed == pytest.approx(0.9) and one.share("eval") == pytest.approx(0.1)
    assert one.sd_with_k(4, 8) == pytest.approx(np.sqrt(0.95))


def test_crn_gain_sees_the_shared_seed_effect():
    rng = np.random.default_rng(2)
    seeds = range(12)
    shared = {s: rng.normal(0, 3) for s in seeds}  # what both methods of a seed share
    a = {s: 60 + shared[s] + rng.normal(0, 0.5) for s in seeds}
    b = {s: 59 + shared[s] + rng.normal(0, 0.5) for s in seeds}
    matched, unmatched, pairs = crn_gain(a, b, {s: s % 3 for s in seeds})
    assert pairs == 12 * 3  # 4 seeds per base: 4 x 3 mismatches each
    assert matched < 1.2 < 3 < unmatched
