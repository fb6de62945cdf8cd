"""Claim 7's figures from its results folders (issue 28; docs/results/adaptive/).

- ``fig_claim7.png``: every claim-7 check's per-seed paired differences with the 95% and 90%
  CIs, from the claims.json that `asym claims --format json` wrote (what the tests rest on);
- ``fig_schedule.png``: the schedule's betas per step for both targets, with the steps where
  most seeds sat at the bounds, and entropy (nats/token) of every schedule and reference with
  the targets (asymcli.analysis.figures.fig_schedule), from the runs' metrics.parquet.

    python bench/claim7_figures.py CLAIMS_JSON OUT_DIR RESULTS_DIR [RESULTS_DIR ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asymcli.analysis import aggregate as agg  # noqa: E402
from asymcli.analysis import figures  # noqa: E402
from asymcli.analysis.claims.data import locate  # noqa: E402


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    t0 = time.perf_counter()
    claims, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    payload = json.loads(claims.read_text())
    ids = [k["id"] for c in payload["claims"] if c["id"] == "7" for k in c["checks"]]
    machines = "; ".join(payload.get("platforms") or {}) or "platform not recorded"
    title = f"Claim 7 ({claims}); runs made on: {machines}"
    print(figures.claims_figure(payload, out / "fig_claim7.png", ids=ids, title=title))
    metrics: dict[str, Path] = {}
    for d in sys.argv[3:]:
        metrics.update(locate(Path(d)).metrics)
    print(figures.fig_schedule(agg.curves(metrics), out / "fig_schedule.png"))
    print(f"wall {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
