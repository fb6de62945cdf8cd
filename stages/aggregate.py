"""Stage `aggregate`: samples / metrics Parquet -> {results}/agg/*.parquet (asymcli.analysis.aggregate).

Parts (pipeline.AGG_PARTS): ``table2`` (run_scores + table2 + train_stats), ``grid`` (Figure 4d) and
``curves`` (curves + kappa). ``runs`` lists the run ids to include (Snakemake passes
exactly its rule's inputs); None = every run found under results_dir, so a plain
``asym report`` covers all that has been evaluated, whichever grid produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from asymcli.analysis import aggregate as agg
from asymcli import artifacts
from asymcli.config import METHODS, Config, config_to_dict, is_base_run, parse_run_id
from asymcli.errors import ArtifactError, ConfigError
from asymcli.pipeline import AGG_PARTS, Layout
from asymcli.platform import mixed_note


def parse_runs(text: str) -> list[str]:
    """``"base,grpo_s0,..."`` -> run ids (each checked); "" -> []."""
    out = [r.strip() for r in text.split(",") if r.strip()]
    for rid in out:
        if not is_base_run(rid):
            parse_run_id(rid)
    return out


def check_parts(parts: Sequence[str] | None, known: Sequence[str]) -> list[str]:
    if not parts:
        return list(known)
    for p in parts:
        if p not in known:
            raise ConfigError(f"--part {p!r}: must be one of {', '.join(known)}")
    return list(dict.fromkeys(parts))


def discover(layout: Layout, kind: str) -> list[str]:
    """Run ids with a finished artifact: ``samples`` (evals/*/samples.parquet) or
    ``metrics`` (runs/*/metrics.parquet)."""
    d, file = (layout.evals_dir, layout.samples) if kind == "samples" else (layout.runs_dir, layout.metrics)
    if not d.is_dir():
        return []
    return sorted(p.parent.name for p in d.glob(str(file("*").relative_to(d))))


def asym_runs(ids: Sequence[str]) -> list[str]:
    """The AsymGRPO runs among ``ids`` (estimator ``asym``: fixed betas or ``asym_adaptive``),
    the rows of the grid part; base evaluations are none."""
    return [r for r in ids if not is_base_run(r) and METHODS[parse_run_id(r)[0]]["estimator"] == "asym"]


def run_platforms(layout: Layout, runs: Sequence[str]) -> dict[str, dict | None]:
    """{run id: the platform it was trained on (run.json), or evaluated on for the base}."""
    return {r: artifacts.recorded_platform(layout.run_json(r), layout.metrics(r), layout.samples(r))
            for r in runs}


def _write(layout: Layout, name: str, table, cfg: Config, part: str, runs: list[str]) -> Path:
    # the footer names each run's platform and, when they differ, says so (asymcli.platform)
    platforms = run_platforms(layout, runs)
    return artifacts.write_parquet(layout.agg(name), table, agg.SCHEMAS[name],
                                   artifacts.provenance(config_to_dict(cfg), part=part, runs=runs,
                                                        run_platforms=platforms,
                                                        platform_note=mixed_note(platforms)))


def run(cfg: Config, parts: Sequence[str] | None = None, runs: Sequence[str] | None = None) -> list[Path]:
    """Write the agg/*.parquet files of ``parts``; returns their paths."""
    layout = Layout.of(cfg)
    todo = check_parts(parts, list(AGG_PARTS))
    out: list[Path] = []
    bench_order = [b.name for b in cfg.eval.benchmarks]
    pair_order = cfg.grid.betas
    for part in todo:
        if part in ("table2", "grid"):
            ids = list(runs) if runs is not None else discover(layout, "samples")
            if part == "grid":
                ids = asym_runs(ids)
            scores = agg.run_scores([layout.samples(r) for r in ids])
            check_k(scores, cfg, layout)
            check_reported_step(scores, cfg, layout)
            table = agg.table2(scores, checkpoint=cfg.report.checkpoint, benchmark_order=bench_order,
                               pair_order=pair_order, base_label=_base_label(cfg))
            if part == "table2":
                out.append(_write(layout, "run_scores", scores, cfg, part, ids))
                out.append(_write(layout, "table2", table, cfg, part, ids))
                # Entropy and reward beside the accuracy: from the training metrics of the
                # same runs (a run evaluated without training metrics has no dynamics row).
                trained = [r for r in ids if not is_base_run(r) and layout.metrics(r).exists()]
                curves = agg.curves({r: layout.metrics(r) for r in trained}, ema_weight=cfg.report.ema)
                stats = agg.train_stats(curves, pair_order=pair_order)
                out.append(_write(layout, "train_stats", stats, cfg, part, trained))
            else:
                out.append(_write(layout, "grid", agg.grid(table), cfg, part, ids))
        elif part == "curves":
            ids = [r for r in (list(runs) if runs is not None else discover(layout, "metrics")) if not is_base_run(r)]
            curves = agg.curves({r: layout.metrics(r) for r in ids}, ema_weight=cfg.report.ema)
            out.append(_write(layout, "curves", curves, cfg, part, ids))
            out.append(_write(layout, "kappa", agg.kappa(curves, cfg.report.kappa_steps), cfg, part, ids))
    return out


def check_k(scores, cfg: Config, layout: Layout) -> None:
    """Every (run, step, benchmark) of the config's benchmarks must have exactly the config's k
    samples per problem: Avg@k over another k (an evaluation made with an older config, a
    short part) would be reported under the config's protocol. Raises ArtifactError naming
    the samples file."""
    want = {b.name: b.k for b in cfg.eval.benchmarks}
    for r in scores.to_pylist():
        k = want.get(r["benchmark"])
        if k is not None and not r["k_min"] == r["k"] == k:
            got = f"k={r['k']}" if r["k_min"] == r["k"] else f"k={r['k_min']} to {r['k']}"
            raise ArtifactError(
                f"{layout.samples(r['run_id'])}: benchmark '{r['benchmark']}' (step {r['step']}) has {got} "
                f"samples per problem but the config's eval.benchmarks asks k={k}; rerun `asym eval` for "
                f"run {r['run_id']}")


def check_reported_step(scores, cfg: Config, layout: Layout) -> None:
    """With ``report.checkpoint: N`` every run must have been evaluated at step N; otherwise
    its row would silently drop out of Table 2. Raises ArtifactError naming the samples file."""
    step = agg.parse_checkpoint(cfg.report.checkpoint)
    if step is None:
        return
    steps: dict[str, set[int]] = {}
    for r in scores.to_pylist():
        if not is_base_run(r["run_id"]):
            steps.setdefault(r["run_id"], set()).add(r["step"])
    for rid, have in sorted(steps.items()):
        if step not in have:
            raise ArtifactError(
                f"{layout.samples(rid)}: no evaluation at step {step} (report.checkpoint), only at steps "
                f"{sorted(have)}; set eval.steps: all, or run `asym eval --steps {step}` for run {rid}")


def _base_label(cfg: Config) -> str:
    from asymcli.analysis.report import base_label

    return base_label(cfg)
