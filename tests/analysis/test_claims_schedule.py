"""Claim 7 (asymcli/analysis/claims/schedule.py): the adaptive schedule's tracking error and
accuracy, paired by seed, on synthetic RunData."""

from __future__ import annotations

import math

import pytest

from asymcli.analysis.claims import evaluate
from asymcli.analysis.claims.data import RunData
from asymcli.analysis.claims.schedule import tracking_error


def run(method, seed, entropies, *, target=None, acc=0.6, bp=None, bn=None, saturated=()):
    rows = [{"step": s + 1, "entropy": h, "entropy_target": target if target is not None else math.nan,
             "beta_pos": 0.7, "beta_neg": 0.3, "reward_mean": 0.5, "kappa": 0.01, "eval_greedy_acc": math.nan,
             "schedule_saturated": (1.0 if s + 1 in saturated else 0.0) if target is not None else math.nan}
            for s, h in enumerate(entropies)]
    if method == "asym":
        rid = f"asym_bp{bp:g}_bn{bn:g}_s{seed}"
    elif method == "asym_adaptive" and bp is not None:  # a target of its own
        rid = f"asym_adaptive_t{bp:g}_s{seed}"
    else:
        rid = f"{method}_s{seed}"
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
    # second half: steps 4-6 -> |0.1-0.1|, |0.08-0.1|, |0.06-0.1|: nats/token, and over 0.1
    assert tracking_error(r, 0.1, 6) == pytest.approx((0 + 0.02 + 0.04) / 3)
    assert tracking_error(r, 0.1, 6, relative=True) == pytest.approx((0 + 0.2 + 0.4) / 3)


def test_claim7_present_only_with_adaptive_runs_and_paired():
    claims = {c.id: c for c in evaluate(world(), seeds=range(5))}
    c = claims["7"]
    refs = ["REINFORCE", "GRPO", "AsymGRPO (0.9, 0.4)"]
    assert [k.label for k in c.checks] == (
        [f"AsymGRPO-Adaptive − {r}: entropy tracking error" for r in refs]
        + [f"AsymGRPO-Adaptive − {r}: test accuracy" for r in refs])
    for k in c.checks[:3]:
        assert k.n == 5 and k.mean < 0 and k.verdict == "holds" and k.unit == "nats/token"
    acc = c.checks[4]  # − GRPO
    assert acc.n == 5 and acc.mean == pytest.approx(100 * (0.63 + 0.002 * 2 - 0.61 - 0.01 * 0.4), abs=1e-9)
    assert c.tables[0]["rows"][0][1] == pytest.approx(0.05)  # seed 0's target
    # no adaptive run: no claim 7 and nothing suggested for it
    without = evaluate(world(adaptive=False), seeds=range(5))
    assert "7" not in {x.id for x in without}
    assert not any("asym_adaptive" in m for x in without for m in x.missing)


def test_claim7_compares_each_target_with_each_fixed_reference_and_counts_saturation():
    """Two targets (grid.adaptive_targets) are two schedule groups; the bound pair (1, 0) and
    Pos-Only are references; saturated steps are counted per seed with the first one."""
    runs = {}
    for s in range(4):
        d = 0.001 * s
        rs = [run("pos_only", s, [0.05 + 0.001 * t + d for t in range(10)], acc=0.60),
              run("asym", s, [0.05 + 0.002 * t + d for t in range(10)], acc=0.60, bp=1.0, bn=0.0),
              run("asym_adaptive", s, [0.055 + d] * 10, target=0.055 + d, bp=1.1, acc=0.61,
                  saturated=range(7, 11)),
              run("asym_adaptive", s, [0.045 + d] * 10, target=0.045 + d, bp=0.9, acc=0.61)]
        runs.update({r.run_id: r for r in rs})
    c = {x.id: x for x in evaluate(runs, seeds=range(4))}["7"]
    labels = [k.label for k in c.checks]
    assert labels[:2] == ["AsymGRPO-Adaptive (target 0.9) − Pos-Only Modulation: entropy tracking error",
                          "AsymGRPO-Adaptive (target 0.9) − AsymGRPO (1, 0): entropy tracking error"]
    assert len(labels) == 2 * 2 * 2 and sum("target 1.1" in x for x in labels) == 4
    for k in c.checks:
        assert k.n == 4
    low, high = c.tables  # sorted by target
    assert [r[6:] for r in high["rows"]] == [[4, 7]] * 4  # 4 saturated steps, the first at step 7
    assert [r[6:] for r in low["rows"]] == [[0, None]] * 4
