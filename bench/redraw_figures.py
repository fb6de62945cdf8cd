"""Redraw the headline and mechanism figures from what docs/results/ commits (issue 30, item 4).

The runs' aggregated curves (results/*/agg/curves.parquet) are not committed, so the training
curves of Figures 2-4 cannot be redrawn from docs/results/; what is committed is every check's
per-seed paired differences (claims*.json) and the grid's levels (grid.md). From them:

- headline: the two independent n = 24 replications pooled (`asym claims --replication`),
  figures/fig_claims_pooled.png (checks 5a.1, 5a.2, 5c.1, 5c.2; each replication and pooled);
- mechanism: figures/fig_claims.png (every tested check, n = 5), figures/fig4d_grid.png (colour =
  the paired difference to GRPO from claims.json's 5a.1 and 5b.1, Holm over the two cells; levels
  from grid.md), figures/fig1_advantages.png (analytic).

    python bench/redraw_figures.py            # from the repository root; prints the wall time
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asymcli.analysis import aggregate as agg  # noqa: E402
from asymcli.analysis import figures  # noqa: E402
from asymcli.analysis.claims import pool  # noqa: E402
from asymcli.analysis.claims.render import to_json, to_markdown  # noqa: E402
from asymcli.config import load_config  # noqa: E402

RES = ROOT / "docs" / "results"


def headline() -> list[Path]:
    d = RES / "headline"
    reps = [("first run, n = 24", json.loads((d / "claims-n24.json").read_text())),
            ("rerun 2026-12-03, n = 24", json.loads((d / "rerun-2026-12-03" / "claims.json").read_text()))]
    primary = load_config(ROOT / "configs" / "headline.yaml").report.primary_endpoint
    p = pool(reps, primary_endpoint=primary)
    (d / "claims-pooled.md").write_text(to_markdown(p), encoding="utf-8")
    (d / "claims-pooled.json").write_text(to_json(p), encoding="utf-8")
    png = figures.claims_figure(p, d / "figures" / "fig_claims_pooled.png", ids=["5a.1", "5a.2", "5c.1", "5c.2"],
                                title="Headline: AsymGRPO (0.9, 0.4) against GRPO and REINFORCE, two independent "
                                      "replications (docs/results/headline)")
    return [d / "claims-pooled.md", d / "claims-pooled.json", png]


def _grid_md(path: Path) -> pa.Table:
    """GRID rows from a committed grid.md ("**69.28 ± 1.90**" cells; n from the claims)."""
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    bns = [float(x) for x in lines[0].strip("|").split("|")[1:]]
    rows = []
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        bp = float(cells[0])
        for bn, c in zip(bns, cells[1:]):
            m = re.search(r"([\d.]+) ± ([\d.]+)", c)
            if m:
                rows.append({"beta_pos": bp, "beta_neg": bn, "mean": float(m[1]), "std": float(m[2]),
                             "n_seeds": None, "step_min": 60, "step_max": 60})
    return pa.Table.from_pylist(rows, schema=agg.GRID)


def mechanism() -> list[Path]:
    d = RES / "mechanism"
    p = json.loads((d / "claims.json").read_text())
    checks = {f"{c['id']}.{i}": k for c in p["claims"] for i, k in enumerate(c["checks"], 1)}
    for cid, k in checks.items():  # claims.json from before check ids
        k.setdefault("id", cid)
    out = [figures.claims_figure(p, d / "figures" / "fig_claims.png",
                                 title="Mechanism testbed (docs/results/mechanism, n = 5 seeds per method)")]
    # Fig. 4d: each cell's per-seed difference to GRPO, as claims 5a.1 / 5b.1 tested it
    diffs = {(0.9, 0.4): checks["5a.1"]["per_seed"], (0.7, 0.7): checks["5b.1"]["per_seed"]}
    assert checks["5a.1"]["label"].startswith("AsymGRPO (0.9, 0.4) − GRPO")
    assert checks["5b.1"]["label"].startswith("AsymGRPO (0.7, 0.7) − GRPO")
    grid = _grid_md(d / "grid.md")
    grid = grid.set_column(grid.schema.get_field_index("n_seeds"), "n_seeds",
                           pa.array([len(diffs[(r["beta_pos"], r["beta_neg"])]) for r in grid.to_pylist()],
                                    pa.int64()))
    fig = figures.grid_figure(grid, diffs=diffs, ref=figures.GRPO)
    out.append(figures._save(fig, d / "figures" / "fig4d_grid.png"))
    out.append(figures.fig1_advantages(d / "figures" / "fig1_advantages.png", group_size=8))
    return out


def main() -> None:
    t0 = time.perf_counter()
    written = headline() + mechanism()
    for path in written:
        print(path.relative_to(ROOT))
    print(f"wall {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
