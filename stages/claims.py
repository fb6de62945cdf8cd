"""Stage `claims`: finished runs (metrics.parquet, samples.parquet) -> report/claims.{md,json}.

The paper's claims checked on the runs of ``results_dir`` (``asymcli.analysis.claims``). Both files
are written atomically; claims.json is for machines. (The report index's "Claims" section,
``asymcli.analysis.claims.report_section``, recomputes and rewrites both.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asymcli.analysis.claims import check_replications, check_results, write_files
from asymcli.config import Config
from asymcli.pipeline.layout import Layout


def default_paths(cfg: Config) -> dict[str, Path]:
    layout = Layout.of(cfg)
    return {"md": layout.claims_md, "json": layout.claims_json}


def run(cfg: Config, runs: Sequence[str] | None = None,
        config_path: str | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Check the claims on ``runs`` (default: every finished run of the config); write
    claims.md and claims.json. Returns (the claims payload, the paths written)."""
    result = check_results(cfg, runs, config_path=config_path)
    return result, write_files(result, default_paths(cfg)["md"].parent)


def run_replications(cfg: Config, replications: Sequence[str],
                     config_path: str | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Check the claims on each independent replication (a results folder, run folders, or a
    claims.json), report each and their fixed-effect pooled estimate; write claims-pooled.md
    and claims-pooled.json beside claims.md. Returns (the pooled payload, the paths written)."""
    result = check_replications(cfg, replications, config_path=config_path)
    return result, write_files(result, default_paths(cfg)["md"].parent, stem="claims-pooled")
