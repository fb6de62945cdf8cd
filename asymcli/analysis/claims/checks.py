"""The paper's claims as paired statistical checks on finished runs (pure: RunData in,
Claims out). Reading the artifacts is :mod:`.data`; the test is :mod:`.stats`; rendering is
:mod:`.render`.

Claims (arXiv 2604.04894):

1. Table 1: kappa-hat over the first T = ``report.kappa_steps`` training steps is positive
   (REINFORCE runs, where the paper estimates it; every run group and all runs pooled are
   shown too; without REINFORCE runs the verdict falls back to all runs pooled).
2. Proposition 1 / Figure 2: Pos-Only entropy lies above REINFORCE on average over training,
   Neg-Only below (tested on the area between the curves; the fraction of steps on the
   claimed side is reported beside it as a measurement).
3. Section 3.1: Pos-Only lowers the none-solved fraction, Neg-Only raises the log-prob
   gain on correct rollouts (both against REINFORCE).
4. Figure 3: EntDecrease and EntIncrease end below GRPO in test accuracy; and the flip
   inverts the targeted channel's entropy effect (EntDecrease below GRPO, EntIncrease above).
5a. Table 2: AsymGRPO (0.9, 0.4) beats GRPO and REINFORCE on Avg.
5b. Table 2: the symmetric ablation (0.7, 0.7) falls between the baselines and AsymGRPO.
6. Proposition 2: per group, positive gradient pressure peaks at p = 1 - beta_pos and
   negative pressure at p = beta_neg. A *measurement* (verdict "measured", never fails):
   where the token-weighted pressure of the token-mean loss peaks (see :func:`claim_peaks`);
   the untokenised mass equals Eqs. (9)-(10) by construction, so it is shown beside.

Conventions (also in every output, ``RULE``):

- Comparisons are paired by seed (same seed = same start and sampling seed); a check's
  value per seed is a difference A - B (or, for kappa, the value itself), tested with the
  one-sided paired t-test of :mod:`.stats` (verdict words there); every check shows its
  minimum detectable effect (80% power); accuracy checks also get the TOST equivalence
  verdict within ``equivalence_margin`` points. A claim computes its own verdict from its
  checks (:meth:`Claim.decide`, :func:`stats.claim_decision`: Holm for "fails").
- Steps: training rows are step >= 1 (step 0 is the trainer's evaluation-only row).
  Entropy and none-solved fraction are measured on the step's rollouts, before its update,
  so the first training step (the shared starting policy) is left out of curve
  comparisons; the log-prob gain is measured after the update and uses every step.
  "Area between curves" = mean over common steps of A - B.
- Test accuracy: Avg@k from samples.parquet at the reported checkpoint (``report.checkpoint``,
  "final" = each run's last evaluated step), averaged over the benchmarks every compared
  run has, x 100. Without samples for a comparison, the last greedy held-out accuracy of
  metrics.parquet (``eval_greedy_acc``) is used instead, and the output says so.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ...config import Config, fmt_beta, parse_run_id
from ...errors import ArtifactError, ConfigError
from . import stats
from .data import (ASYM, ENT_DECREASE, ENT_INCREASE, GRPO, NEG_ONLY, POS_ONLY, REINFORCE, REINFORCE_ENT, SYM,
                   GroupKey, RunData, by_group, group_label, group_run_id, group_sort_key, load_runs, locate)

RULE = (
    "Checks are paired by seed: the value per seed is a difference A − B (κ̂: the value itself). "
    "Test: one-sided paired t-test (n − 1 df) in the claimed direction; 95% CI: two-sided t interval "
    "of the mean; the exact sign-flip (permutation) p is shown beside it; MDE: the true difference that "
    "test detects with 80% power at this n, taking the observed sd of the differences (noncentral t). "
    "Check verdict, first that applies: holds if p < 0.05; fails if the opposite direction has p < 0.05; "
    "equivalent (accuracy checks only) if both one-sided tests (TOST) of the stated margin ±m points "
    "(report.equivalence_margin, shown with each check) have p < 0.05, i.e. the 90% CI lies inside "
    "[−m, +m]; trend if 0.05 ≤ p < 0.2; inconclusive "
    "otherwise; insufficient with fewer than 3 paired seeds or a missing run. Claim verdict: holds if "
    "every check holds (an intersection-union test: no correction needed); fails if any check's "
    "opposite-direction p, Holm-adjusted over the claim's tested checks, is < 0.05; else insufficient if "
    "a check lacks seeds; else equivalent if a check is equivalent; else the weakest of inconclusive < "
    "trend (a check failing alone but not after Holm counts as inconclusive). Measurements (claim 6) "
    "carry no verdict. Holm-adjusted p over all tested checks of the report is shown as p_holm."
)


#: Columns measured on a step's rollouts before its update: the first training step is the
#: shared starting policy, so curve comparisons leave it out.
BEFORE_UPDATE = frozenset({"entropy", "none_solved_frac", "all_solved_frac", "mixed_frac", "kappa",
                           "reward_mean"})

_finite = stats.finite


def _mean(values: Iterable[float | None]) -> float | None:
    xs = _finite(values)
    return sum(xs) / len(xs) if xs else None


@dataclass
class Check:
    """One measured comparison of a claim over seeds, with its paired test."""

    label: str
    claimed: str  # "> 0", "< 0", or the claimed value
    unit: str
    per_seed: dict[str, float]  # "s0" (or a run id) -> value
    n: int
    mean: float | None
    std: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    t: float | None
    p: float | None  # one-sided t-test p, claimed direction
    p_signflip: float | None  # exact sign-flip p, claimed direction
    verdict: str
    reason: str
    test: str = "one-sided paired t-test"
    p_holm: float | None = None  # Holm-adjusted over every tested check of the report (set by evaluate)
    p_opposite: float | None = None  # one-sided p in the opposite direction (the claim's Holm "fails")
    mde: float | None = None  # minimum detectable effect, 80% power, one-sided t at 0.05 (unit: ``unit``)
    margin: float | None = None  # equivalence margin (unit: ``unit``); None: no equivalence verdict
    p_tost: float | None = None  # TOST p of equivalence within ±margin
    levels: dict[str, float | None] = field(default_factory=dict)  # what was compared, mean over seeds
    extra: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)


def make_check(label: str, sign: int, per_seed: Mapping[str, float], *, unit: str = "",
               claimed: str | None = None, levels: Mapping[str, float | None] | None = None,
               extra: Mapping[str, Any] | None = None, runs: Sequence[str] = (),
               missing_reason: str = "no paired runs", test: str = "one-sided paired t-test",
               margin: float | None = None) -> Check:
    """A check over per-seed values with claimed sign ``sign``, tested by :func:`stats.paired_test`
    (``margin``: the equivalence margin of a TOST, in ``unit``)."""
    vals = {k: float(v) for k, v in per_seed.items() if v is not None and math.isfinite(v)}
    r = stats.paired_test(vals.values(), sign, margin=margin)
    reason = r.reason if r.n else missing_reason
    return Check(label=label, claimed=claimed or ("> 0" if sign > 0 else "< 0"), unit=unit, per_seed=vals,
                 n=r.n, mean=r.mean, std=r.sd, se=r.se, ci_low=r.ci_low, ci_high=r.ci_high, t=r.t, p=r.p,
                 p_signflip=r.p_signflip, verdict=r.verdict, reason=reason, test=test, p_opposite=r.p_opposite,
                 mde=r.mde, margin=r.margin, p_tost=r.p_tost,
                 levels=dict(levels or {}), extra=dict(extra or {}), runs=list(runs))


combine = stats.combine


@dataclass
class Claim:
    """One claim of the paper, with its checks; it computes its verdict from them
    (:meth:`decide`, called on construction: :func:`stats.claim_decision`). ``kind``
    "measurement": reported with no verdict ("measured", never fails)."""

    id: str
    title: str
    paper: str  # where the paper makes it
    statement: str  # what is measured, in words
    checks: list[Check]
    tables: list[dict[str, Any]] = field(default_factory=list)  # {"title", "columns", "rows"}
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # run ids to add
    command: str | None = None  # the `asym run-grid` that adds them
    kind: str = "claim"  # "claim" | "measurement"
    verdict: str = field(init=False, default="insufficient")
    verdict_reason: str = field(init=False, default="")
    p_fails_holm: float | None = field(init=False, default=None)  # smallest Holm-adjusted opposite-direction p

    def __post_init__(self) -> None:
        if self.kind not in ("claim", "measurement"):
            raise ValueError(f"Claim.kind must be 'claim' or 'measurement', got {self.kind!r}")
        self.decide()

    def decide(self) -> str:
        """Set (and return) the verdict from the checks (call again after changing them)."""
        if self.kind == "measurement":  # never fails: "measured" if anything was, else "insufficient"
            measured = any(c.verdict == "measured" for c in self.checks)
            self.verdict = "measured" if measured else "insufficient"
            self.verdict_reason = "a measurement, not tested" if measured else "nothing measured"
            self.p_fails_holm = None
        else:
            d = stats.claim_decision([c.verdict for c in self.checks], [c.p_opposite for c in self.checks])
            self.verdict, self.verdict_reason, self.p_fails_holm = d.verdict, d.reason, d.p_fails_holm
        return self.verdict


# ---------------------------------------------------------------------------
# Suggested runs
# ---------------------------------------------------------------------------


def run_grid_command(missing: Sequence[str], *, config_path: str | None = None,
                     cartesian: bool = False) -> str | None:
    """The ``asym run-grid`` that trains and evaluates the missing runs (None if none).

    run-grid skips runs that exist. With only baselines to add and a config whose
    ``grid.grid`` is non-empty, ``--target table2`` keeps it from training the whole grid.
    """
    if not missing:
        return None
    methods: list[str] = []
    pairs: list[tuple[float, float]] = []
    seeds: set[int] = set()
    for rid in missing:
        method, bp, bn, seed = parse_run_id(rid)
        seeds.add(seed)
        if method == "asym":
            if (bp, bn) not in pairs:
                pairs.append((bp, bn))  # type: ignore[arg-type]
        elif method not in methods:
            methods.append(method)
    parts = ["asym run-grid"]
    if methods:
        parts.append("--methods " + ",".join(methods))
    parts += [f"--betas {fmt_beta(bp)},{fmt_beta(bn)}" for bp, bn in pairs]
    parts.append("--seeds " + ",".join(str(s) for s in sorted(seeds)))
    if not pairs and cartesian:
        parts.append("--target table2")
    if config_path:
        parts.append(f"--config {config_path}")
    return " ".join(parts)


@dataclass
class Inputs:
    """Everything the claim functions read."""

    runs: dict[str, RunData]
    seeds: list[int]  # the seeds a complete set of runs has (suggestions use them)
    kappa_steps: int = 20
    config_path: str | None = None
    cartesian: bool = False
    equivalence_margin: float = 1.0  # accuracy points (report.equivalence_margin)

    @functools.cached_property
    def groups(self) -> dict[GroupKey, dict[int, RunData]]:
        return by_group(self.runs)

    def missing(self, needed: Iterable[GroupKey]) -> list[str]:
        have = set(self.runs)
        return [group_run_id(g, s) for g in needed for s in self.seeds if group_run_id(g, s) not in have]

    def finish(self, claim: Claim, needed: Iterable[GroupKey]) -> Claim:
        claim.missing = self.missing(needed)
        claim.command = run_grid_command(claim.missing, config_path=self.config_path, cartesian=self.cartesian)
        if claim.missing:
            claim.notes.append(f"runs to add: {', '.join(claim.missing)}")
        return claim


def fmt_value(x: Any, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:+.4g}" if signed else f"{x:.4g}"
    return str(x)


def seed_text(per: Mapping[str, Any], signed: bool = False) -> str:
    """"s0: 1.2, s1: 1.4": per-seed values, as the tables show them."""
    return ", ".join(f"{k}: {fmt_value(v, signed)}" for k, v in per.items())


def _seed_key(seed: int) -> str:
    return f"s{seed}"


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


# ---------------------------------------------------------------------------
# Claim 6: Proposition 2, peaks of the gradient pressure
# ---------------------------------------------------------------------------


Profile = tuple[int, list[int], list[float], list[float]]  # (G, groups[k], pos_mass[k], neg_mass[k])


def mass_profile(rows: Sequence[Mapping[str, Any]], pos_col: str = "w_pos_hist",
                 neg_col: str = "w_neg_hist") -> Profile | None:
    """(G, groups[k], pos_mass[k], neg_mass[k]) summed over steps, k = 0..G, from the logged
    p_hist and the mass columns (``w_*_hist``: advantage mass; ``w_*_tok_hist``: token-weighted
    mass); None if no step logged them."""
    G = None
    groups: list[int] = []
    pos: list[float] = []
    neg: list[float] = []
    for r in rows:
        h, wp, wn = r.get("p_hist"), r.get(pos_col), r.get(neg_col)
        if not (isinstance(h, list) and isinstance(wp, list) and isinstance(wn, list)) or not h or not wp:
            continue  # no rollouts at this step, or a file older than the column (read back as null)
        if G is None:
            G = len(h) - 1
            groups, pos, neg = [0] * (G + 1), [0.0] * (G + 1), [0.0] * (G + 1)
        if not (len(h) == len(wp) == len(wn) == G + 1):
            raise ArtifactError(f"step {r['step']}: p_hist/{pos_col}/{neg_col} have lengths "
                                f"{len(h)}/{len(wp)}/{len(wn)}, expected G + 1 = {G + 1}")
        for k in range(G + 1):
            groups[k] += int(h[k])
            pos[k] += float(wp[k])
            neg[k] += float(wn[k])
    return None if G is None else (G, groups, pos, neg)


def per_group_pressure(G: int, groups: Sequence[int], mass: Sequence[float]) -> list[float | None]:
    """Empirical W(k/G) = mass[k] / (G x groups[k]); None where no group had k correct."""
    return [mass[k] / (G * groups[k]) if groups[k] else None for k in range(G + 1)]


def pooled_pressure(G: int, profiles: Mapping[int, Profile], idx: int) -> list[float | None]:
    """Empirical W(k/G) of the seeds' profiles pooled (groups and mass summed over seeds);
    ``idx`` 2 = positive channel, 3 = negative."""
    groups = [sum(p[1][k] for p in profiles.values()) for k in range(G + 1)]
    return per_group_pressure(G, groups, [sum(p[idx][k] for p in profiles.values()) for k in range(G + 1)])


def _argmax(values: Sequence[float | None]) -> int | None:
    best = None
    for k, v in enumerate(values):
        if v is not None and math.isfinite(v) and v > 0 and (best is None or v > values[best]):  # type: ignore[operator]
            best = k  # first maximum wins ties
    return best


def theory_pressure(G: int, beta: float, channel: str) -> list[float]:
    """W_+(k/G; beta) or W_-(k/G; beta) of Eqs. (9)-(10), k = 0..G."""
    from ...algorithm import advantages as adv

    fn = adv.w_pos if channel == "pos" else adv.w_neg
    return [float(fn(k / G, beta)) for k in range(G + 1)]


def _in_unit(beta: float | None) -> bool:
    return beta is not None and 0.0 < beta < 1.0


def peak_margin(W: Sequence[float | None], k_star: int, theory: Sequence[float]) -> float | None:
    """log W(k*) − log max_{k ≠ k*} W(k) over the k that occurred and where the theory is > 0:
    > 0 iff the empirical peak is at k*. None if k* or every rival never occurred."""
    at = W[k_star]
    rivals = [w for k, w in enumerate(W) if k != k_star and w is not None and theory[k] > 0]
    if at is None or at <= 0 or not rivals or max(rivals) <= 0:
        return None
    return math.log(at) - math.log(max(rivals))


def peak_check(g: GroupKey, runs: Mapping[int, RunData], tok: Mapping[int, Profile],
               plain: Mapping[int, Profile], channel: str) -> tuple[Check, list[Any]]:
    """Proposition 2 for one channel of one AsymGRPO pair: (measurement, summary-table row).

    The measured pressure is token-weighted: under the token-mean loss a rollout's gradient
    weight is |A| x its response length / the batch's mean length, so the per-group pressure
    at k is the logged ``w_*_tok_hist`` mass / (G x groups at k). Proposition 2 omits these
    token factors; the measurement shows whether its peaks survive them on the runs. Per seed
    the value is the log-margin of W_tok(k*) over its strongest rival k (:func:`peak_margin`,
    > 0 iff the peak is at k*); its mean and 95% CI are computed as for every check, but the
    verdict is "measured" (no claim of the paper is decided by it). The
    untokenised W is Eqs. (9)-(10) by construction (the logged advantages are the formula's),
    so it is tabulated, not tested."""
    from ...algorithm.theory import peak_neg, peak_pos

    beta = g[1] if channel == "pos" else g[2]
    idx = 2 if channel == "pos" else 3
    G = next(iter(tok.values()))[0]
    th = theory_pressure(G, beta, channel)  # type: ignore[arg-type]
    k_star = _argmax(th)
    assert k_star is not None  # W > 0 on 0 < p < 1 for beta in (0, 1)
    per: dict[str, float] = {}
    peaks: dict[str, float | None] = {}
    untestable: list[str] = []
    for s, prof in tok.items():
        W = per_group_pressure(G, prof[1], prof[idx])
        m = peak_margin(W, k_star, th)
        k_emp = _argmax(W)
        peaks[f"s{s}"] = None if k_emp is None else k_emp / G
        if m is None:
            untestable.append(runs[s].run_id)
        else:
            per[f"s{s}"] = m
    emp_tok, emp_plain = pooled_pressure(G, tok, idx), pooled_pressure(G, plain, idx)
    dev = max((abs(e - t) for e, t in zip(emp_plain, th) if e is not None), default=None)
    k_tok, k_plain = _argmax(emp_tok), _argmax(emp_plain)
    cont = peak_pos(beta) if channel == "pos" else peak_neg(beta)  # type: ignore[arg-type]
    name = "positive" if channel == "pos" else "negative"
    theory_name = "1 − βpos" if channel == "pos" else "βneg"
    reason_missing = f"no seed logged groups at k* = {k_star} and at a rival k (token-weighted mass)"
    check = make_check(f"{group_label(g)}: {name}-channel peak at k*/G = {k_star / G:.4g} (token-weighted)", +1,
                       per, unit="log W(k*) − log max rival", missing_reason=reason_missing,
                       levels={"theory": cont, "theory on the grid": k_star / G,
                               "token-weighted peak, pooled": None if k_tok is None else k_tok / G},
                       extra={"G": G, "k_star": k_star, "peak_per_seed": peaks, "untestable": untestable,
                              "max_abs_w_deviation_untokenised": dev},
                       runs=[runs[s].run_id for s in tok])
    check.claimed = f"> 0 (peak at {theory_name} = {cont:g}, on the grid {k_star / G:.4g})"
    if check.n:  # else stays "insufficient", with the reason nothing was measured
        check.verdict, check.reason = "measured", f"a measurement, not a verdict ({check.n} seeds)"
    check.mde = None  # no test, so no detectable effect to state
    at_k = sum(1 for v in peaks.values() if v is not None and abs(v - k_star / G) < 1e-12)
    ci = (None if check.ci_low is None else
          f"[{fmt_value(check.ci_low, True)}, {fmt_value(check.ci_high, True)}]")
    row = [group_label(g), name, beta, cont, k_star / G, None if k_tok is None else k_tok / G,
           None if k_plain is None else k_plain / G, dev, f"{at_k}/{len(peaks)}", check.n, check.mean, ci]
    return check, row


def pressure_table(g: GroupKey, tok: Mapping[int, Profile], plain: Mapping[int, Profile]) -> dict[str, Any]:
    """Token-weighted and untokenised empirical W per k of one pair, and the theory, pooled over seeds."""
    G = next(iter(tok.values()))[0]
    groups = [sum(p[1][k] for p in tok.values()) for k in range(G + 1)]
    cols: list[list[Any]] = []
    for beta, idx, ch in ((g[1], 2, "pos"), (g[2], 3, "neg")):
        th = theory_pressure(G, beta, ch) if _in_unit(beta) else [None] * (G + 1)  # type: ignore[arg-type]
        cols += [pooled_pressure(G, tok, idx), pooled_pressure(G, plain, idx), th]
    return {"title": f"{group_label(g)}: W per group accuracy p = k/G (pooled over seeds "
                     f"{', '.join(str(s) for s in tok)})",
            "columns": ["k", "p", "groups", "W+ token-weighted", "W+ untokenised", "W+ theory",
                        "W− token-weighted", "W− untokenised", "W− theory"],
            "rows": [[k, k / G, groups[k], *(c[k] for c in cols)] for k in range(G + 1)]}


def claim_peaks(inp: Inputs) -> Claim:
    pairs = [g for g in inp.groups if g[0] == "asym" and (_in_unit(g[1]) or _in_unit(g[2]))]
    checks: list[Check] = []
    summary: list[list[Any]] = []
    tables: list[dict[str, Any]] = []
    notes = ["a measurement, not a verdict: Proposition 2 is a property of Eqs. (9)-(10), which the logged "
             "untokenised W equals by construction (shown beside), so there is nothing on the runs for it to "
             "fail on. What is measured is where the token-weighted pressure W_tok(k/G) peaks: Σ over "
             "rollouts in groups with k correct of |A| x response length / the step's mean length, summed over "
             "steps, / (G x groups at k), each rollout's weight in the token-mean loss. Value per seed: "
             "log W_tok(k*) − log of its largest rival (> 0 iff the peak is at k*), mean and 95% CI over seeds.",
             "where the token-weighted peak moves off k*, the cause is response length, not the advantage "
             "formula: failed rollouts are longer than correct ones, so the negative channel's token weight "
             "shifts toward groups with more failures. That is why the (0.7, 0.7) negative-channel peak read "
             "\"fails\" when this was a tested claim (docs/results/mechanism: token-weighted W− at 0.75 below "
             "Eq. (10)'s), while the untokenised mass sat on Eq. (10)."]
    for g in pairs:
        runs = inp.groups[g]
        tok = {s: p for s, r in sorted(runs.items())
               if (p := mass_profile(r.rows, "w_pos_tok_hist", "w_neg_tok_hist")) is not None}
        plain = {s: p for s, r in sorted(runs.items()) if (p := mass_profile(r.rows)) is not None}
        if not tok:
            notes.append(f"{group_label(g)}: no step logged w_pos_tok_hist / w_neg_tok_hist")
            continue
        G = next(iter(tok.values()))[0]
        other = [runs[s].run_id for s, p in tok.items() if p[0] != G]
        if other:
            notes.append(f"{group_label(g)}: group size differs from G={G}, left out: {', '.join(other)}")
        tok = {s: p for s, p in tok.items() if p[0] == G}
        plain = {s: p for s, p in plain.items() if p[0] == G}
        for channel, beta in (("pos", g[1]), ("neg", g[2])):
            if _in_unit(beta):
                check, row = peak_check(g, runs, tok, plain, channel)
                checks.append(check)
                summary.append(row)
        tables.append(pressure_table(g, tok, plain))
    if summary:
        tables.insert(0, {"title": "Peaks of the gradient pressure (pooled over seeds)",
                          "columns": ["Runs", "channel", "β", "theory peak", "theory on grid",
                                      "token-weighted peak", "untokenised peak", "max abs(W untok. − W theory)",
                                      "seeds peaking at k*", "n", "log-margin mean", "log-margin 95% CI"],
                          "rows": summary})
    if not pairs:
        notes.append("no AsymGRPO run with a beta in (0, 1)")
    claim = Claim("6", "measured: where the token-weighted gradient pressure peaks (Prop. 2: the positive at "
                  "p = 1 − βpos, the negative at p = βneg)", "Prop. 2, Eqs. (9)-(11)",
                  "the betas place each channel's gradient pressure along the group-accuracy axis; measured: "
                  "whether the peaks survive the token weights of the token-mean loss", checks,
                  tables, notes, kind="measurement")
    return inp.finish(claim, pairs or [ASYM])


# ---------------------------------------------------------------------------
# All claims
# ---------------------------------------------------------------------------

CLAIMS = (claim_kappa, claim_entropy, claim_channels, claim_channel_accuracy, claim_entropy_bonus,
          claim_flip_entropy, claim_flip, claim_table2, claim_symmetric, claim_asym_entropy, claim_peaks)


def seeds_for_claims(config_seeds: Iterable[int], found: Iterable[int]) -> list[int]:
    """The seeds a complete set of runs has: the config's and those found, topped up with the
    smallest unused seeds to ``stats.MIN_SEEDS`` (fewer cannot give a verdict)."""
    seeds = set(config_seeds) | set(found)
    s = 0
    while len(seeds) < stats.MIN_SEEDS:
        if s not in seeds:
            seeds.add(s)
        s += 1
    return sorted(seeds)


def evaluate(runs: Mapping[str, RunData], *, seeds: Sequence[int] = (), kappa_steps: int = 20,
             config_path: str | None = None, cartesian: bool = False,
             equivalence_margin: float = 1.0) -> list[Claim]:
    """Every claim checked on ``runs``. ``seeds``: the seeds a complete set has (missing-run
    suggestions use them, with the seeds found). ``equivalence_margin``: the TOST margin of
    the accuracy checks, in accuracy points (``report.equivalence_margin``)."""
    if kappa_steps < 1:
        raise ConfigError(f"report.kappa_steps must be >= 1, got {kappa_steps}")
    if not (isinstance(equivalence_margin, (int, float)) and math.isfinite(equivalence_margin)
            and equivalence_margin > 0):
        raise ConfigError(f"report.equivalence_margin must be a number > 0 (accuracy points), got {equivalence_margin!r}")
    all_seeds = seeds_for_claims(seeds, (r.seed for r in runs.values()))
    inp = Inputs(dict(runs), all_seeds, kappa_steps, config_path, cartesian, float(equivalence_margin))
    claims = [fn(inp) for fn in CLAIMS]
    checks = [c for claim in claims if claim.kind == "claim" for c in claim.checks]
    for c, ph in zip(checks, stats.holm([c.p for c in checks])):
        c.p_holm = ph
    return claims


def payload(claims: Sequence[Claim], runs: Mapping[str, RunData], *, results_dir: str = "",
            skipped: Sequence[str] = (), config_path: str | None = None, cartesian: bool = False) -> dict[str, Any]:
    """The JSON-able result (what claims.json holds and what the renderers read)."""
    margin = next((k.margin for c in claims for k in c.checks if k.margin is not None), None)
    missing = list(dict.fromkeys(m for c in claims for m in c.missing))  # claim order
    n_seeds = max((len(s) for s in by_group(runs).values()), default=0)
    notes = []
    if runs and n_seeds < stats.MIN_SEEDS:
        notes.append(f"no run group has {stats.MIN_SEEDS} seeds: one or two seeds show a direction, not a "
                     "result, so every check is insufficient. To add seeds: "
                     + (run_grid_command([group_run_id(g, s) for g in by_group(runs)
                                          for s in seeds_for_claims((), (r.seed for r in runs.values()))
                                          if group_run_id(g, s) not in runs],
                                         config_path=config_path, cartesian=cartesian) or ""))
    return _clean({
        "rule": RULE,
        "equivalence_margin": margin,
        "results_dir": results_dir,
        "runs": [{"run_id": r.run_id, "method": r.method, "beta_pos": r.beta_pos, "beta_neg": r.beta_neg,
                  "seed": r.seed, "steps": len(r.rows), "samples": bool(r.scores)}
                 for r in sorted(runs.values(), key=lambda r: (group_sort_key(r.group), r.seed))],
        "skipped": list(skipped),
        "claims": [asdict(c) for c in claims],
        "verdicts": {c.id: c.verdict for c in claims},
        "missing": missing,
        "command": run_grid_command(missing, config_path=config_path, cartesian=cartesian),
        "notes": notes,
    })


def _clean(x: Any) -> Any:
    """NaN/inf -> None, tuples -> lists (strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def check_results(cfg: Config, runs: Sequence[str] | None = None, *, config_path: str | None = None) -> dict[str, Any]:
    """Locate, load and check the runs of ``cfg.results_dir`` (or ``runs``; see :func:`locate`)."""
    src = locate(cfg.results_dir, runs)
    checkpoint = None if cfg.report.checkpoint == "final" else int(cfg.report.checkpoint)
    data = load_runs(src, checkpoint)
    cartesian = bool(cfg.grid.grid)
    claims = evaluate(data, seeds=cfg.grid.seeds, kappa_steps=cfg.report.kappa_steps,
                      config_path=config_path, cartesian=cartesian,
                      equivalence_margin=cfg.report.equivalence_margin)
    return payload(claims, data, results_dir=str(cfg.results_dir), skipped=src.skipped,
                   config_path=config_path, cartesian=cartesian)


