"""The headline experiment's noise, measured: where the variance of a paired accuracy
difference comes from, what pairing by seed (common random numbers) and a larger k buy, and
the minimum detectable effect at the n the experiment has. Backs docs/results/headline/.

    python bench/headline_power.py --config configs/headline.yaml > docs/results/headline/power.md

Reads every run's ``evals/{run}/samples.parquet`` (Avg@k at the final checkpoint, and the
per-problem outcomes for the evaluation-sampling variance) under the config's results_dir.
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from asymcli.analysis.claims import stats
from asymcli.analysis.claims.variance import crn_gain, decompose, eval_var
from asymcli.config import base_of, load_config, parse_run_id

COMPARISONS = [(("asym", 0.9, 0.4), ("grpo", None, None)), (("asym", 0.9, 0.4), ("reinforce", None, None)),
               (("grpo", None, None), ("reinforce", None, None))]
LABEL = {"asym": "AsymGRPO (0.9, 0.4)", "grpo": "GRPO", "reinforce": "REINFORCE"}


def run_scores(results: Path) -> dict[tuple, dict[int, tuple[float, float]]]:
    """{(method, bp, bn): {seed: (Avg@k x 100, eval-sampling variance x 100^2)}} at each run's
    last evaluated step."""
    out: dict[tuple, dict[int, tuple[float, float]]] = defaultdict(dict)
    for f in sorted((results / "evals").glob("*/samples.parquet")):
        rid = f.parent.name
        if rid.startswith("base"):
            continue
        m, bp, bn, seed = parse_run_id(rid)
        t = pq.read_table(f, columns=["step", "problem_id", "sample_idx", "correct"])
        t = t.filter(pc.equal(t["step"], pc.max(t["step"])))
        by_problem: dict[str, list[bool]] = defaultdict(list)
        for pid, c in zip(t["problem_id"].to_pylist(), t["correct"].to_pylist()):
            by_problem[pid].append(bool(c))
        k = min(len(v) for v in by_problem.values())
        mat = np.array([v[:k] for v in by_problem.values()], dtype=float)
        out[(m, bp, bn)][seed] = (100 * mat.mean(), 1e4 * eval_var(mat))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    args = ap.parse_args()
    cfg = load_config(args.config)
    results = Path(cfg.results_dir)
    scores = run_scores(results)
    k = cfg.eval.benchmarks[0].k
    print(f"# Headline noise: {cfg.name} ({results})\n")
    print(f"Avg@{k} x 100 at the final checkpoint; bases {cfg.grid.bases or [cfg.base.seed]}; "
          f"seed s trains from base bases[s % {len(cfg.grid.bases) or 1}].\n")
    print("| comparison | n | mean | sd | eval-sampling var (share) | base var | seed var | MDE (80%) | "
          f"sd at k=2k | seeds for MDE 1.0 | matched sd | unpaired sd |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for a, b in COMPARISONS:
        sa, sb = scores.get(a, {}), scores.get(b, {})
        seeds = sorted(set(sa) & set(sb))
        if len(seeds) < 3:
            print(f"| {LABEL[a[0]]} − {LABEL[b[0]]} | {len(seeds)} | (fewer than 3 pairs) |")
            continue
        diffs = [sa[s][0] - sb[s][0] for s in seeds]
        evs = [sa[s][1] + sb[s][1] for s in seeds]
        bases = [base_of(cfg, s) or 0 for s in seeds]
        d = decompose(diffs, evs, bases)
        n = len(seeds)
        mde = stats.mde(d.sd, n)
        need = stats.seeds_for(d.sd, 1.0)
        matched, unpaired, _ = crn_gain({s: sa[s][0] for s in seeds}, {s: sb[s][0] for s in seeds},
                                        {s: b_ for s, b_ in zip(seeds, bases)})
        print(f"| {LABEL[a[0]]} − {LABEL[b[0]]} | {n} | {d.mean:+.2f} | {d.sd:.2f} | {d.eval:.3f} "
              f"({d.share('eval'):.0%}) | {d.base:.3f} | {d.seed:.3f} | {mde:.2f} | {d.sd_with_k(k, 2 * k):.2f} | "
              f"{need} | {matched:.2f} | {unpaired:.2f} |")
    print("\nColumns: var = variance of the paired difference, points^2. eval-sampling: the two Avg@k "
          "evaluations' own sampling noise, unbiased from the per-problem outcomes "
          "(asymcli.analysis.claims.variance.eval_var). base / seed: one-way random-effects ANOVA over bases "
          "(between / within less eval). MDE: the one-sided paired t-test's minimum detectable effect at 80% "
          "power and alpha 0.05 for this n and sd (asymcli.analysis.claims.stats.mde). sd at k=2k: the sd had each "
          "evaluation drawn twice the samples. matched sd: the paired differences (same base, seed, prompt "
          "order and sampling streams: common random numbers); unpaired sd: differences of runs with "
          "different seeds on the same base, what an unpaired design would have.")
    print("\nPer base (mean paired difference, n):")
    for a, b in COMPARISONS:
        sa, sb = scores.get(a, {}), scores.get(b, {})
        by = defaultdict(list)
        for s_ in sorted(set(sa) & set(sb)):
            by[base_of(cfg, s_)].append(sa[s_][0] - sb[s_][0])
        print(f"- {LABEL[a[0]]} − {LABEL[b[0]]}: " + ", ".join(
            f"b{k} {np.mean(v):+.2f} (n={len(v)})" for k, v in sorted(by.items(), key=lambda kv: kv[0] or 0)))
    per_base = defaultdict(list)
    for s, (acc, _) in scores.get(("grpo", None, None), {}).items():
        per_base[base_of(cfg, s)].append(acc)
    if per_base:
        print("\nGRPO's Avg@k per base (mean over its seeds): "
              + ", ".join(f"b{b} {np.mean(v):.2f} (n={len(v)})" for b, v in sorted(per_base.items(), key=lambda kv: kv[0] or 0)))
    base_scores = []
    for f in sorted((results / "evals").glob("base*/samples.parquet")):
        t = pq.read_table(f, columns=["correct"])
        base_scores.append(f"{f.parent.name} {100 * np.mean(t['correct'].to_numpy(zero_copy_only=False)):.2f}")
    if base_scores:
        print("Base models' Avg@k: " + ", ".join(base_scores))
    _ = math  # noqa: F841 (kept for interactive use)


if __name__ == "__main__":
    main()
