"""Re-test a claims.json written under an older rule with today's paired test.

The per-seed values in claims.json are the data; only the statistic changes. Used to
re-judge the first wave's paper-cpu verdicts (one-SE rule) with the one-sided paired
t-test of asymcli.analysis.claims.stats:

    python bench/retest_claims.py docs/results/paper-cpu/claims.json > docs/results/paper-cpu/claims-retested.md
"""

from __future__ import annotations

import json
import sys

from asymcli.analysis.claims import paired_test


def main(path: str) -> None:
    p = json.load(open(path, encoding="utf-8"))
    print(f"Re-tested `{path}` (per-seed values unchanged; one-sided paired t-test, 95% t interval, "
          "exact sign-flip p):\n")
    print("| # | check | n | mean | 95% CI | p (t) | p (sign-flip) | verdict now | verdict then |")
    print("|---|---|---:|---:|---|---:|---:|---|---|")
    for c in p["claims"]:
        for k in c["checks"]:
            if not k["claimed"].startswith(("> 0", "< 0")):
                print(f"| {c['id']} | {k['label']} | – | – | – | – | – | not a paired difference | {k['verdict']} |")
                continue
            r = paired_test(k["per_seed"].values(), -1 if k["claimed"].startswith("< 0") else +1)
            ci = "–" if r.ci_low is None else f"[{r.ci_low:+.3g}, {r.ci_high:+.3g}]"
            p_t = "–" if r.p is None else f"{r.p:.3g}"
            print(f"| {c['id']} | {k['label']} | {r.n} | {r.mean:+.3g} | {ci} | {p_t} | {r.p_signflip:.3g} | "
                  f"{r.verdict} | {k['verdict']} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/results/paper-cpu/claims.json")
