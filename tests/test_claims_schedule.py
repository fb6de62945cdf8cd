"""Claim 7 (asymcli/analysis/claims/schedule.py): the adaptive schedule's tracking error and
accuracy, paired by seed, on synthetic RunData."""

from __future__ import annotations

import math

import pytest

from asymcli.analysis.claims import evaluate
from asymcli.analysis.claims.data import RunData
from asymcli.analysis.claims.schedule import tracking_error


def run(method, seed, entropies, *, target=None, acc=0.6, bp=None, bn=None):
    rows = [{"step": s + 1, "entropy": h, "entropy_target": target if target is not None else math.nan,
             "beta_pos": 0.7, "beta_neg": 0.3, "reward_mean": 0.5, "kappa": 0.01, "eval_greedy_acc": math.nan}
            for s, h in enumerate(entropies)]
    rid = f"asym_bp{bp:g}_bn{bn:g}_s{seed}" if method == "asym" else f"{method}_s{seed}"
    return RunData(rid, method, bp, bn, seed, rows, greedy=(len(rows), acc), scores={"arith_heldout": acc},
                   score_step=len(rows))


def world(seeds=range(5), adaptive=True):
    runs = {}
    for s in seeds:
        d = 0.001 * s  # seed-to-seed noise shared by the methods of a seed
        rs = [run("reinforce", s, [0.05 - 0.002 * t + d for t in range(10)], acc=0.60 + 0.01 * (s % 2)),
              run("grpo", s, [0.05 - 0.002 * t + d for t in range(10)], acc=0.61 + 0.01 * (s % 2)),
              run("asym", s, [0.05 - 0.0015 * t + d for t in range(10)], acc=0.615, bp=0.9, bn=0.4)]
        if adaptive:
            rs.append(run("asym_adaptive", s, [0.05 - 0.0005 * t + d for t in range(10)], target=0.05 + d,
                          acc=0.63 + 0.002 * s))
        runs.update({r.run_id: r for r in rs})
    return runs


def test_tracking_error_definition():
    r = run("reinforce", 0, [0.1, 0.1, 0.1, 0.1, 0.08, 0.06])
    # second half: steps 4-6 -> |0.1-0.1|, |0.08-0.1|, |0.06-0.1| over 0.1
    assert tracking_error(r, 0.1, 6) == pytest.approx((0 + 0.2 + 0.4) / 3)


def test_claim7_present_only_with_adaptive_runs_and_paired():
    claims = {c.id: c for c in evaluate(world(), seeds=range(5))}
    c = claims["7"]
    assert [k.label.split(":")[0] for k in c.checks] == [
        "AsymGRPO-Adaptive − REINFORCE", "AsymGRPO-Adaptive − GRPO", "AsymGRPO-Adaptive − AsymGRPO (0.9, 0.4)",
        "AsymGRPO-Adaptive − GRPO"]
    for k in c.checks[:3]:
        assert k.n == 5 and k.mean < 0 and k.verdict == "holds"
    acc = c.checks[3]
    assert acc.n == 5 and acc.mean == pytest.approx(100 * (0.63 + 0.002 * 2 - 0.61 - 0.01 * 0.4), abs=1e-9)
    assert c.verdict == "holds"
    assert c.tables[0]["rows"][0][1] == pytest.approx(0.05)  # seed 0's target
    # no adaptive run: no claim 7 and nothing suggested for it
    without = evaluate(world(adaptive=False), seeds=range(5))
    assert "7" not in {x.id for x in without}
    assert not any("asym_adaptive" in m for x in without for m in x.missing)
