"""What the embedded default shows: stage times, base vs RL per tier, entropy ordering, kappa-hat.

Reads the artifacts of a finished grid (run it first, e.g.
``asym run-grid --config configs/claims.yaml``) and prints:

1. wall time of the base stage and of each RL run (Snakemake benchmark files), with the
   machine's core count;
2. the group-accuracy distribution at the start of RL (base_stats.parquet);
3. held-out sampled Avg@k per tier: the base model vs every method's final checkpoint,
   mean and spread (std, max - min) over seeds, and whether AsymGRPO (0.9, 0.4)'s margin
   over the base exceeds its spread over seeds;
4. entropy of REINFORCE / Pos-Only / Neg-Only per seed (mean over steps 2..T, fraction of
   steps where Pos-Only > REINFORCE > Neg-Only) and kappa-hat over the first 20 steps.

    python bench/default_bench.py --results results/claims
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics as st
from collections import defaultdict
from pathlib import Path

from asymcli import artifacts
from asymcli.algorithm.metrics import kappa_hat
from asymcli.config import parse_run_id


def wall(tsv: Path) -> float | None:
    if not tsv.exists():
        return None
    with open(tsv) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return float(rows[-1]["s"]) if rows else None


def spread(xs: list[float]) -> str:
    if not xs:
        return "-"
    m = st.mean(xs)
    if len(xs) == 1:
        return f"{m:6.2f}"
    return f"{m:6.2f} ± {st.stdev(xs):4.2f} (range {max(xs) - min(xs):4.2f}, n={len(xs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--kappa-steps", type=int, default=20)
    args = ap.parse_args()
    R = args.results
    print(f"# embedded default: {R}  (cores: {os.cpu_count()})")

    # 1. stage times
    base_s = wall(R / "benchmarks" / "base.tsv")
    train_s = {p.stem: wall(p) for p in sorted((R / "benchmarks" / "train").glob("*.tsv"))}
    print(f"base stage wall time: {base_s:.0f} s" if base_s else "base stage wall time: (no benchmark file)")
    if train_s:
        vals = [v for v in train_s.values() if v]
        print(f"RL run wall time over {len(vals)} runs: mean {st.mean(vals):.0f} s, max {max(vals):.0f} s "
              "(runs share the cores with each other under `--cores all`)")

    # 2. group accuracy at the start of RL
    bs = R / "base" / "base_stats.parquet"
    if bs.exists():
        rows = artifacts.read_parquet(bs, artifacts.BASE_STATS).to_pylist()
        total = sum(r["groups"] for r in rows)
        G = rows[0]["group_size"] if rows else 0
        none = sum(r["groups"] for r in rows if r["k_correct"] == 0) / max(1, total)
        full = sum(r["groups"] for r in rows if r["k_correct"] == G) / max(1, total)
        hist = " ".join(f"{r['k_correct']}:{r['groups']}" for r in rows)
        print(f"group accuracy at RL start (G={G}, {total} groups): mixed {1 - none - full:.2f}, "
              f"none-solved {none:.2f}, all-solved {full:.2f}; k_correct:groups {hist}")

    # 3. Avg@k per tier
    acc: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    label: dict[str, str] = {}
    for f in sorted((R / "evals").glob("*/samples.parquet")):
        rid = f.parent.name
        rows = artifacts.read_parquet(f, artifacts.SAMPLES).to_pylist()
        if not rows:
            continue
        final = max(r["step"] for r in rows)
        if rid == "base":
            key, seed = "base", 0
        else:
            m, bp, bn, seed = parse_run_id(rid)
            key = m if m != "asym" else f"asym({bp:g},{bn:g})"
        label[key] = key
        per_tier: dict[str, list[bool]] = defaultdict(list)
        for r in rows:
            if r["step"] == final:
                per_tier[r["difficulty"] or "all"].append(r["correct"])
                per_tier["ALL"].append(r["correct"])
        for tier, cs in per_tier.items():
            acc[(key, tier)][seed].append(100.0 * sum(cs) / len(cs))
    tiers = sorted({t for (_, t) in acc}, key=lambda t: (t == "ALL", t))
    keys = sorted(label, key=lambda k: (k != "base", k))
    print("\nheld-out sampled Avg@k x 100 at the final checkpoint (mean ± std over seeds):")
    print(f"{'method':<18}" + "".join(f"{t:>34}" for t in tiers))
    for k in keys:
        cells = []
        for t in tiers:
            xs = [v for vs in acc[(k, t)].values() for v in vs]
            cells.append(f"{spread(xs):>34}")
        print(f"{k:<18}" + "".join(cells))
    base_all = [v for vs in acc[("base", "ALL")].values() for v in vs]
    asym = [v for vs in acc[("asym(0.9,0.4)", "ALL")].values() for v in vs]
    if base_all and asym:
        margin = st.mean(asym) - st.mean(base_all)
        rng = max(asym) - min(asym) if len(asym) > 1 else float("nan")
        print(f"AsymGRPO (0.9, 0.4) - base (ALL tiers): {margin:+.2f} points; spread over {len(asym)} seeds "
              f"(max - min) {rng:.2f} -> margin {'>' if margin > rng else '<='} spread")

    # 4. entropy ordering and kappa-hat
    metrics = {}
    for f in sorted((R / "runs").glob("*/metrics.parquet")):
        metrics[f.parent.name] = artifacts.read_parquet(f, artifacts.METRICS).to_pylist()
    seeds = sorted({parse_run_id(r)[3] for r in metrics})
    print("\nentropy (mean over training steps 2..T) and ordering, per seed:")
    for s in seeds:
        ent = {}
        for m in ("reinforce", "pos_only", "neg_only"):
            rows = metrics.get(f"{m}_s{s}")
            if rows:
                ent[m] = {r["step"]: r["entropy"] for r in rows if r["step"] >= 2 and not math.isnan(r["entropy"])}
        if len(ent) < 3:
            continue
        steps = sorted(set(ent["reinforce"]) & set(ent["pos_only"]) & set(ent["neg_only"]))
        above = sum(ent["pos_only"][t] > ent["reinforce"][t] for t in steps) / len(steps)
        below = sum(ent["neg_only"][t] < ent["reinforce"][t] for t in steps) / len(steps)
        means = {m: st.mean(ent[m][t] for t in steps) for m in ent}
        print(f"  seed {s}: REINFORCE {means['reinforce']:.4f}  Pos-Only {means['pos_only']:.4f}  "
              f"Neg-Only {means['neg_only']:.4f};  Pos-Only > REINFORCE on {above:.0%} of steps, "
              f"Neg-Only < REINFORCE on {below:.0%}")
    print(f"\nkappa-hat over the first {args.kappa_steps} steps (x 1e3), mean ± std over seeds:")
    by_method: dict[str, list[float]] = defaultdict(list)
    for rid, rows in metrics.items():
        m, bp, bn, _ = parse_run_id(rid)
        key = m if m != "asym" else f"asym({bp:g},{bn:g})"
        ks = [r["kappa"] for r in sorted(rows, key=lambda r: r["step"]) if r["step"] >= 1]
        kh = kappa_hat(ks, args.kappa_steps)
        if not math.isnan(kh):
            by_method[key].append(1e3 * kh)
    for key in sorted(by_method):
        print(f"  {key:<18} {spread(by_method[key])}")


if __name__ == "__main__":
    main()
