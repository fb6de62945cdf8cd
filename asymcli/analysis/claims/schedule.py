"""Claim 7 (asym's own, not the paper's): the entropy-targeting beta schedule
(method ``asym_adaptive``, asymcli/algorithm/schedule.py) holds entropy nearer its target
than the fixed pairs a user could pick instead, at no cost in test accuracy.

Present only when the checked runs include ``asym_adaptive`` runs (other results directories
get no such claim and no suggestions to add it). Runs of several targets
(``grid.adaptive_targets``: ``asym_adaptive_t0.9_s0``) are one schedule group per target.

- Tracking error of a run: the mean over the second half of training (steps > T/2) of
  |H - H*|, in nats per token, with H* the target the schedule's run of the same seed logged
  (``entropy_target``: fixed at its first step). A fixed pair's run of that seed is scored
  against the same H*, so the comparison is paired by seed. The same error as a fraction of
  H* is in the claim's table (a relative error hides how far off a small target is).
- References: every fixed-beta group of the results among REINFORCE, GRPO, Pos-Only and the
  AsymGRPO pairs (the bound pair (1, 0) and the best fixed pairs chosen on calibration seeds,
  configs/adaptive/claim7.yaml). Each schedule group is compared with each reference on
  tracking (claimed < 0) and on test accuracy (claimed > 0, with the TOST equivalence verdict
  like every accuracy check).
- Saturation: the steps at which the schedule asked for betas past their bounds (metrics
  ``schedule_saturated``) are counted per seed, with the first such step, in the claim's table:
  a schedule that sits at (1, 0) is the fixed pair (1, 0), and the table says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .base import Check, Claim, Inputs, _mean, _seed_key, make_check
from .data import GRPO, POS_ONLY, REINFORCE, GroupKey, RunData, group_label, group_sort_key
from .mechanism import accuracy, accuracy_check, accuracy_notes

ADAPTIVE = ("asym_adaptive", None, None)
#: Fixed-beta methods a schedule is compared with, besides every AsymGRPO pair present.
NAMED_REFS = (REINFORCE, GRPO, POS_ONLY)


def schedule_groups(inp: Inputs) -> list[GroupKey]:
    """The schedule groups present: ``asym_adaptive``, and one per target of its own."""
    return sorted((g for g in inp.groups if g[0] == "asym_adaptive" and inp.groups[g]), key=group_sort_key)


def reference_groups(inp: Inputs) -> list[GroupKey]:
    """The fixed-beta groups present that claim 7 compares a schedule with."""
    refs = [g for g in inp.groups if inp.groups[g] and (g in NAMED_REFS or g[0] == "asym")]
    return sorted(refs, key=group_sort_key)


def target_of(run: RunData) -> float | None:
    """The schedule's absolute entropy target (its first finite ``entropy_target``)."""
    return next((r["entropy_target"] for r in run.rows if math.isfinite(r.get("entropy_target", math.nan))), None)


def tracking_error(run: RunData, target: float, last_step: int, relative: bool = False) -> float | None:
    """mean over steps in (last_step / 2, last_step] of |H - target| (nats/token), or of
    |H - target| / target with ``relative``."""
    hs = [r["entropy"] for r in run.rows if last_step / 2 < r["step"] <= last_step and math.isfinite(r["entropy"])]
    if not hs or not target > 0:
        return None
    err = sum(abs(h - target) for h in hs) / len(hs)
    return err / target if relative else err


def tracking(inp: Inputs, sched: GroupKey, refs: list[GroupKey],
             relative: bool = False) -> dict[GroupKey, dict[int, float]]:
    """Tracking error per group and seed, against the target of ``sched``'s run of that seed."""
    out: dict[GroupKey, dict[int, float]] = {g: {} for g in (sched, *refs)}
    for seed, run in inp.groups.get(sched, {}).items():
        target = target_of(run)
        if target is None or not run.rows:
            continue
        last = run.rows[-1]["step"]
        for g in out:
            other = inp.groups.get(g, {}).get(seed)
            err = tracking_error(other, target, last, relative) if other is not None else None
            if err is not None:
                out[g][seed] = err
    return out


def saturation(run: RunData) -> tuple[int, int | None]:
    """(steps at which the schedule saturated, the first such step or None)."""
    steps = [r["step"] for r in run.rows if r.get("schedule_saturated") is not None
             and math.isfinite(r["schedule_saturated"]) and r["schedule_saturated"] > 0]
    return len(steps), (min(steps) if steps else None)


def _tracking_check(err: Mapping[GroupKey, Mapping[int, float]], inp: Inputs, sched: GroupKey,
                    ref: GroupKey) -> Check:
    a, b = err[sched], err[ref]
    seeds = sorted(set(a) & set(b))
    runs = [x for s in seeds for x in (inp.groups[sched][s].run_id, inp.groups[ref][s].run_id)]
    return make_check(f"{group_label(sched)} − {group_label(ref)}: entropy tracking error", -1,
                      {_seed_key(s): a[s] - b[s] for s in seeds}, unit="nats/token",
                      levels={group_label(sched): _mean(a[s] for s in seeds),
                              group_label(ref): _mean(b[s] for s in seeds)},
                      runs=runs, missing_reason=f"no {group_label(ref)} run of a seed the schedule ran")


def _schedule_table(inp: Inputs, sched: GroupKey, refs: list[GroupKey]) -> dict:
    runs = inp.groups[sched]
    rel = tracking(inp, sched, refs, relative=True)
    rows = []
    for s, run in sorted(runs.items()):
        half = [r for r in run.rows if run.rows and r["step"] > run.rows[-1]["step"] / 2]
        n_sat, first = saturation(run)
        rows.append([s, target_of(run), _mean(r["beta_pos"] for r in half), _mean(r["beta_neg"] for r in half),
                     _mean(r["entropy"] for r in half), rel[sched].get(s), n_sat, first])
    return {"title": f"{group_label(sched)}: target, betas and entropy per seed (second half of training); "
                     "steps at the betas' bounds",
            "columns": ["seed", "target H* (nats/token)", "mean beta_pos", "mean beta_neg", "mean H",
                        "tracking error / H*", "saturated steps", "first saturated step"],
            "rows": rows}


def claim_schedule(inp: Inputs) -> Claim | None:
    scheds = schedule_groups(inp)
    if not scheds:
        return None
    refs = reference_groups(inp)
    groups = [*scheds, *refs]
    acc = accuracy(inp, groups)
    checks: list[Check] = []
    tables = []
    for sched in scheds:
        err = tracking(inp, sched, refs)
        checks += [_tracking_check(err, inp, sched, g) for g in refs]
        checks += [accuracy_check(inp, acc, sched, g, +1) for g in refs]
        tables.append(_schedule_table(inp, sched, refs))
    notes = ["tracking error: mean over the second half of training of |H - H*| in nats/token, H* = the "
             "schedule's target of that seed (its entropy_target column); fixed pairs are scored against the "
             "same H*; the tables give it as a fraction of H* too",
             "references: every fixed-beta group present among REINFORCE, GRPO, Pos-Only and the AsymGRPO pairs; "
             "a schedule whose betas sat at their bounds for most steps is that fixed pair (saturated steps column)"]
    notes += accuracy_notes(acc, groups)
    claim = Claim("7", "The entropy-targeting schedule tracks its target better than each fixed pair, at no cost in "
                  "test accuracy", "asym's extension (paper Sec. 4, Limitations: adaptive beta)",
                  "setting the betas from entropy, kappa_B and the accuracy histogram holds entropy where asked",
                  checks, tables, notes)
    return inp.finish(claim, groups)
