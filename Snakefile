"""AsymGRPO experiments (arXiv 2604.04894) as one Snakemake DAG.

    prep -> base (tiny model only) -> train per run -> eval per run (+ the base model)
         -> aggregate (DuckDB) -> report (tables, figures, index.md)

(With resources.train_bundle / eval_bundle, one job trains or evaluates several runs.)

Targets: all (default), table2, grid, figures. From the repository root:

    snakemake --cores all table2                                  # embedded default config
    snakemake --cores 2 table2 --configfile configs/smoke.yaml    # seconds (CI)
    snakemake -n table2 --configfile configs/paper/qwen3-4b.yaml  # the plan only
    asym run-grid --betas 0.9,0.4                                 # the same DAG from the CLI

A --configfile replaces configs/default.yaml instead of being merged over it, so a file
means the same config here and in `asym <command> --config FILE`. The rules (one file per
concern) are in workflow/rules/; which runs a config asks for, the results layout and each
rule's rerun fingerprint come from asymcli/pipeline/.

Rerun semantics (Snakemake's default triggers, no flags needed): a second call does
nothing; a new beta pair or seed adds only its own train/eval jobs; a changed setting
reruns exactly the jobs whose config slice changed (each rule's `fingerprint` param), e.g.
train.lr retrains every run, report.ema only re-aggregates. The merged config is written
to {results_dir}/config.resolved.yaml when a run starts (never on dry runs, and only when
its text changed); rules pass it to the CLI but do not depend on it. Artifacts written by
the `asym` stage commands directly are reused as long as they are newer than their inputs.
"""

import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from asymcli import pipeline
from asymcli.errors import ConfigError
from asymcli.platform import apply_numerics

min_version("8.0")

DEFAULT_CONFIG = Path(workflow.basedir) / "configs" / "default.yaml"

if not workflow.overwrite_configfiles:

    configfile: str(DEFAULT_CONFIG)


# asym's checks (one-line messages naming the key): the one validation. The JSON schema
# (workflow/schemas/config.schema.json) is generated from the same declarations, for editors.
try:
    CFG = pipeline.workflow_config(config, workflow.overwrite_configfiles or [DEFAULT_CONFIG])
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None
# numerics.portable: pin the CPU kernels in this process's environment, which every job's
# `asym <stage>` process inherits, before any of them loads torch (asymcli/platform.py).
apply_numerics(CFG.numerics.portable)

LAYOUT = pipeline.Layout.of(CFG)
CONFIG_FILE = str(LAYOUT.resolved_config)  # what every rule passes to `asym <stage> --config`
TABLE_RUNS = pipeline.ids(pipeline.table_runs(CFG))
GRID_RUNS = pipeline.ids(pipeline.grid_pair_runs(CFG))
TRAIN_RESOURCES = pipeline.rule_resources(CFG, "train")
EVAL_RESOURCES = pipeline.rule_resources(CFG, "eval")


wildcard_constraints:
    run=pipeline.run_id_regex(),


onstart:
    pipeline.write_resolved_config(CFG)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    table2,
    grid,
    figures,


rule all:
    input:
        report_file("index"),


rule table2:
    input:
        report_file("table2"),


rule grid:
    input:
        report_file("grid"),


rule figures:
    input:
        report_file("figures"),
