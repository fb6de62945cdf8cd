"""Aggregation: DuckDB queries over the Parquet artifacts -> the tables of the report.

Why it exists: Table 2, the pass@k / maj@k tables, Figure 4d's grid and the training
curves are all group-bys over many small Parquet files; DuckDB reads them in place. The
SQL lives in ``asymcli/sql/*.sql`` (one query per file, documented there); file lists
reach it as a list parameter (``read_parquet($files)``) and in-memory tables as
registered relations, never by pasting paths into SQL.

Conventions (stated again under every table of the report):
- scores are x 100; Avg. = mean over the benchmarks (as the paper), defined only for a
  run that has all of them;
- several seeds: the mean, and the sample standard deviation (n - 1) as the spread;
- the reported checkpoint is ``report.checkpoint``: "final" (each run's last evaluated
  step) or a step number; the base model is its one evaluation at step 0;
- accuracy curves are smoothed with an EMA of weight ``report.ema`` on the previous value
  (s_t = w s_{t-1} + (1 - w) x_t, s_0 = x_0; the paper's 0.7), over evaluated steps only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .. import artifacts
from ..config import METHOD_LABELS, fmt_beta
from ..errors import ArtifactError, ConfigError

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"  # asymcli/sql/ (package data)

# ---------------------------------------------------------------------------
# Schemas of the agg/*.parquet artifacts
# ---------------------------------------------------------------------------

RUN_SCORES = pa.schema([
    ("run_id", pa.string()),
    ("method", pa.string()),
    ("beta_pos", pa.float64()),
    ("beta_neg", pa.float64()),
    ("seed", pa.int64()),
    ("step", pa.int64()),
    ("benchmark", pa.string()),
    ("n_problems", pa.int64()),
    ("k_min", pa.int64()),  # fewest samples any problem got (== k unless a part is short)
    ("k", pa.int64()),
    ("temperature", pa.float64()),
    ("avg_at_k", pa.float64()),  # fractions in [0, 1]
    ("pass_at_k", pa.float64()),
    ("maj_at_k", pa.float64()),
])

TABLE2 = pa.schema([
    ("row", pa.int64()),  # display order of the row (paper order, then the rest)
    ("label", pa.string()),
    ("method", pa.string()),
    ("beta_pos", pa.float64()),  # null except for AsymGRPO rows
    ("beta_neg", pa.float64()),
    ("col", pa.int64()),  # display order of the benchmark column; "Avg." is last
    ("benchmark", pa.string()),  # a benchmark name or "Avg."
    ("metric", pa.string()),  # avg@k | pass@k | maj@k
    ("mean", pa.float64()),  # x 100, over seeds
    ("std", pa.float64()),  # sample std over seeds (null with one seed)
    ("min", pa.float64()),
    ("max", pa.float64()),
    ("n_seeds", pa.int64()),
    ("seeds", pa.list_(pa.int64())),
    ("step_min", pa.int64()),  # reported checkpoint step(s) of the row's runs
    ("step_max", pa.int64()),
])

GRID = pa.schema([
    ("beta_pos", pa.float64()),
    ("beta_neg", pa.float64()),
    ("mean", pa.float64()),  # Avg. x 100
    ("std", pa.float64()),
    ("n_seeds", pa.int64()),
    ("step_min", pa.int64()),
    ("step_max", pa.int64()),
])

CURVES = pa.schema([
    ("run_id", pa.string()),
    ("method", pa.string()),
    ("beta_pos", pa.float64()),
    ("beta_neg", pa.float64()),
    ("seed", pa.int64()),
    ("step", pa.int64()),
    ("reward_mean", pa.float64()),
    ("entropy", pa.float64()),
    ("kappa", pa.float64()),
    ("none_solved_frac", pa.float64()),
    ("all_solved_frac", pa.float64()),
    ("mixed_frac", pa.float64()),
    ("logprob_gain_correct", pa.float64()),
    ("logprob_gain_correct_tok", pa.float64()),
    ("response_len_mean", pa.float64()),
    ("eval_greedy_acc", pa.float64()),  # greedy test accuracy (mean over benchmarks); NaN on steps without evaluation
    ("eval_greedy_acc_ema", pa.float64()),  # EMA over the evaluated steps; NaN elsewhere
    ("step_beta_pos", pa.float64()),  # the betas this step used (asym_adaptive sets them every step)
    ("step_beta_neg", pa.float64()),
    ("entropy_target", pa.float64()),  # the schedule's entropy target H*; NaN for fixed methods
    ("schedule_saturated", pa.float64()),  # 1 where the schedule's betas sat at their bounds (NaN: no schedule)
])

KAPPA = pa.schema([
    ("method", pa.string()),
    ("beta_pos", pa.float64()),
    ("beta_neg", pa.float64()),
    ("kappa_hat_e3", pa.float64()),  # kappa-hat x 1e3 (Table 1's scale)
    ("std", pa.float64()),
    ("n_seeds", pa.int64()),
    ("n_steps", pa.int64()),
])

#: Training dynamics beside Table 2: what each row's training did to entropy and reward, so
#: the mechanism (Prop. 1: the channels move entropy) is seen next to the accuracy it buys.
TRAIN_STATS = pa.schema([
    ("row", pa.int64()),  # display order (Table 2's)
    ("label", pa.string()),
    ("method", pa.string()),
    ("beta_pos", pa.float64()),
    ("beta_neg", pa.float64()),
    ("entropy_mean", pa.float64()),  # nats/token: per run the mean over steps >= 1, then mean over seeds
    ("entropy_mean_std", pa.float64()),  # sample std over seeds (null with one seed)
    ("entropy_final", pa.float64()),  # the last step's entropy, mean over seeds
    ("entropy_final_std", pa.float64()),
    ("reward_first", pa.float64()),  # mean training reward over the first `window` steps
    ("reward_last", pa.float64()),  # ... and over the last `window` steps
    ("window", pa.int64()),
    ("n_seeds", pa.int64()),
    ("seeds", pa.list_(pa.int64())),
    ("step_min", pa.int64()),  # last training step of the row's runs
    ("step_max", pa.int64()),
])

SCHEMAS: dict[str, pa.Schema] = {
    "run_scores": RUN_SCORES,
    "table2": TABLE2,
    "train_stats": TRAIN_STATS,
    "grid": GRID,
    "curves": CURVES,
    "kappa": KAPPA,
}

METRICS_SHOWN = ("avg@k", "pass@k", "maj@k")
AVG = "Avg."


# ---------------------------------------------------------------------------
# Plumbing
# ---------------------------------------------------------------------------


@functools.cache
def sql(name: str) -> str:
    """The text of ``asymcli/sql/{name}.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def _query(name: str, params: Mapping[str, Any] | None = None,
           relations: Mapping[str, pa.Table] | None = None) -> pa.Table:
    con = duckdb.connect(":memory:")
    try:
        for rel, table in (relations or {}).items():
            con.register(rel, table)
        return con.sql(sql(name), params=dict(params or {})).to_arrow_table()
    finally:
        con.close()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a query result to a declared schema (DuckDB's types are close, not identical)."""
    if table.num_rows == 0:
        return schema.empty_table()
    return table.select(schema.names).cast(schema)


def check_files(files: Sequence[str | Path], schema: pa.Schema) -> list[str]:
    """Each file exists, is a complete Parquet file and has ``schema``'s columns (footer
    only, no data read). Returns the paths as strings; raises ArtifactError naming one."""
    out = []
    for f in files:
        p = Path(f)
        if not p.exists():
            raise ArtifactError(f"{p}: artifact does not exist")
        try:
            found = pq.read_schema(p)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ArtifactError(f"{p}: truncated or corrupted Parquet file ({str(exc).splitlines()[0][:200]})") from None
        artifacts.check_schema(found.empty_table(), schema, str(p))
        out.append(str(p))
    return out


def parse_checkpoint(checkpoint: str | int | None) -> int | None:
    """report.checkpoint -> None (final) or a step number."""
    if checkpoint is None or checkpoint == "final":
        return None
    if isinstance(checkpoint, int) or (isinstance(checkpoint, str) and checkpoint.isdigit()):
        return int(checkpoint)
    raise ConfigError(f"report.checkpoint must be 'final' or a step number, got {checkpoint!r}")


# ---------------------------------------------------------------------------
# Scores from samples
# ---------------------------------------------------------------------------


def run_scores(samples_files: Sequence[str | Path]) -> pa.Table:
    """Avg@k, pass@k and maj@k per (run, step, benchmark) from SAMPLES files (RUN_SCORES)."""
    files = check_files(samples_files, artifacts.SAMPLES)
    if not files:
        return RUN_SCORES.empty_table()
    dup = _query("duplicates", {"files": files})
    if dup.num_rows:
        r = dup.to_pylist()[0]
        raise ArtifactError(
            f"run {r['run_id']}: sample {r['sample_idx']} of problem {r['problem_id']} "
            f"({r['benchmark']}, step {r['step']}) appears {r['copies']} times across {len(files)} samples file(s)")
    return _conform(_query("run_scores", {"files": files}), RUN_SCORES)


# ---------------------------------------------------------------------------
# Table 2
# ---------------------------------------------------------------------------


def row_label(method: str, beta_pos: float | None = None, beta_neg: float | None = None,
              base_label: str = METHOD_LABELS["base"]) -> str:
    """Table 2's row label: the paper's method name; AsymGRPO rows carry their betas."""
    if method == "base":
        return base_label
    if method == "asym":
        if beta_pos is None or beta_neg is None:
            return METHOD_LABELS["asym"]
        if beta_pos == beta_neg:
            return f"AsymGRPO (βpos=βneg={fmt_beta(beta_pos)})"
        return f"AsymGRPO (βpos={fmt_beta(beta_pos)}, βneg={fmt_beta(beta_neg)})"
    if method == "asym_adaptive" and beta_pos is not None and beta_neg is None:  # its own target (methods.run_id)
        return f"{METHOD_LABELS[method]} (target {fmt_beta(beta_pos)})"
    return METHOD_LABELS.get(method, method)


def row_sort_key(method: str, beta_pos: float | None, beta_neg: float | None,
                 pair_order: Sequence[Sequence[float]] = ()) -> tuple[Any, ...]:
    """Paper order (METHOD_LABELS), unknown methods before AsymGRPO, AsymGRPO rows in the
    config's grid.betas order, then the other pairs by (beta_pos, beta_neg)."""
    order = list(METHOD_LABELS)
    if method == "asym":
        pairs = [(float(a), float(b)) for a, b in pair_order]
        pair = (beta_pos, beta_neg)
        rank = pairs.index(pair) if pair in pairs else len(pairs)  # type: ignore[arg-type]
        return (len(order) + 1, rank, beta_pos or 0.0, beta_neg or 0.0, "")
    if method in order:
        return (order.index(method), 0, 0.0, 0.0, "")
    return (len(order), 0, 0.0, 0.0, method)


def _none(x: Any) -> Any:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def table2(scores: pa.Table, *, checkpoint: str | int | None = "final",
           benchmark_order: Sequence[str] = (), pair_order: Sequence[Sequence[float]] = (),
           base_label: str = METHOD_LABELS["base"]) -> pa.Table:
    """Table 2 in long form (TABLE2): one row per (method row, benchmark or Avg., metric)."""
    if scores.num_rows == 0:
        return TABLE2.empty_table()
    step = parse_checkpoint(checkpoint)
    present = sorted(set(scores.column("benchmark").to_pylist()))
    benchmarks = [b for b in benchmark_order if b in present] + [b for b in present if b not in benchmark_order]
    missing = [b for b in benchmark_order if b not in present]
    n_bench = len(benchmarks) + len(missing)  # a benchmark no run has makes every Avg. null
    raw = _query("table2", {"checkpoint": step, "n_benchmarks": n_bench}, {"scores": scores})
    rows = raw.to_pylist()
    keys = sorted({(r["method"], _none(r["beta_pos"]), _none(r["beta_neg"])) for r in rows},
                  key=lambda k: row_sort_key(*k, pair_order=pair_order))
    row_of = {k: i for i, k in enumerate(keys)}
    col_of = {b: i for i, b in enumerate(benchmarks)}
    col_of[AVG] = len(benchmarks)
    out = []
    for r in rows:
        k = (r["method"], _none(r["beta_pos"]), _none(r["beta_neg"]))
        out.append({**r, "row": row_of[k], "label": row_label(*k, base_label=base_label),
                    "col": col_of[r["benchmark"]], "beta_pos": k[1], "beta_neg": k[2]})
    out.sort(key=lambda r: (r["row"], r["col"], METRICS_SHOWN.index(r["metric"])))
    return artifacts.to_table(out, TABLE2)


def grid(table: pa.Table) -> pa.Table:
    """Figure 4d's grid (GRID) from a Table 2 long table of AsymGRPO runs."""
    if table.num_rows == 0:
        return GRID.empty_table()
    return _conform(_query("grid", relations={"table2": table}), GRID)


# ---------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------


def ema(values: Sequence[float], weight: float) -> list[float]:
    """EMA smoothing s_t = w s_{t-1} + (1 - w) x_t, s_0 = x_0, over the non-NaN values.

    NaN entries (steps without an evaluation) stay NaN and do not reset the average.
    """
    if not 0 <= weight < 1:
        raise ConfigError(f"report.ema must be in [0, 1), got {weight}")
    out: list[float] = []
    s: float | None = None
    for x in values:
        if x is None or math.isnan(x):
            out.append(math.nan)
            continue
        s = x if s is None else weight * s + (1 - weight) * x
        out.append(s)
    return out


def curves(metrics_files: Mapping[str, str | Path], *, ema_weight: float = 0.7) -> pa.Table:
    """Per-step curves (CURVES) of the runs {run_id: metrics.parquet}, accuracy EMA added."""
    from ..config import parse_run_id

    files = check_files(list(metrics_files.values()), artifacts.METRICS)
    if not files:
        return CURVES.empty_table()
    runs = []
    for (rid, _), path in zip(metrics_files.items(), files):
        method, bp, bn, seed = parse_run_id(rid)
        runs.append({"path": path, "run_id": rid, "method": method,
                     "beta_pos": bp, "beta_neg": bn, "seed": seed})
    run_rel = pa.Table.from_pylist(runs, schema=pa.schema([
        ("path", pa.string()), ("run_id", pa.string()), ("method", pa.string()),
        ("beta_pos", pa.float64()), ("beta_neg", pa.float64()), ("seed", pa.int64())]))
    t = _query("curves", {"files": files}, {"runs": run_rel})
    acc = t.column("eval_greedy_acc").to_pylist()
    rid = t.column("run_id").to_pylist()
    smoothed: list[float] = []
    start = 0
    for i in range(1, len(rid) + 1):  # rows are ordered by (run_id, step)
        if i == len(rid) or rid[i] != rid[start]:
            smoothed += ema(acc[start:i], ema_weight)
            start = i
    t = t.append_column("eval_greedy_acc_ema", pa.array(smoothed, pa.float64()))
    for name, values in _step_schedule(dict(zip(metrics_files, files)), rid, t.column("step").to_pylist()).items():
        t = t.append_column(name, pa.array(values, pa.float64()))
    return _conform(t, CURVES)


STEP_SCHEDULE = {"beta_pos": "step_beta_pos", "beta_neg": "step_beta_neg", "entropy_target": "entropy_target",
                 "schedule_saturated": "schedule_saturated"}


def _step_schedule(paths: Mapping[str, str], run_ids: Sequence[str], steps: Sequence[int]) -> dict[str, list[float]]:
    """The betas (and entropy target) each step used, aligned to the curve rows (run_id, step).
    Read here rather than in curves.sql: metrics written before they were logged lack the
    columns, and DuckDB cannot select a column that no file of the union has."""
    per: dict[tuple[str, int], dict[str, float]] = {}
    for rid, path in paths.items():
        have = [c for c in STEP_SCHEDULE if c in pq.read_schema(path).names]  # older files lack some
        if not have:
            continue
        for r in pq.read_table(path, columns=["step", *have]).to_pylist():
            per[(rid, int(r["step"]))] = r
    return {out: [_num(per.get((rid, int(st)), {}).get(col)) for rid, st in zip(run_ids, steps)]
            for col, out in STEP_SCHEDULE.items()}


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def train_stats(curves_table: pa.Table, *, window: int = 10, pair_order: Sequence[Sequence[float]] = ()) -> pa.Table:
    """Entropy (mean over the run, last step) and training reward (first / last ``window``
    steps) per Table 2 row, over seeds (TRAIN_STATS), in Table 2's row order."""
    if window < 1:
        raise ConfigError(f"train_stats window must be >= 1, got {window}")
    if curves_table.num_rows == 0:
        return TRAIN_STATS.empty_table()
    rows = _query("train_stats", {"window": int(window)}, {"curves": curves_table}).to_pylist()
    rows.sort(key=lambda r: row_sort_key(r["method"], _none(r["beta_pos"]), _none(r["beta_neg"]), pair_order))
    out = [{**r, "row": i, "window": int(window), "beta_pos": _none(r["beta_pos"]), "beta_neg": _none(r["beta_neg"]),
            "label": row_label(r["method"], _none(r["beta_pos"]), _none(r["beta_neg"]))}
           for i, r in enumerate(rows)]
    return artifacts.to_table(out, TRAIN_STATS)


def kappa(curves_table: pa.Table, steps: int = 20) -> pa.Table:
    """kappa-hat over the first ``steps`` steps per method row (KAPPA; Appendix E)."""
    if curves_table.num_rows == 0:
        return KAPPA.empty_table()
    return _conform(_query("kappa", {"steps": int(steps)}, {"curves": curves_table}), KAPPA)
