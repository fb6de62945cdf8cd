"""What a claim is: the verdict rule, a Check (one paired test), a Claim (its checks combined), the
Inputs a claim reads from the loaded runs, and how values and seeds are written."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...config import fmt_beta, parse_run_id
from . import stats
from .data import GroupKey, RunData, by_group, group_run_id


RULE = (
    "Checks are paired by seed: the value per seed is a difference A − B (κ̂: the value itself). "
    "Test: one-sided paired t-test (n − 1 df) in the claimed direction; 95% CI: two-sided t interval "
    "of the mean, with the 90% CI beside it (the interval a one-sided test at 0.05 matches: holds exactly when "
    "the 90% CI excludes 0 on the claimed side; its claimed-side end is the one-sided 95% bound); the exact sign-flip (permutation) p is shown beside it; MDE: the true difference that "
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
    "carry no verdict. With a primary endpoint declared (report.primary_endpoint), that one check is tested "
    "at 0.05 alone and every other check is secondary: labelled so, with p_holm Holm-adjusted over the "
    "secondary checks; without one, p_holm is Holm over all tested checks of the report."
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
    ci90_low: float | None = None  # 90% two-sided t interval: matches the one-sided test at 0.05
    ci90_high: float | None = None
    df: int | None = None  # degrees of freedom of the t statistic
    id: str = ""  # "{claim id}.{1-based position}", e.g. "5a.1" (set by evaluate; report.primary_endpoint)
    endpoint: str | None = None  # "primary" / "secondary" once a primary endpoint is declared, else None


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
                 levels=dict(levels or {}), extra=dict(extra or {}), runs=list(runs),
                 ci90_low=r.ci90_low, ci90_high=r.ci90_high, df=r.df)


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
