"""Claim 7 (asym's own, not the paper's): the entropy-targeting beta schedule
(method ``asym_adaptive``, asymcli/algorithm/schedule.py) holds entropy nearer its target
than each fixed pair, at no cost in test accuracy against GRPO.

Present only when the checked runs include ``asym_adaptive`` runs (other results directories
get no such claim and no suggestions to add it).

- Tracking error of a run: the mean over the second half of training (steps > T/2) of
  |H - H*| / H*, with H* the target the schedule's run of the same seed logged
  (``entropy_target``: fixed at its first step). A fixed pair's run of that seed is scored
  against the same H*, so the comparison is paired by seed.
- Checks: tracking error of the schedule minus that of REINFORCE, GRPO and AsymGRPO (0.9, 0.4)
  (claimed < 0), and the schedule's test accuracy minus GRPO's (claimed > 0; with the TOST
  equivalence verdict like every accuracy check).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .base import Check, Claim, Inputs, _mean, _seed_key, make_check
from .data import ASYM, GRPO, REINFORCE, RunData, group_label
from .mechanism import accuracy, accuracy_check, accuracy_notes

ADAPTIVE = ("asym_adaptive", None, None)
FIXED = (REINFORCE, GRPO, ASYM)


def target_of(run: RunData) -> float | None:
    """The schedule's absolute entropy target (its first finite ``entropy_target``)."""
    return next((r["entropy_target"] for r in run.rows if math.isfinite(r.get("entropy_target", math.nan))), None)


def tracking_error(run: RunData, target: float, last_step: int) -> float | None:
    """mean over steps in (last_step / 2, last_step] of |H - target| / target."""
    hs = [r["entropy"] for r in run.rows if last_step / 2 < r["step"] <= last_step and math.isfinite(r["entropy"])]
    return sum(abs(h - target) for h in hs) / len(hs) / target if hs and target > 0 else None


def tracking(inp: Inputs) -> dict[tuple, dict[int, float]]:
    """Tracking error per group and seed, against the schedule's target of that seed."""
    sched = inp.groups.get(ADAPTIVE, {})
    out: dict[tuple, dict[int, float]] = {g: {} for g in (ADAPTIVE, *FIXED)}
    for seed, run in sched.items():
        target = target_of(run)
        if target is None or not run.rows:
            continue
        last = run.rows[-1]["step"]
        for g in out:
            other = inp.groups.get(g, {}).get(seed)
            err = tracking_error(other, target, last) if other is not None else None
            if err is not None:
                out[g][seed] = err
    return out


def _tracking_check(err: Mapping[tuple, Mapping[int, float]], inp: Inputs, fixed: tuple) -> Check:
    a, b = err[ADAPTIVE], err[fixed]
    seeds = sorted(set(a) & set(b))
    runs = [x for s in seeds for x in (inp.groups[ADAPTIVE][s].run_id, inp.groups[fixed][s].run_id)]
    return make_check(f"{group_label(ADAPTIVE)} − {group_label(fixed)}: entropy tracking error", -1,
                      {_seed_key(s): a[s] - b[s] for s in seeds}, unit="fraction of target",
                      levels={group_label(ADAPTIVE): _mean(a[s] for s in seeds),
                              group_label(fixed): _mean(b[s] for s in seeds)},
                      runs=runs, missing_reason=f"no {group_label(fixed)} run of a seed the schedule ran")


def claim_schedule(inp: Inputs) -> Claim | None:
    if not inp.groups.get(ADAPTIVE):
        return None
    err = tracking(inp)
    groups = [ADAPTIVE, *FIXED]
    acc = accuracy(inp, groups)
    checks = [_tracking_check(err, inp, g) for g in FIXED] + [accuracy_check(inp, acc, ADAPTIVE, GRPO, +1)]
    sched = inp.groups[ADAPTIVE]
    half = {s: [r for r in run.rows if r["step"] > run.rows[-1]["step"] / 2] for s, run in sched.items() if run.rows}
    betas = {
        "title": "The schedule's betas and target per seed (second half of training)",
        "columns": ["seed", "target H*", "mean beta_pos", "mean beta_neg", "mean H"],
        "rows": [[s, target_of(sched[s]), _mean(r["beta_pos"] for r in rows), _mean(r["beta_neg"] for r in rows),
                  _mean(r["entropy"] for r in rows)] for s, rows in sorted(half.items())],
    }
    notes = ["tracking error: mean over the second half of training of |H - H*| / H*, H* = the schedule's "
             "target of that seed (its entropy_target column); fixed pairs are scored against the same H*"]
    notes += accuracy_notes(acc, groups)
    claim = Claim("7", f"{group_label(ADAPTIVE)} tracks its entropy target better than each fixed pair, and "
                  "beats GRPO in test accuracy", "asym's extension (paper Sec. 4, Limitations: adaptive beta)",
                  "setting the betas from entropy, kappa_B and the accuracy histogram holds entropy where asked",
                  checks, [betas], notes)
    return inp.finish(claim, groups)
