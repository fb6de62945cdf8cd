"""The paper's claims, checked on the user's own runs (`asym claims`).

Why it exists: a reader adopts AsymGRPO when the mechanism shows on their own model, not
because Table 2 says so. This module reads finished runs (``runs/{run_id}/metrics.parquet``,
``evals/{run_id}/samples.parquet``) and, for each claim of arXiv 2604.04894, reports the
measured evidence, its spread over seeds and a verdict:

1. Table 1: kappa-hat over the first T = ``report.kappa_steps`` training steps is positive
   (REINFORCE runs, where the paper estimates it; every run group and all runs pooled are
   shown too; without REINFORCE runs the verdict falls back to all runs pooled).
2. Proposition 1 / Figure 2: Pos-Only entropy stays above REINFORCE, Neg-Only below.
3. Section 3.1: Pos-Only lowers the none-solved fraction, Neg-Only raises the log-prob
   gain on correct rollouts (both against REINFORCE).
4. Figure 3: EntDecrease and EntIncrease end below GRPO in test accuracy.
5a. Table 2: AsymGRPO (0.9, 0.4) beats GRPO and REINFORCE on Avg.
5b. Table 2: the symmetric ablation (0.7, 0.7) falls between the baselines and AsymGRPO.
6. Proposition 2: per group, positive gradient mass peaks at p = 1 - beta_pos and negative
   mass at p = beta_neg, on the discrete grid p = k/G (AsymGRPO runs).

Conventions (also in every output, ``RULE``):

- Comparisons are paired by seed (same seed = same start and sampling seed); a check's
  value per seed is a difference A - B (or, for kappa, the value itself).
- Significance: with n >= 2 seeds, a check *holds* if the mean has the claimed sign and is
  more than one standard error (sample std / sqrt(n)) from zero, *fails* if it is more
  than one SE from zero with the other sign, and is *mixed* otherwise (not significant:
  seeds disagree). One seed: the sign alone, flagged. *insufficient*: a run it needs is
  missing. A claim holds if all its checks hold; fails if every evaluated check fails; is
  insufficient if a check lacks runs and the others hold; mixed otherwise.
- Steps: training rows are step >= 1 (step 0 is the trainer's evaluation-only row).
  Entropy and none-solved fraction are measured on the step's rollouts, before its update,
  so the first training step (the shared starting policy) is left out of curve
  comparisons; the log-prob gain is measured after the update and uses every step.
  "Area between curves" = mean over common steps of A - B.
- Test accuracy: Avg@k from samples.parquet at the reported checkpoint (``report.checkpoint``,
  "final" = each run's last evaluated step), averaged over the benchmarks every compared
  run has, x 100. Without samples for a comparison, the last greedy held-out accuracy of
  metrics.parquet (``eval_greedy_acc``) is used instead, and the output says so.
- Proposition 2: per k, the logged mass (w_pos_hist / w_neg_hist) summed over steps,
  divided by G x the groups at that k (p_hist), is the empirical W(k/G) of Eqs. (9)-(10);
  its argmax must be the theoretical curve's argmax on the grid {k/G}. The realised mass
  (not per group: where the gradient actually went) and its mass-weighted mean p are shown
  beside it.

The computation is pure (lists and dicts in, dataclasses out); :func:`load_runs` reads the
artifacts (DuckDB for the samples, SQL in ``sql/claims_*.sql``); :func:`check_results`
does both for a config; :func:`to_markdown`, :func:`to_json` and :func:`print_rich` render.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from . import artifacts
from .config import METHOD_LABELS, Config, fmt_beta, parse_run_id, run_id
from .errors import ArtifactError, ConfigError

__all__ = [
    "ASYM_PAIR",
    "FORMATS",
    "RULE",
    "SYM_PAIR",
    "Check",
    "Claim",
    "RunData",
    "Sources",
    "check_results",
    "combine",
    "evaluate",
    "judge",
    "load_runs",
    "locate",
    "print_rich",
    "report_section",
    "run_grid_command",
    "to_json",
    "to_markdown",
    "write_files",
]

FORMATS = ("table", "json", "md")
VERDICTS = ("holds", "fails", "mixed", "insufficient")

#: The paper's AsymGRPO setting (Table 2) and its symmetric ablation (Appendix H).
ASYM_PAIR = (0.9, 0.4)
SYM_PAIR = (0.7, 0.7)

GroupKey = tuple[str, "float | None", "float | None"]
REINFORCE: GroupKey = ("reinforce", None, None)
GRPO: GroupKey = ("grpo", None, None)
POS_ONLY: GroupKey = ("pos_only", None, None)
NEG_ONLY: GroupKey = ("neg_only", None, None)
ENT_DECREASE: GroupKey = ("ent_decrease", None, None)
ENT_INCREASE: GroupKey = ("ent_increase", None, None)
ASYM: GroupKey = ("asym", *ASYM_PAIR)
SYM: GroupKey = ("asym", *SYM_PAIR)

RULE = (
    "Checks are paired by seed; the value per seed is a difference A − B (κ̂: the value). "
    "With n ≥ 2 seeds a check holds if the mean has the claimed sign and is more than one "
    "standard error (sample std/√n) from zero, fails if more than one SE the other way, and is "
    "mixed otherwise (not significant); with one seed the sign alone decides (no spread). "
    "insufficient: a run it needs is missing. A claim holds if all its checks hold, fails if "
    "every evaluated check fails, is insufficient if a check lacks runs and the others hold, "
    "else mixed."
)

#: Columns measured on a step's rollouts before its update: the first training step is the
#: shared starting policy, so curve comparisons leave it out.
BEFORE_UPDATE = frozenset({"entropy", "none_solved_frac", "all_solved_frac", "mixed_frac", "kappa",
                           "reward_mean"})

SQL_DIR = Path(__file__).resolve().parent / "sql"


@functools.cache
def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------


@dataclass
class RunData:
    """What the checks need from one finished run."""

    run_id: str
    method: str
    beta_pos: float | None
    beta_neg: float | None
    seed: int
    rows: list[dict[str, Any]] = field(default_factory=list)  # METRICS rows with step >= 1, by step
    greedy: tuple[int, float] | None = None  # (step, eval_greedy_acc) at the reported checkpoint
    scores: dict[str, float] = field(default_factory=dict)  # benchmark -> Avg@k in [0, 1]
    score_step: int | None = None  # the checkpoint step of ``scores``

    @property
    def group(self) -> GroupKey:
        return group_of(self.method, self.beta_pos, self.beta_neg)


def group_of(method: str, beta_pos: float | None = None, beta_neg: float | None = None) -> GroupKey:
    """Run group = method; AsymGRPO runs are told apart by their betas."""
    if method == "asym":
        return ("asym", float(beta_pos), float(beta_neg))  # type: ignore[arg-type]
    return (method, None, None)


def group_label(g: GroupKey) -> str:
    method, bp, bn = g
    if method == "asym":
        return f"AsymGRPO ({fmt_beta(bp)}, {fmt_beta(bn)})"  # type: ignore[arg-type]
    return METHOD_LABELS.get(method, method)


def group_sort_key(g: GroupKey) -> tuple[Any, ...]:
    order = list(METHOD_LABELS)
    method, bp, bn = g
    if method == "asym":
        return (len(order) + 1, bp, bn, "")
    return (order.index(method) if method in order else len(order), 0.0, 0.0, method)


def group_run_id(g: GroupKey, seed: int) -> str:
    return run_id(g[0], g[1], g[2], seed)


def by_group(runs: Mapping[str, RunData]) -> dict[GroupKey, dict[int, RunData]]:
    out: dict[GroupKey, dict[int, RunData]] = {}
    for r in runs.values():
        out.setdefault(r.group, {})[r.seed] = r
    return dict(sorted(out.items(), key=lambda kv: group_sort_key(kv[0])))


@dataclass
class Sources:
    """The artifacts of the runs to check: {run_id: path}, and what was passed over."""

    metrics: dict[str, Path] = field(default_factory=dict)
    samples: dict[str, Path] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _scan(results_dir: Path, src: Sources) -> None:
    runs_dir = results_dir / "runs"
    if not runs_dir.is_dir():
        return
    for d in sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            parse_run_id(d.name)
        except ConfigError:
            src.skipped.append(f"{d}: not a run id")
            continue
        if not (d / "metrics.parquet").exists():
            src.skipped.append(f"{d.name}: unfinished (no metrics.parquet)")
            continue
        _add(src, d.name, d / "metrics.parquet", results_dir / "evals" / d.name / "samples.parquet")


def _add(src: Sources, rid: str, metrics: Path, samples: Path) -> None:
    if rid in src.metrics and src.metrics[rid] != metrics:
        raise ConfigError(f"--runs: run {rid} given twice ({src.metrics[rid]} and {metrics})")
    src.metrics[rid] = metrics
    if samples.exists():
        src.samples[rid] = samples


def locate(results_dir: str | os.PathLike[str], runs: Sequence[str] | None = None) -> Sources:
    """Find the finished runs to check.

    ``runs`` empty: every run folder under ``{results_dir}/runs/`` with a metrics.parquet.
    Otherwise each entry is a run folder (``.../runs/{run_id}``, its samples at
    ``.../evals/{run_id}/samples.parquet``), a results folder (all its runs), or
    comma-separated run ids under ``results_dir``. Raises ConfigError / ArtifactError
    naming the entry that is none of these.
    """
    root = Path(results_dir)
    src = Sources()
    if not runs:
        _scan(root, src)
        return src
    for entry in runs:
        p = Path(entry)
        if p.is_dir():
            if (p / "metrics.parquet").exists():
                parse_run_id(p.name)
                _add(src, p.name, p / "metrics.parquet", p.parent.parent / "evals" / p.name / "samples.parquet")
            elif (p / "runs").is_dir():
                _scan(p, src)
            else:
                try:
                    parse_run_id(p.name)
                except ConfigError:
                    raise ConfigError(f"--runs {entry}: neither a run folder (with metrics.parquet) "
                                      "nor a results folder (with runs/)") from None
                raise ArtifactError(f"--runs {entry}: run folder has no metrics.parquet (not finished)")
            continue
        for rid in (x.strip() for x in entry.split(",")):
            if not rid:
                continue
            try:
                parse_run_id(rid)
            except ConfigError as exc:
                raise ConfigError(f"--runs: {exc}") from None
            m = root / "runs" / rid / "metrics.parquet"
            if not m.exists():
                raise ArtifactError(f"{m}: artifact does not exist (run {rid} not finished?)")
            _add(src, rid, m, root / "evals" / rid / "samples.parquet")
    return src


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def _check_footer(path: Path, schema: pa.Schema) -> str:
    try:
        found = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ArtifactError(f"{path}: truncated or corrupted Parquet file ({str(exc).splitlines()[0][:200]})") from None
    artifacts.check_schema(found.empty_table(), schema, str(path))
    return str(path)


def final_scores(samples: Mapping[str, str | os.PathLike[str]],
                 checkpoint: int | None = None) -> dict[str, tuple[int, dict[str, float]]]:
    """{run_id: (step, {benchmark: Avg@k})} at each run's reported checkpoint (None = its
    last evaluated step), from SAMPLES files (``sql/claims_avg_at_k.sql``)."""
    if not samples:
        return {}
    files = [_check_footer(Path(p), artifacts.SAMPLES) for p in samples.values()]
    rel = pa.table({"path": files, "run_id": list(samples)})
    con = duckdb.connect(":memory:")
    try:
        con.register("runs", rel)
        rows = con.sql(_sql("claims_avg_at_k"), params={"files": files, "checkpoint": checkpoint}).fetchall()
    finally:
        con.close()
    out: dict[str, tuple[int, dict[str, float]]] = {}
    for rid, step, bench, avg, *_ in rows:
        out.setdefault(rid, (int(step), {}))[1][bench] = float(avg)
    return out


def load_runs(sources: Sources, checkpoint: int | None = None) -> dict[str, RunData]:
    """Read every run's metrics (checked against METRICS) and final Avg@k per benchmark."""
    scores = final_scores(sources.samples, checkpoint)
    runs: dict[str, RunData] = {}
    for rid, path in sorted(sources.metrics.items()):
        method, bp, bn, seed = parse_run_id(rid)
        table = artifacts.read_parquet(path, artifacts.METRICS)
        rows = []
        for r in table.to_pylist():
            for k, v in r.items():
                if k not in ("step", "p_hist", "w_pos_hist", "w_neg_hist"):
                    r[k] = _float(v)
            rows.append(r)
        rows.sort(key=lambda r: r["step"])
        greedy = None
        for r in rows:
            at = r["step"] >= 1 if checkpoint is None else r["step"] == checkpoint
            if at and math.isfinite(r["eval_greedy_acc"]):
                greedy = (int(r["step"]), r["eval_greedy_acc"])
        step, sc = scores.get(rid, (None, {}))
        runs[rid] = RunData(rid, method, bp, bn, seed, [r for r in rows if r["step"] >= 1], greedy, sc, step)
    return runs


# ---------------------------------------------------------------------------
# Statistics and verdicts
# ---------------------------------------------------------------------------


def _finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _mean(values: Iterable[float | None]) -> float | None:
    xs = _finite(values)
    return sum(xs) / len(xs) if xs else None


def _stdev(xs: Sequence[float]) -> float:
    """Sample std (n - 1); rounding noise of equal values (1e-15 relative) reads as 0."""
    sd = statistics.stdev(xs)
    return 0.0 if sd <= 1e-12 * max(1.0, max(abs(x) for x in xs)) else sd


def judge(values: Sequence[float], sign: int) -> tuple[str, str]:
    """(verdict, reason) for per-seed values whose claimed sign is ``sign`` (+1 / -1); the
    rule of ``RULE``. NaN values are dropped."""
    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return "insufficient", "no value"
    agree = sum(1 for x in xs if sign * x > 0)
    m = sum(xs) / n
    d = sign * m
    if n == 1:
        if d > 0:
            return "holds", "one seed: sign only, no spread"
        if d < 0:
            return "fails", "one seed: sign only, no spread"
        return "mixed", "one seed, difference exactly 0"
    se = _stdev(xs) / math.sqrt(n)
    seeds = f"{agree}/{n} seeds of the claimed sign"
    if se == 0:
        if d == 0:
            return "mixed", f"every seed exactly 0; {seeds}"
        return ("holds" if d > 0 else "fails"), f"every seed equal; {seeds}"
    z = d / se
    if z > 1:
        return "holds", f"mean {z:.1f} SE from 0; {seeds}"
    if z < -1:
        return "fails", f"mean {-z:.1f} SE from 0 the other way; {seeds}"
    return "mixed", f"not significant (mean within 1 SE of 0); {seeds}"


def combine(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its checks' (see ``RULE``)."""
    evaluated = [v for v in verdicts if v != "insufficient"]
    if not evaluated:
        return "insufficient"
    if all(v == "fails" for v in evaluated):
        return "fails"
    if any(v != "holds" for v in evaluated):
        return "mixed"
    return "holds" if len(evaluated) == len(verdicts) else "insufficient"


@dataclass
class Check:
    """One measured comparison of a claim, over seeds."""

    label: str
    claimed: str  # "> 0", "< 0", or the claimed value
    unit: str
    per_seed: dict[str, float]  # "s0" (or a run id) -> value
    mean: float | None
    std: float | None
    se: float | None
    n: int
    verdict: str
    reason: str
    levels: dict[str, float | None] = field(default_factory=dict)  # what was compared, mean over seeds
    extra: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)


def make_check(label: str, sign: int, per_seed: Mapping[str, float], *, unit: str = "",
               claimed: str | None = None, levels: Mapping[str, float | None] | None = None,
               extra: Mapping[str, Any] | None = None, runs: Sequence[str] = (),
               missing_reason: str = "no paired runs") -> Check:
    """A check over per-seed values with claimed sign ``sign``, judged by :func:`judge`."""
    vals = {k: float(v) for k, v in per_seed.items() if v is not None and math.isfinite(v)}
    xs = list(vals.values())
    n = len(xs)
    verdict, reason = judge(xs, sign) if n else ("insufficient", missing_reason)
    std = _stdev(xs) if n > 1 else None
    return Check(label=label, claimed=claimed or ("> 0" if sign > 0 else "< 0"), unit=unit, per_seed=vals,
                 mean=sum(xs) / n if n else None, std=std, se=std / math.sqrt(n) if std is not None else None,
                 n=n, verdict=verdict, reason=reason, levels=dict(levels or {}), extra=dict(extra or {}),
                 runs=list(runs))


@dataclass
class Claim:
    """One claim of the paper, with its checks and verdict."""

    id: str
    title: str
    paper: str  # where the paper makes it
    statement: str  # what is measured, in words
    checks: list[Check]
    verdict: str
    tables: list[dict[str, Any]] = field(default_factory=list)  # {"title", "columns", "rows"}
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # run ids to add
    command: str | None = None  # the `asym run-grid` that adds them


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


def _seed_key(seed: int) -> str:
    return f"s{seed}"


# ---------------------------------------------------------------------------
# Claim 1: Table 1, kappa-hat > 0
# ---------------------------------------------------------------------------


def run_kappa_hat(run: RunData, steps: int) -> float:
    """kappa-hat x 1e3 of one run: the mean kappa_B over its first ``steps`` training steps
    (``asymcli.algorithm.metrics.kappa_hat``; steps without a mixed group skipped)."""
    from .algorithm.metrics import kappa_hat

    return kappa_hat([r["kappa"] for r in run.rows], steps) * 1e3


def claim_kappa(inp: Inputs) -> Claim:
    T = inp.kappa_steps
    values = {rid: run_kappa_hat(r, T) for rid, r in inp.runs.items() if r.rows}
    used = {rid: len(_finite(row["kappa"] for row in r.rows[:T])) for rid, r in inp.runs.items()}
    rows = []
    for g, seeds in inp.groups.items():
        per = {_seed_key(s): values.get(r.run_id, math.nan) for s, r in sorted(seeds.items())}
        xs = _finite(per.values())
        rows.append([group_label(g), len(xs), _mean(xs), _stdev(xs) if len(xs) > 1 else None,
                     min(used[r.run_id] for r in seeds.values()), _seed_text(per)])
    pooled = _finite(values.values())
    if pooled:
        rows.append(["all runs pooled", len(pooled), _mean(pooled), _stdev(pooled) if len(pooled) > 1 else None,
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
                  "channel lowers it", [check], check.verdict, [table], notes)
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
             "(the area between the curves per step); frac_steps: the fraction of those steps on the "
             "claimed side (the paper: every step)."]
    claim = Claim("2", "Pos-Only entropy stays above REINFORCE, Neg-Only below", "Prop. 1, Fig. 2 (a, e)",
                  "positive-channel modulation sustains entropy, negative-channel modulation prunes it",
                  checks, combine([c.verdict for c in checks]), [], notes)
    return inp.finish(claim, [REINFORCE, POS_ONLY, NEG_ONLY])


def claim_channels(inp: Inputs) -> Claim:
    checks = [curve_check(inp, POS_ONLY, REINFORCE, "none_solved_frac", -1, "none-solved fraction"),
              curve_check(inp, NEG_ONLY, REINFORCE, "logprob_gain_correct", +1,
                          "log-prob gain on correct rollouts", "nats/sequence")]
    notes = ["none-solved: fraction of prompt groups with no correct rollout, mean over training steps "
             "after the first; log-prob gain: E[log π_new(y) − log π_old(y)] over correct rollouts "
             "(sequence sum), mean over every training step."]
    claim = Claim("3", "Pos-Only lowers the none-solved fraction; Neg-Only raises the log-prob gain on "
                  "correct rollouts", "Sec. 3.1, Fig. 2 (c, d)",
                  "the positive channel expands the solvable set; the negative channel reduces "
                  "interference with correct paths", checks, combine([c.verdict for c in checks]), [], notes)
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
    return make_check(f"{group_label(a)} − {group_label(b)}: test accuracy", sign, per, unit="points",
                      levels={group_label(a): _mean(va[s] for s in seeds), group_label(b): _mean(vb[s] for s in seeds)},
                      extra={"source": acc.source}, runs=[x for s in seeds for x in (ga[s].run_id, gb[s].run_id)],
                      missing_reason=reason)


def ordering(acc: Accuracy, groups: Sequence[GroupKey]) -> str:
    """"A 61.2 > B 58.0 > ..." by mean accuracy over seeds (groups with a value)."""
    means = [(group_label(g), _mean(acc.values.get(g, {}).values())) for g in groups]
    means = sorted([(lab, m) for lab, m in means if m is not None], key=lambda t: -t[1])
    return " > ".join(f"{lab} {m:.2f}" for lab, m in means)


def claim_flip(inp: Inputs) -> Claim:
    groups = [GRPO, ENT_DECREASE, ENT_INCREASE]
    acc = accuracy(inp, groups)
    checks = [accuracy_check(inp, acc, ENT_DECREASE, GRPO, -1), accuracy_check(inp, acc, ENT_INCREASE, GRPO, -1)]
    notes = [f"accuracy: {acc.described}"] + acc.notes
    order = ordering(acc, groups)
    if order:
        notes.append(f"measured order (mean over seeds): {order}")
    claim = Claim("4", "EntDecrease and EntIncrease end below GRPO in test accuracy", "Sec. 3.2, Fig. 3 (b, d)",
                  "reversing either channel's dependence on group accuracy hurts accuracy", checks,
                  combine([c.verdict for c in checks]), [], notes)
    return inp.finish(claim, groups)


def claim_table2(inp: Inputs) -> Claim:
    groups = [ASYM, GRPO, REINFORCE]
    acc = accuracy(inp, groups)
    checks = [accuracy_check(inp, acc, ASYM, GRPO, +1), accuracy_check(inp, acc, ASYM, REINFORCE, +1)]
    notes = [f"Avg.: {acc.described}"] + acc.notes
    order = ordering(acc, groups)
    if order:
        notes.append(f"measured order (mean over seeds): {order}")
    claim = Claim("5a", f"{group_label(ASYM)} beats GRPO and REINFORCE on Avg.", "Table 2, Obs. 1",
                  "decoupled channel strengths improve test accuracy over the baselines", checks,
                  combine([c.verdict for c in checks]), [], notes)
    return inp.finish(claim, groups)


def claim_symmetric(inp: Inputs) -> Claim:
    groups = [ASYM, SYM, GRPO, REINFORCE]
    acc = accuracy(inp, groups)
    checks = [accuracy_check(inp, acc, SYM, GRPO, +1), accuracy_check(inp, acc, SYM, REINFORCE, +1),
              accuracy_check(inp, acc, ASYM, SYM, +1)]
    notes = [f"Avg.: {acc.described}"] + acc.notes
    order = ordering(acc, groups)
    if order:
        notes.append(f"measured order (mean over seeds): {order}; claimed: {group_label(ASYM)} > "
                     f"{group_label(SYM)} > best of GRPO, REINFORCE")
    claim = Claim("5b", f"the symmetric ablation {group_label(SYM)} falls between the baselines and "
                  f"{group_label(ASYM)}", "Table 2, Obs. 2",
                  "the gain comes from decoupling the channels, not from stronger modulation alone", checks,
                  combine([c.verdict for c in checks]), [], notes)
    return inp.finish(claim, groups)


# ---------------------------------------------------------------------------
# Claim 6: Proposition 2, peaks of the gradient mass
# ---------------------------------------------------------------------------


Profile = tuple[int, list[int], list[float], list[float]]  # (G, groups[k], pos_mass[k], neg_mass[k])


def mass_profile(rows: Sequence[Mapping[str, Any]]) -> Profile | None:
    """(G, groups[k], pos_mass[k], neg_mass[k]) summed over steps, k = 0..G, from the logged
    p_hist / w_pos_hist / w_neg_hist; None if no step logged them."""
    G = None
    groups: list[int] = []
    pos: list[float] = []
    neg: list[float] = []
    for r in rows:
        h = r.get("p_hist") or []
        if not h:
            continue
        wp, wn = r.get("w_pos_hist") or [], r.get("w_neg_hist") or []
        if G is None:
            G = len(h) - 1
            groups, pos, neg = [0] * (G + 1), [0.0] * (G + 1), [0.0] * (G + 1)
        if not (len(h) == len(wp) == len(wn) == G + 1):
            raise ArtifactError(f"step {r['step']}: p_hist/w_pos_hist/w_neg_hist have lengths "
                                f"{len(h)}/{len(wp)}/{len(wn)}, expected G + 1 = {G + 1}")
        for k in range(G + 1):
            groups[k] += int(h[k])
            pos[k] += float(wp[k])
            neg[k] += float(wn[k])
    return None if G is None else (G, groups, pos, neg)


def per_group_pressure(G: int, groups: Sequence[int], mass: Sequence[float]) -> list[float | None]:
    """Empirical W(k/G) = mass[k] / (G x groups[k]); None where no group had k correct."""
    return [mass[k] / (G * groups[k]) if groups[k] else None for k in range(G + 1)]


def _argmax(values: Sequence[float | None]) -> int | None:
    best = None
    for k, v in enumerate(values):
        if v is not None and math.isfinite(v) and v > 0 and (best is None or v > values[best]):  # type: ignore[operator]
            best = k  # first maximum wins ties
    return best


def theory_pressure(G: int, beta: float, channel: str) -> list[float]:
    """W_+(k/G; beta) or W_-(k/G; beta) of Eqs. (9)-(10), k = 0..G."""
    from .algorithm import advantages as adv

    fn = adv.w_pos if channel == "pos" else adv.w_neg
    return [float(fn(k / G, beta)) for k in range(G + 1)]


def _in_unit(beta: float | None) -> bool:
    return beta is not None and 0.0 < beta < 1.0


def peak_check(g: GroupKey, runs: Mapping[int, RunData], profiles: Mapping[int, Profile],
               channel: str) -> tuple[Check, list[Any]]:
    """Proposition 2 for one channel of one AsymGRPO pair: (check, summary-table row).

    Per seed, the argmax over k of the empirical W(k/G) must be the theoretical argmax k*
    on the grid; a seed that never logged a group with k* correct cannot show it."""
    from .algorithm.theory import peak_neg, peak_pos

    beta = g[1] if channel == "pos" else g[2]
    idx = 2 if channel == "pos" else 3
    G = next(iter(profiles.values()))[0]
    k_star = _argmax(theory_pressure(G, beta, channel))  # type: ignore[arg-type]
    assert k_star is not None  # W > 0 on 0 < p < 1 for beta in (0, 1)
    per: dict[str, float] = {}
    match: dict[str, bool] = {}
    untestable: list[str] = []
    for s, prof in profiles.items():
        k_emp = _argmax(per_group_pressure(G, prof[1], prof[idx]))
        if not prof[1][k_star] or k_emp is None:
            untestable.append(runs[s].run_id)
            continue
        per[_seed_key(s)] = k_emp / G
        match[_seed_key(s)] = k_emp == k_star
    groups = [sum(p[1][k] for p in profiles.values()) for k in range(G + 1)]
    mass = [sum(p[idx][k] for p in profiles.values()) for k in range(G + 1)]
    emp = per_group_pressure(G, groups, mass)
    th = theory_pressure(G, beta, channel)  # type: ignore[arg-type]
    k_pool, k_mass = _argmax(emp), _argmax(mass)
    mean_p = sum(k / G * mass[k] for k in range(G + 1)) / sum(mass) if sum(mass) > 0 else None
    dev = max((abs(e - t) for e, t in zip(emp, th) if e is not None), default=None)
    cont = peak_pos(beta) if channel == "pos" else peak_neg(beta)
    n_match = sum(match.values())
    if not per:
        verdict, reason = "insufficient", f"no group with k* = {k_star} correct was logged"
    else:
        verdict = "holds" if n_match == len(per) else ("fails" if n_match == 0 else "mixed")
        reason = f"peak at k*/G on {n_match}/{len(per)} seeds"
    if untestable and per:
        reason += f"; no group at k* in {', '.join(untestable)}"
    xs = list(per.values())
    std = _stdev(xs) if len(xs) > 1 else None
    name = "positive" if channel == "pos" else "negative"
    theory_name = "1 − βpos" if channel == "pos" else "βneg"
    check = Check(
        label=f"{group_label(g)}: {name}-channel peak p",
        claimed=f"= {k_star / G:.4g} (k*/G; {theory_name} = {cont:g})",
        unit="p", per_seed=per, mean=_mean(xs), std=std, se=None if std is None else std / math.sqrt(len(xs)),
        n=len(xs), verdict=verdict, reason=reason,
        levels={"theory": cont, "theory on the grid": k_star / G,
                "empirical, pooled": None if k_pool is None else k_pool / G},
        extra={"G": G, "match": match, "untestable": untestable, "mass_peak_p": None if k_mass is None else k_mass / G,
               "mass_weighted_p": mean_p, "max_abs_w_deviation": dev},
        runs=[runs[s].run_id for s in profiles])
    row = [group_label(g), name, beta, cont, k_star / G, None if k_pool is None else k_pool / G,
           None if k_mass is None else k_mass / G, mean_p, dev]
    return check, row


def pressure_table(g: GroupKey, profiles: Mapping[int, Profile]) -> dict[str, Any]:
    """Empirical and theoretical W per k of one pair, pooled over seeds."""
    G = next(iter(profiles.values()))[0]
    groups = [sum(p[1][k] for p in profiles.values()) for k in range(G + 1)]
    cols: list[list[Any]] = []
    for beta, idx, ch in ((g[1], 2, "pos"), (g[2], 3, "neg")):
        mass = [sum(p[idx][k] for p in profiles.values()) for k in range(G + 1)]
        th = theory_pressure(G, beta, ch) if _in_unit(beta) else [None] * (G + 1)  # type: ignore[arg-type]
        cols += [per_group_pressure(G, groups, mass), th]
    return {"title": f"{group_label(g)}: W per group accuracy p = k/G (pooled over seeds "
                     f"{', '.join(str(s) for s in profiles)})",
            "columns": ["k", "p", "groups", "W+ empirical", "W+ theory", "W− empirical", "W− theory"],
            "rows": [[k, k / G, groups[k], *(c[k] for c in cols)] for k in range(G + 1)]}


def claim_peaks(inp: Inputs) -> Claim:
    pairs = [g for g in inp.groups if g[0] == "asym" and (_in_unit(g[1]) or _in_unit(g[2]))]
    checks: list[Check] = []
    summary: list[list[Any]] = []
    tables: list[dict[str, Any]] = []
    notes = ["empirical W(k/G) = logged advantage mass at k, summed over steps, / (G x groups with k correct); "
             "its argmax should be the theoretical W's argmax on {k/G}. mass peak / mass-weighted p: where "
             "the realised gradient mass went (depends on how often each k occurred)."]
    for g in pairs:
        runs = inp.groups[g]
        profiles = {s: mass_profile(r.rows) for s, r in sorted(runs.items())}
        found = {s: p for s, p in profiles.items() if p is not None}
        if not found:
            notes.append(f"{group_label(g)}: no step logged p_hist / w_*_hist")
            continue
        G = next(iter(found.values()))[0]
        other = [runs[s].run_id for s, p in found.items() if p[0] != G]
        if other:
            notes.append(f"{group_label(g)}: group size differs from G={G}, left out: {', '.join(other)}")
        found = {s: p for s, p in found.items() if p[0] == G}
        for channel, beta in (("pos", g[1]), ("neg", g[2])):
            if _in_unit(beta):
                check, row = peak_check(g, runs, found, channel)
                checks.append(check)
                summary.append(row)
        tables.append(pressure_table(g, found))
    if summary:
        tables.insert(0, {"title": "Peaks of the gradient mass (pooled over seeds)",
                          "columns": ["Runs", "channel", "β", "theory peak", "theory on grid", "empirical peak",
                                      "mass peak", "mass-weighted p", "max abs(W emp − W theory)"],
                          "rows": summary})
    if not pairs:
        notes.append("no AsymGRPO run with a beta in (0, 1)")
    claim = Claim("6", "the positive mass peaks at p = 1 − βpos, the negative at p = βneg",
                  "Prop. 2, Eqs. (9)-(11)", "the betas place each channel's gradient pressure along the group-accuracy axis", checks,
                  combine([c.verdict for c in checks]), tables, notes)
    return inp.finish(claim, pairs or [ASYM])


# ---------------------------------------------------------------------------
# All claims
# ---------------------------------------------------------------------------

CLAIMS = (claim_kappa, claim_entropy, claim_channels, claim_flip, claim_table2, claim_symmetric, claim_peaks)


def evaluate(runs: Mapping[str, RunData], *, seeds: Sequence[int] = (), kappa_steps: int = 20,
             config_path: str | None = None, cartesian: bool = False) -> list[Claim]:
    """Every claim checked on ``runs``. ``seeds``: the seeds a complete set has (missing-run
    suggestions use them, with the seeds found)."""
    if kappa_steps < 1:
        raise ConfigError(f"report.kappa_steps must be >= 1, got {kappa_steps}")
    all_seeds = sorted(set(seeds) | {r.seed for r in runs.values()})
    inp = Inputs(dict(runs), all_seeds, kappa_steps, config_path, cartesian)
    return [fn(inp) for fn in CLAIMS]


def payload(claims: Sequence[Claim], runs: Mapping[str, RunData], *, results_dir: str = "",
            skipped: Sequence[str] = (), config_path: str | None = None, cartesian: bool = False) -> dict[str, Any]:
    """The JSON-able result (what claims.json holds and what the renderers read)."""
    missing = list(dict.fromkeys(m for c in claims for m in c.missing))  # claim order
    n_seeds = max((len(s) for s in by_group(runs).values()), default=0)
    notes = []
    if runs and n_seeds < 2:
        notes.append("every run group has one seed: verdicts rest on the sign alone. For a spread: "
                     + (run_grid_command([group_run_id(g, s) for g in by_group(runs) for s in (0, 1, 2)],
                                         config_path=config_path, cartesian=cartesian) or ""))
    return _clean({
        "rule": RULE,
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
                      config_path=config_path, cartesian=cartesian)
    return payload(claims, data, results_dir=str(cfg.results_dir), skipped=src.skipped,
                   config_path=config_path, cartesian=cartesian)


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def _fmt(x: Any, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:+.4g}" if signed else f"{x:.4g}"
    return str(x)


def _seed_text(per: Mapping[str, Any], signed: bool = False) -> str:
    return ", ".join(f"{k}: {_fmt(v, signed)}" for k, v in per.items())


def _runs_text(p: Mapping[str, Any]) -> str:
    groups: dict[str, list[int]] = {}
    for r in p["runs"]:
        g = group_of(r["method"], r["beta_pos"], r["beta_neg"])
        groups.setdefault(group_label(g), []).append(r["seed"])
    return "; ".join(f"{lab} (seeds {', '.join(str(s) for s in seeds)})" for lab, seeds in groups.items())


def _check_line(c: Mapping[str, Any]) -> str:
    if c["mean"] is None:
        return f"{c['label']}: – ({c['reason']})"
    signed = c["claimed"] in ("> 0", "< 0")
    spread = f" ± {_fmt(c['std'])} (SE {_fmt(c['se'])}, n={c['n']})" if c["n"] > 1 else " (n=1)"
    return f"{c['label']}: {_fmt(c['mean'], signed)}{spread}, claimed {c['claimed']} → {c['verdict']}"


def to_markdown(p: Mapping[str, Any], level: int = 1, details: bool = True) -> str:
    """Markdown of a :func:`payload`: summary table, then (``details``) one section per claim.
    ``level``: the heading level of the title (1 for claims.md, 2 inside the report's index)."""
    h = "#" * level
    out = [f"{h} Claims\n",
           "The paper's claims (arXiv 2604.04894), checked on these runs.\n"]
    if not p["runs"]:
        out.append(f"No finished runs under `{p['results_dir']}`.\n")
    else:
        out.append(f"Runs: {_runs_text(p)}.\n")
    out.append(f"Rule: {p['rule']}\n")
    out.append("| # | Claim | Paper | Verdict | Evidence |")
    out.append("|---|---|---|---|---|")
    for c in p["claims"]:
        ev = "<br>".join(_check_line(k).replace("|", "\\|") for k in c["checks"]) or "–"
        out.append(f"| {c['id']} | {c['title']} | {c['paper']} | **{c['verdict']}** | {ev} |")
    out.append("")
    for note in p["notes"]:
        out.append(f"- {note}")
    if p["command"]:
        out.append(f"\nTo add every missing run:\n\n```\n{p['command']}\n```\n")
    for c in p["claims"] if details else ():
        out.append(f"{h}# {c['id']}. {c['title']} ({c['paper']}): {c['verdict']}\n")
        out.append(f"Claim: {c['statement']}.\n")
        if c["checks"]:
            out.append("| Check | Claimed | Mean | Std | SE | n | Per seed | Verdict |")
            out.append("|---|---|---:|---:|---:|---:|---|---|")
            for k in c["checks"]:
                signed = k["claimed"] in ("> 0", "< 0")
                out.append(f"| {k['label']} | {k['claimed']} | {_fmt(k['mean'], signed)} | {_fmt(k['std'])} | "
                           f"{_fmt(k['se'])} | {k['n']} | {_seed_text(k['per_seed'], signed)} | "
                           f"{k['verdict']}: {k['reason']} |")
            out.append("")
            for k in c["checks"]:
                levels = "; ".join(f"{name} = {_fmt(v)}" for name, v in k["levels"].items())
                if levels:
                    out.append(f"- {k['label']}: {levels}" + (f" ({k['unit']})" if k["unit"] else ""))
                if k["extra"].get("frac_steps"):
                    out.append(f"  - fraction of steps on the claimed side: mean "
                               f"{_fmt(k['extra']['frac_steps_mean'])} ({_seed_text(k['extra']['frac_steps'])})")
        for t in c["tables"]:
            out.append(f"\n{t['title']}:\n")
            out.append("| " + " | ".join(t["columns"]) + " |")
            out.append("|" + "---|" * len(t["columns"]))
            for row in t["rows"]:
                out.append("| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |")
        out.append("")
        for note in c["notes"]:
            out.append(f"- {note}")
        if c["command"]:
            out.append(f"\nTo add the missing runs:\n\n```\n{c['command']}\n```")
        out.append("")
    if p["skipped"]:
        out.append(f"Passed over: {'; '.join(p['skipped'])}.\n")
    return "\n".join(out).rstrip() + "\n"


def to_json(p: Mapping[str, Any]) -> str:
    import json

    return json.dumps(p, indent=2, allow_nan=False) + "\n"


VERDICT_STYLE = {"holds": "bold green", "fails": "bold red", "mixed": "bold yellow", "insufficient": "dim"}


def print_rich(p: Mapping[str, Any], console: Any) -> None:
    """The summary table in the terminal (details are in claims.md)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="The paper's claims, checked on these runs", show_lines=True)
    table.add_column("#", no_wrap=True)
    table.add_column("Claim (paper)", ratio=2)
    table.add_column("Verdict", no_wrap=True)
    table.add_column("Evidence (mean ± std over seeds, SE, n)", ratio=3)
    for c in p["claims"]:
        lines = [_check_line(k) for k in c["checks"]]
        if c["command"]:
            lines.append(f"to add: {c['command']}")
        table.add_row(c["id"], f"{c['title']} ({c['paper']})", Text(c["verdict"], style=VERDICT_STYLE[c["verdict"]]),
                      "\n".join(lines) or "–")
    console.print(table)
    console.print(f"runs: {_runs_text(p) or 'none under ' + p['results_dir']}", highlight=False)
    for note in p["notes"]:
        console.print(f"note: {note}", highlight=False)
    console.print(f"rule: {p['rule']}", highlight=False)


def write_files(p: Mapping[str, Any], report_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``claims.md`` (with details) and ``claims.json`` atomically under ``report_dir``."""
    d = Path(report_dir)
    paths = {"md": d / "claims.md", "json": d / "claims.json"}
    artifacts.write_text(paths["md"], to_markdown(p, level=1))
    artifacts.write_json(paths["json"], p)
    return paths


def report_section(ctx: Any) -> str:
    """The "Claims" section of the report's index.md (``ctx``: asymcli.report.ReportContext,
    or anything with ``.cfg``): checks every finished run of ``ctx.cfg`` afresh, rewrites
    report/claims.md and claims.json beside the index, and returns the summary with a link
    to them."""
    resolved = Path(ctx.cfg.results_dir) / "config.resolved.yaml"  # the pipeline's config (pipeline.Layout)
    p = check_results(ctx.cfg, config_path=str(resolved) if resolved.exists() else None)
    write_files(p, Path(ctx.cfg.results_dir) / "report")
    text = to_markdown(p, level=2, details=False).rstrip()
    return text + "\n\nPer-seed values, tables and notes: [claims.md](claims.md) ([JSON](claims.json)).\n"
