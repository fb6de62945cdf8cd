"""The paper's claims about training dynamics and accuracy (claims 1-5, Table 2): kappa-hat, entropy
curves, the two channels, sign flips, each a paired test over seeds (the rule in :mod:`.base`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from . import stats
from .data import (ASYM, ENT_DECREASE, ENT_INCREASE, GRPO, NEG_ONLY, POS_ONLY, REINFORCE, REINFORCE_ENT, SYM,
                   GroupKey, RunData, group_label)
from .base import BEFORE_UPDATE, Check, Claim, Inputs, _finite, _mean, _seed_key, make_check, seed_text


# ---------------------------------------------------------------------------
# Claim 1: Table 1, kappa-hat > 0
# ---------------------------------------------------------------------------


def run_kappa_hat(run: RunData, steps: int) -> float:
    """kappa-hat x 1e3 of one run: the mean kappa_B over its first ``steps`` training steps
    (``asymcli.algorithm.metrics.kappa_hat``; steps without a mixed group skipped)."""
    from ...algorithm.metrics import kappa_hat

    return kappa_hat([r["kappa"] for r in run.rows], steps) * 1e3


def claim_kappa(inp: Inputs) -> Claim:
    T = inp.kappa_steps
    values = {rid: run_kappa_hat(r, T) for rid, r in inp.runs.items() if r.rows}
    used = {rid: len(_finite(row["kappa"] for row in r.rows[:T])) for rid, r in inp.runs.items()}
    rows = []
    for g, seeds in inp.groups.items():
        per = {_seed_key(s): values.get(r.run_id, math.nan) for s, r in sorted(seeds.items())}
        xs = _finite(per.values())
        rows.append([group_label(g), len(xs), _mean(xs), stats.stdev(xs) if len(xs) > 1 else None,
                     min(used[r.run_id] for r in seeds.values()), seed_text(per)])
    pooled = _finite(values.values())
    if pooled:
        rows.append(["all runs pooled", len(pooled), _mean(pooled), stats.stdev(pooled) if len(pooled) > 1 else None,
                     min(used.values()), ""])
    table = {"title": f"κ̂ x 10³ over the first {T} training steps, per run group (mean over seeds)",
             "columns": ["Runs", "n", "κ̂ x 10³", "std", "steps used (min)", "per seed"], "rows": rows}
    notes = [f"κ̂ is estimated on every run's own rollouts (Appendix E, steps 1..{T}); the paper "
             "estimates it at the start of training, so the REINFORCE runs decide."]
    rein = inp.groups.get(REINFORCE, {})
    if rein:
        per = {_seed_key(s): values.get(r.run_id, math.nan) for s, r in sorted(rein.items())}
        check = make_check("κ̂ x 10³, REINFORCE runs", +1, per, unit="x 10³",
                           runs=[r.run_id for r in rein.values()],
                           missing_reason="no mixed-outcome group in the first steps")
    elif pooled:
        per = {rid: v for rid, v in values.items() if math.isfinite(v)}
        check = make_check("κ̂ x 10³, all runs pooled (no REINFORCE runs)", +1, per, unit="x 10³",
                           runs=list(per))
        notes.append("no REINFORCE run: the verdict uses every run's κ̂ as one sample; runs sharing a "
                     "seed share their start, so the SE is optimistic.")
    else:
        check = make_check("κ̂ x 10³, REINFORCE runs", +1, {}, missing_reason="no REINFORCE run")
    nan_runs = [rid for rid, v in values.items() if not math.isfinite(v)]
    if nan_runs:
        notes.append(f"no mixed-outcome group in the first {T} steps (κ̂ undefined): {', '.join(nan_runs)}")
    claim = Claim("1", f"κ̂ over the first {T} steps is positive", "Table 1, Prop. 1, App. E",
                  "the sign condition under which the positive channel raises entropy and the negative "
                  "channel lowers it", [check], [table], notes)
    return inp.finish(claim, [REINFORCE])


# ---------------------------------------------------------------------------
# Claims 2, 3: channel isolation against REINFORCE (Prop. 1, Fig. 2, Sec. 3.1)
# ---------------------------------------------------------------------------


def curve_gap(a: RunData, b: RunData, column: str, sign: int) -> dict[str, float] | None:
    """Mean of A - B over the steps both runs logged (``column`` finite), the fraction of those
    steps where sign * (A - B) > 0, and each curve's mean. Columns measured before the update
    (``BEFORE_UPDATE``) leave out the first training step. None if no common step."""
    va = {r["step"]: r[column] for r in a.rows if math.isfinite(r[column])}
    vb = {r["step"]: r[column] for r in b.rows if math.isfinite(r[column])}
    steps = sorted(set(va) & set(vb))
    if column in BEFORE_UPDATE and a.rows and b.rows:
        first = min(a.rows[0]["step"], b.rows[0]["step"])
        steps = [s for s in steps if s > first]
    if not steps:
        return None
    diffs = [va[s] - vb[s] for s in steps]
    return {"mean": sum(diffs) / len(diffs), "frac": sum(1 for d in diffs if sign * d > 0) / len(diffs),
            "n_steps": float(len(steps)), "a": sum(va[s] for s in steps) / len(steps),
            "b": sum(vb[s] for s in steps) / len(steps)}


def curve_check(inp: Inputs, a: GroupKey, b: GroupKey, column: str, sign: int, what: str,
                unit: str = "") -> Check:
    """A vs B on a per-step metrics column, paired by seed."""
    ga, gb = inp.groups.get(a, {}), inp.groups.get(b, {})
    per, frac, la, lb, runs = {}, {}, [], [], []
    for s in sorted(set(ga) & set(gb)):
        gap = curve_gap(ga[s], gb[s], column, sign)
        if gap is None:
            continue
        per[_seed_key(s)] = gap["mean"]
        frac[_seed_key(s)] = gap["frac"]
        la.append(gap["a"])
        lb.append(gap["b"])
        runs += [ga[s].run_id, gb[s].run_id]
    absent = [group_label(g) for g in (a, b) if not inp.groups.get(g)]
    reason = f"no {' or '.join(absent)} run" if absent else "no seed with both runs and common steps"
    return make_check(f"{group_label(a)} − {group_label(b)}: {what}", sign, per, unit=unit,
                      levels={group_label(a): _mean(la), group_label(b): _mean(lb)},
                      extra={"frac_steps": frac, "frac_steps_mean": _mean(frac.values())} if per else {},
                      runs=runs, missing_reason=reason)


def claim_entropy(inp: Inputs) -> Claim:
    checks = [curve_check(inp, POS_ONLY, REINFORCE, "entropy", +1, "mean entropy gap", "nats/token"),
              curve_check(inp, NEG_ONLY, REINFORCE, "entropy", -1, "mean entropy gap", "nats/token")]
    notes = ["value per seed: mean over common training steps (after the first) of the entropy difference "
             "(the area between the curves per step), which is what is tested.",
             "the paper's figure reads \"stays above / below\" (every step); that is not what is tested, so "
             "the claim is worded on average. The fraction of steps on the claimed side (frac_steps, per seed "
             "and mean) is a measurement shown beside each check, not tested: 0.5 is as often on either side "
             "(steps of one run are autocorrelated, so they are not independent trials)."]
    claim = Claim("2", "Pos-Only entropy lies above REINFORCE on average over training, Neg-Only below "
                  "(area between the curves)", "Prop. 1, Fig. 2 (a, e)",
                  "positive-channel modulation sustains entropy, negative-channel modulation prunes it",
                  checks, [], notes)
    return inp.finish(claim, [REINFORCE, POS_ONLY, NEG_ONLY])


def claim_channels(inp: Inputs) -> Claim:
    checks = [curve_check(inp, POS_ONLY, REINFORCE, "none_solved_frac", -1, "none-solved fraction"),
              curve_check(inp, NEG_ONLY, REINFORCE, "logprob_gain_correct", +1,
                          "log-prob gain on correct rollouts", "nats/sequence")]
    notes = ["none-solved: fraction of prompt groups with no correct rollout, mean over training steps "
             "after the first; log-prob gain: E[log π_new(y) − log π_old(y)] over correct rollouts "
             "(sequence sum), mean over every training step."]
    claim = Claim("3a", "Pos-Only lowers the none-solved fraction; Neg-Only raises the log-prob gain on "
                  "correct rollouts", "Sec. 3.1, Fig. 2 (c, d)",
                  "the positive channel expands the solvable set; the negative channel reduces "
                  "interference with correct paths", checks, [], notes)
    return inp.finish(claim, [REINFORCE, POS_ONLY, NEG_ONLY])


# ---------------------------------------------------------------------------
# Claims 4, 5: test accuracy (Fig. 3, Table 2)
# ---------------------------------------------------------------------------


@dataclass
class Accuracy:
    """Test accuracy x 100 per group and seed, and where it came from."""

    values: dict[GroupKey, dict[int, float]]
    source: str  # "samples" | "greedy" | "none"
    benchmarks: list[str]
    notes: list[str]

    @property
    def described(self) -> str:
        if self.source == "samples":
            return (f"held-out Avg@k from samples.parquet at the reported checkpoint, mean over "
                    f"{', '.join(self.benchmarks)} (x 100)")
        if self.source == "greedy":
            return "greedy held-out accuracy, last eval_greedy_acc of metrics.parquet (x 100): no samples.parquet"
        return "no accuracy"


def accuracy(inp: Inputs, groups: Sequence[GroupKey]) -> Accuracy:
    """Test accuracy of every run of ``groups``: Avg@k from samples where any of them has
    samples (averaged over the benchmarks all runs with samples share), else greedy."""
    runs = [r for g in groups for r in inp.groups.get(g, {}).values()]
    with_samples = [r for r in runs if r.scores]
    notes: list[str] = []
    values: dict[GroupKey, dict[int, float]] = {g: {} for g in groups}
    if with_samples:
        sets = [set(r.scores) for r in with_samples]
        common = sorted(set.intersection(*sets))
        dropped = sorted(set.union(*sets) - set(common))
        if dropped:
            notes.append(f"benchmarks not evaluated for every compared run, left out: {', '.join(dropped)}")
        if not common:
            return Accuracy(values, "none", [], notes + ["the compared runs share no benchmark"])
        no = [r.run_id for r in runs if not r.scores]
        if no:
            notes.append(f"no samples.parquet, left out: {', '.join(no)}")
        steps = sorted({r.score_step for r in with_samples if r.score_step is not None})
        if steps:
            notes.append(f"checkpoint step(s): {', '.join(str(s) for s in steps)}")
        for r in with_samples:
            values[r.group][r.seed] = 100.0 * sum(r.scores[b] for b in common) / len(common)
        return Accuracy(values, "samples", common, notes)
    with_greedy = [r for r in runs if r.greedy is not None]
    if not with_greedy:
        return Accuracy(values, "none", [], notes)
    for r in with_greedy:
        values[r.group][r.seed] = 100.0 * r.greedy[1]  # type: ignore[index]
    steps = sorted({r.greedy[0] for r in with_greedy})  # type: ignore[index]
    notes.append(f"greedy accuracy at step(s): {', '.join(str(s) for s in steps)}")
    return Accuracy(values, "greedy", [], notes)


def accuracy_check(inp: Inputs, acc: Accuracy, a: GroupKey, b: GroupKey, sign: int) -> Check:
    va, vb = acc.values.get(a, {}), acc.values.get(b, {})
    seeds = sorted(set(va) & set(vb))
    per = {_seed_key(s): va[s] - vb[s] for s in seeds}
    absent = [group_label(g) for g in (a, b) if not inp.groups.get(g)]
    reason = f"no {' or '.join(absent)} run" if absent else "no seed with both runs evaluated"
    ga, gb = inp.groups.get(a, {}), inp.groups.get(b, {})
    check = make_check(f"{group_label(a)} − {group_label(b)}: test accuracy", sign, per, unit="points",
                       levels={group_label(a): _mean(va[s] for s in seeds), group_label(b): _mean(vb[s] for s in seeds)},
                       extra={"source": acc.source}, runs=[x for s in seeds for x in (ga[s].run_id, gb[s].run_id)],
                       missing_reason=reason, margin=inp.equivalence_margin)
    if check.std is not None and check.std > 0:
        try:  # sizing: the paired seeds that detect a difference of the margin's size (80% power, this sd)
            check.extra["seeds_for_margin"] = stats.seeds_for(check.std, inp.equivalence_margin)
        except ValueError:
            check.extra["seeds_for_margin"] = None
    return check


def ordering(acc: Accuracy, groups: Sequence[GroupKey]) -> str:
    """"A 61.2 > B 58.0 > ..." by mean accuracy over seeds (groups with a value)."""
    means = [(group_label(g), _mean(acc.values.get(g, {}).values())) for g in groups]
    means = sorted([(lab, m) for lab, m in means if m is not None], key=lambda t: -t[1])
    return " > ".join(f"{lab} {m:.2f}" for lab, m in means)


def accuracy_notes(acc: Accuracy, groups: Sequence[GroupKey], what: str = "accuracy", after: str = "") -> list[str]:
    """A claim's notes on accuracy: where it came from, and the measured order of ``groups``
    (``after`` appended to that line, e.g. the paper's order)."""
    notes = [f"{what}: {acc.described}"] + acc.notes
    order = ordering(acc, groups)
    if order:
        notes.append(f"measured order (mean over seeds): {order}{after}")
    return notes


def claim_channel_accuracy(inp: Inputs) -> Claim:
    groups = [POS_ONLY, NEG_ONLY, REINFORCE, GRPO]
    acc = accuracy(inp, groups)
    checks = [accuracy_check(inp, acc, POS_ONLY, REINFORCE, +1), accuracy_check(inp, acc, NEG_ONLY, REINFORCE, +1)]
    notes = accuracy_notes(acc, groups, after="; the paper (Qwen3-4B): GRPO 56.50 > Pos-Only 55.31 > Neg-Only "
                                              "54.49 > REINFORCE 53.71")
    claim = Claim("3b", "Pos-Only and Neg-Only each beat REINFORCE in test accuracy", "Sec. 3.1, Obs. 4, Table 2",
                  "either channel's modulation alone improves on the unmodulated reference", checks, [], notes)
    return inp.finish(claim, [POS_ONLY, NEG_ONLY, REINFORCE])


def claim_entropy_bonus(inp: Inputs) -> Claim:
    groups = [REINFORCE, REINFORCE_ENT, POS_ONLY]
    acc = accuracy(inp, groups)
    checks = [curve_check(inp, REINFORCE_ENT, REINFORCE, "entropy", +1, "mean entropy gap", "nats/token"),
              accuracy_check(inp, acc, REINFORCE_ENT, POS_ONLY, -1)]
    notes = ["value per seed: entropy, the mean over common training steps (after the first) of the "
             "difference"] + accuracy_notes(acc, groups)
    claim = Claim("3c", "the entropy bonus raises entropy above REINFORCE, yet ends below Pos-Only in test "
                  "accuracy", "Sec. 3.1, Fig. 2 (a, b)",
                  "entropy added uniformly is not the productive entropy the positive channel adds", checks, [], notes)
    return inp.finish(claim, groups)


def claim_flip_entropy(inp: Inputs) -> Claim:
    checks = [curve_check(inp, ENT_DECREASE, GRPO, "entropy", -1, "mean entropy gap", "nats/token"),
              curve_check(inp, ENT_INCREASE, GRPO, "entropy", +1, "mean entropy gap", "nats/token")]
    notes = ["value per seed: mean over common training steps (after the first) of the entropy difference."]
    claim = Claim("4a", "the flips invert the targeted channel's entropy effect: EntDecrease below GRPO, "
                  "EntIncrease above", "Sec. 3.2, Fig. 3 (a, c)",
                  "reflecting a channel's accuracy dependence reverses its entropy pressure", checks, [], notes)
    return inp.finish(claim, [GRPO, ENT_DECREASE, ENT_INCREASE])


def claim_flip(inp: Inputs) -> Claim:
    groups = [GRPO, ENT_DECREASE, ENT_INCREASE]
    acc = accuracy(inp, groups)
    checks = [accuracy_check(inp, acc, ENT_DECREASE, GRPO, -1), accuracy_check(inp, acc, ENT_INCREASE, GRPO, -1)]
    notes = accuracy_notes(acc, groups)
    claim = Claim("4b", "EntDecrease and EntIncrease end below GRPO in test accuracy", "Sec. 3.2, Fig. 3 (b, d)",
                  "reversing either channel's dependence on group accuracy hurts accuracy", checks, [], notes)
    return inp.finish(claim, groups)


def claim_table2(inp: Inputs) -> Claim:
    groups = [ASYM, GRPO, REINFORCE]
    acc = accuracy(inp, groups)
    checks = [accuracy_check(inp, acc, ASYM, GRPO, +1), accuracy_check(inp, acc, ASYM, REINFORCE, +1)]
    notes = accuracy_notes(acc, groups, "Avg.")
    claim = Claim("5a", f"{group_label(ASYM)} beats GRPO and REINFORCE on Avg.", "Table 2, Obs. 1",
                  "decoupled channel strengths improve test accuracy over the baselines", checks, [], notes)
    return inp.finish(claim, groups)


def claim_symmetric(inp: Inputs) -> Claim:
    groups = [ASYM, SYM, GRPO, REINFORCE]
    acc = accuracy(inp, groups)
    checks = [accuracy_check(inp, acc, SYM, GRPO, +1), accuracy_check(inp, acc, SYM, REINFORCE, +1),
              accuracy_check(inp, acc, ASYM, SYM, +1)]
    notes = accuracy_notes(acc, groups, "Avg.", f"; claimed: {group_label(ASYM)} > {group_label(SYM)} > best of "
                                               "GRPO, REINFORCE")
    claim = Claim("5b", f"the symmetric ablation {group_label(SYM)} falls between the baselines and "
                  f"{group_label(ASYM)}", "Table 2, Obs. 2",
                  "the gain comes from decoupling the channels, not from stronger modulation alone", checks, [], notes)
    return inp.finish(claim, groups)


def claim_asym_entropy(inp: Inputs) -> Claim:
    checks = [curve_check(inp, ASYM, GRPO, "entropy", +1, "mean entropy gap", "nats/token"),
              curve_check(inp, ASYM, REINFORCE, "entropy", +1, "mean entropy gap", "nats/token")]
    notes = ["Prop. 1 applied to AsymGRPO: with beta_pos > beta_neg the positive (entropy-sustaining) "
             "channel is the stronger one, so while kappa > 0 its entropy should lie above GRPO's (0.5, 0.5) "
             "and REINFORCE's (0, 0). The paper's Fig. 4b reports AsymGRPO's entropy as comparable to "
             "GRPO's; this check tests the prediction, not a sentence of the paper.",
             "value per seed: mean over common training steps (after the first) of the entropy difference."]
    claim = Claim("5c", f"{group_label(ASYM)} keeps entropy above GRPO and REINFORCE", "Prop. 1, Fig. 4b",
                  "the stronger positive channel sustains entropy", checks, [], notes)
    return inp.finish(claim, [ASYM, GRPO, REINFORCE])
