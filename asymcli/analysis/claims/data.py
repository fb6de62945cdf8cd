"""The runs a claim check reads: finished runs located under a results folder, loaded from
their artifacts (``runs/{run_id}/metrics.parquet``, ``evals/{run_id}/samples.parquet``).

Why apart: the checks (:mod:`.checks`) are pure functions of :class:`RunData`; this module
is the only part of ``asym claims`` that touches files (DuckDB for the samples, SQL in
``sql/claims_*.sql``), so tests can build RunData directly or write real artifacts.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ... import artifacts
from ...artifacts import METRICS_FILE
from ...config import METHOD_LABELS, fmt_beta, parse_run_id, run_id
from ...errors import ArtifactError, ConfigError
from ...pipeline.layout import Layout

#: The paper's AsymGRPO setting (Table 2) and its symmetric ablation (Appendix H).
ASYM_PAIR = (0.9, 0.4)
SYM_PAIR = (0.7, 0.7)

GroupKey = tuple[str, "float | None", "float | None"]
REINFORCE: GroupKey = ("reinforce", None, None)
REINFORCE_ENT: GroupKey = ("reinforce_ent", None, None)
GRPO: GroupKey = ("grpo", None, None)
POS_ONLY: GroupKey = ("pos_only", None, None)
NEG_ONLY: GroupKey = ("neg_only", None, None)
ENT_DECREASE: GroupKey = ("ent_decrease", None, None)
ENT_INCREASE: GroupKey = ("ent_increase", None, None)
ASYM: GroupKey = ("asym", *ASYM_PAIR)
SYM: GroupKey = ("asym", *SYM_PAIR)


SQL_DIR = Path(__file__).resolve().parents[2] / "sql"  # asymcli/sql/ (package data)


@functools.cache
def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


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
    """Run group = method; AsymGRPO runs are told apart by their betas, asym_adaptive runs by
    their own target when they have one (``asym_adaptive_t0.9_s0``: methods.run_id)."""
    if method == "asym":
        return ("asym", float(beta_pos), float(beta_neg))  # type: ignore[arg-type]
    if method == "asym_adaptive" and beta_pos is not None and (beta_neg is None or math.isnan(beta_neg)):
        return (method, float(beta_pos), None)
    return (method, None, None)


def group_label(g: GroupKey) -> str:
    method, bp, bn = g
    if method == "asym":
        return f"AsymGRPO ({fmt_beta(bp)}, {fmt_beta(bn)})"  # type: ignore[arg-type]
    if method == "asym_adaptive" and bp is not None:
        return f"{METHOD_LABELS[method]} (target {fmt_beta(bp)})"
    return METHOD_LABELS.get(method, method)


def group_sort_key(g: GroupKey) -> tuple[Any, ...]:
    order = list(METHOD_LABELS)
    method, bp, bn = g
    if method == "asym":
        return (len(order) + 1, bp, bn, "")
    if method == "asym_adaptive" and bp is not None:  # its targets, in order
        return (order.index(method), bp, 0.0, method)
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
    layout = Layout(results_dir)
    runs_dir = layout.runs_dir
    if not runs_dir.is_dir():
        return
    for d in sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            parse_run_id(d.name)
        except ConfigError:
            src.skipped.append(f"{d}: not a run id")
            continue
        if not layout.metrics(d.name).exists():
            src.skipped.append(f"{d.name}: unfinished (no metrics.parquet)")
            continue
        _add(src, d.name, layout.metrics(d.name), layout.samples(d.name))


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
            if (p / METRICS_FILE).exists():
                parse_run_id(p.name)
                _add(src, p.name, p / METRICS_FILE, Layout(p.parent.parent).samples(p.name))
            elif Layout(p).runs_dir.is_dir():
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
            m = Layout(root).metrics(rid)
            if not m.exists():
                raise ArtifactError(f"{m}: artifact does not exist (run {rid} not finished?)")
            _add(src, rid, m, Layout(root).samples(rid))
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
                if k != "step" and not isinstance(v, list):  # lists: histograms, eval_bench
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
