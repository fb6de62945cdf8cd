"""Stage `prep`: config -> data/prompts.parquet (PROMPTS schema, train + held-out splits).

``task.kind == "arithmetic"``: the embedded tiered task (:mod:`asymcli.embedded.tasks`).
``task.kind == "benchmark"``: training prompts from a benchmark source such as MATH's
training set (``task.source``, from ``task.path`` or the local hub cache), through
:mod:`asymcli.evaluation.benchmarks`; held-out evaluation then comes from the eval benchmarks.
``task.kind == "reasoning_gym"``: reasoning-gym generators (``task.generators``), train and
held-out splits by disjoint seeds, each row keeping its generator's name and metadata
(:mod:`asymcli.rg_tasks`).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from asymcli import artifacts
from asymcli.config import Config, config_to_dict
from asymcli.errors import DataError
from asymcli.pipeline.layout import Layout
from asymcli.embedded.tasks import generate_arithmetic


def default_out(cfg: Config) -> Path:
    return Layout.of(cfg).prompts


def build_prompts(cfg: Config) -> pa.Table | list[dict[str, str]]:
    """The rows prep would write, without writing them."""
    t = cfg.task
    if t.kind == "arithmetic":
        rows = generate_arithmetic(t.n_train, t.n_heldout, t.tiers, seed=t.seed, worked_frac=t.worked_frac,
                                   solution_forms=t.solution_forms)
        if t.limit is not None:
            train = [r for r in rows if r["split"] == "train"][: t.limit]
            rows = train + [r for r in rows if r["split"] != "train"]
        return rows
    if t.kind == "reasoning_gym":
        from asymcli import rg_tasks as rg  # lazy: imports reasoning-gym

        rows = rg.generate(t.generators, t.n_train, t.n_heldout, seed=t.seed, threshold=cfg.grading.rg_threshold)
        if t.limit is not None:
            train = [r for r in rows if r["split"] == "train"][: t.limit]
            rows = train + [r for r in rows if r["split"] != "train"]
        return rows
    return _benchmark_prompts(cfg)


def _benchmark_prompts(cfg: Config) -> pa.Table:
    from asymcli.evaluation.benchmarks import load_benchmark, load_prompts_file  # lazy: only this path needs it
    from asymcli.config import BenchmarkSpec

    t = cfg.task
    if t.path:
        table = load_prompts_file(t.path, t.columns, t.source, "train", limit=t.limit)
    else:
        spec = BenchmarkSpec(name=t.source, hub_id=t.hub_id, columns=dict(t.columns), limit=t.limit)
        table = load_benchmark(spec)
    # Whatever split the source's rows carry, here they are the training prompts.
    table = table.set_column(table.schema.get_field_index("split"), "split",
                             pa.array(["train"] * table.num_rows, pa.string()))
    if table.num_rows == 0:
        where = t.path or t.hub_id or t.source
        raise DataError(f"{where}: task source '{t.source}' gave no training prompts")
    return table


def run(cfg: Config, out: Path | None = None) -> Path:
    """Write the prompts artifact; returns its path."""
    out = Path(out) if out else default_out(cfg)
    rows = build_prompts(cfg)
    meta = artifacts.provenance(config_to_dict(cfg), stage="prep")
    return artifacts.write_parquet(out, rows, artifacts.PROMPTS, meta)
