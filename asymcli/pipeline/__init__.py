"""The Snakemake pipeline seen from Python: results layout, run lists, `run-grid`, `status`.

Why it exists: the Snakefile, ``asym run-grid`` and ``asym status`` must agree on which
runs a config asks for, where each artifact lives and what each rule's rerun fingerprint
is. They all read it from here, so a CLI run and a ``snakemake`` run share artifacts.

How configs reach the stages. Snakemake merges the config file(s) and ``--config``
overrides; the Snakefile validates the result and, when the workflow starts (``onstart``,
never on dry runs), writes it fully resolved to ``{results_dir}/config.resolved.yaml``
(only when its text changed). Every rule passes that file to ``asym <stage> --config``.
It is *not* a rule input, so editing one beta pair in the grid does not make every rule
stale; instead each rule carries a params fingerprint of exactly the config slice its
output depends on (:func:`fingerprint`), and Snakemake's default ``params`` rerun trigger
reruns exactly the jobs whose slice changed: new pairs train, old ones are kept.

The library never imports snakemake: ``run-grid`` runs it as a subprocess.

The package, by job:

- :mod:`.layout`: ``Layout``, the one place artifact paths are built; the repository's files;
- :mod:`.runs`: the runs of a config, their ids, ``asym train`` arguments and rerun fingerprints;
- :mod:`.schema`: the resolved config and the JSON schema Snakemake validates against;
- :mod:`.status`: ``asym status``;
- :mod:`.grid`: ``asym run-grid`` (Snakemake as a subprocess, locks, damaged artifacts);
- :mod:`.live`, :mod:`.supervise`: run-grid's live view and the job supervisor.
"""

from __future__ import annotations

from .grid import (RUN_GRID_LOCK, TARGET_AGG, TARGET_PARTS, TARGETS, check_cores, check_target,
                   config_source, default_target, find_damage, GridPlan, load_workflow_config, plan_grid,
                   rebuild_targets, release_stale_lock, results_lock, rule_resources, run_grid,
                   set_aside_damage, snakemake_command, snakemake_processes, summary_lines)
from .layout import (AGG_PARTS, BASE_RUN, DEFAULT_CONFIG, REPO_ROOT, REPORT_PARTS, RESOLVED_CONFIG,
                     SNAKEFILE, Layout, model_path)
from .runs import (all_runs, base_run_id, base_run_ids, eval_bundles, fingerprint, grid_overrides,
                   grid_pair_runs, ids, parse_grid, parse_methods, parse_pair, parse_seeds, Run,
                   run_id_regex, run_seed, table_runs, train_args, train_bundles)
from .schema import (CONFIG_DOCS, SCHEMA_FILE, config_docs_text, resolved_config_text, schema_text,
                     workflow_config, write_resolved_config, write_schema)
from .status import (agg_names, collect_status, complete_checkpoints, disk_usage, human_bytes, render_status,
                     RunStatus, Status)

__all__ = [
    "AGG_PARTS", "BASE_RUN", "CONFIG_DOCS", "DEFAULT_CONFIG", "GridPlan", "Layout", "REPORT_PARTS", "REPO_ROOT",
    "RESOLVED_CONFIG", "RUN_GRID_LOCK", "Run", "RunStatus", "SCHEMA_FILE", "SNAKEFILE", "Status", "TARGETS",
    "TARGET_AGG", "TARGET_PARTS", "agg_names", "all_runs", "base_run_id", "base_run_ids", "check_cores",
    "check_target", "collect_status", "complete_checkpoints", "config_docs_text", "config_source", "default_target", "disk_usage",
    "eval_bundles", "find_damage", "fingerprint", "grid_overrides", "grid_pair_runs", "human_bytes", "ids",
    "load_workflow_config", "model_path", "parse_grid", "parse_methods", "parse_pair", "parse_seeds",
    "plan_grid", "rebuild_targets", "release_stale_lock", "render_status", "resolved_config_text",
    "results_lock", "rule_resources", "run_grid", "run_id_regex", "run_seed", "schema_text",
    "set_aside_damage", "snakemake_command", "snakemake_processes", "summary_lines", "table_runs",
    "train_args", "train_bundles", "workflow_config", "write_resolved_config", "write_schema",
]
