"""Stage `report`: agg/*.parquet -> {results}/report/ (tables, figures, index.md).

Parts (pipeline.REPORT_PARTS): ``table2``, ``grid``, ``figures``, ``index``. With
``aggregate=True`` (a plain ``asym report``) the needed aggregate parts are rebuilt first
from every run found under results_dir; Snakemake runs aggregate as its own rules and
passes ``aggregate=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asymcli.analysis import report as rep
from asymcli.config import Config
from asymcli.pipeline import REPORT_PARTS, Layout
from stages import aggregate as agg_stage

#: Which aggregate part each report part reads.
NEEDS = {"table2": "table2", "grid": "grid", "figures": "curves"}


def run(cfg: Config, parts: Sequence[str] | None = None, *, aggregate: bool = True,
        console: Any = None) -> list[Path]:
    layout = Layout.of(cfg)
    todo = agg_stage.check_parts(parts, list(REPORT_PARTS))
    if aggregate:
        agg_stage.run(cfg, [NEEDS[p] for p in todo if p in NEEDS])
    out: list[Path] = []
    for part in todo:
        if part == "index":
            continue
        out += rep.WRITERS[part](cfg, layout)
    if "index" in todo:  # last: it links what the other parts wrote
        out += rep.write_index(cfg, layout)
    if console is not None:
        if not rep.print_tables(cfg, console, layout):
            console.print(f"no evaluated runs under {layout.root} yet (see `asym status`)")
        else:
            console.print(f"wrote {len(out)} file(s) under {layout.report_dir}")
    return out
