"""The regime search's table (issue 22, part 3): is there a setting where the channels' entropy
effects are large? Backs docs/results/regime/README.md.

    python bench/regime_table.py --config configs/mechanism.yaml \
        --config configs/regime/g16.yaml [--wall g16=1234 ...]

Per config (each run's results under its results_dir):
- the target statistic, per seed: the last training step's entropy gap Pos-Only - Neg-Only
  divided by REINFORCE's entropy at that step (same seed); then the mean over seeds with a 95% t
  CI and a one-sided paired t-test of "> 0" (asymcli.analysis.claims.stats.paired_test), and the
  same ratio from the mean over steps (after step 1, whose rollouts come from the shared start);
- health: training reward, mean of the first 10 steps -> the last 10, for REINFORCE, GRPO and
  AsymGRPO (0.9, 0.4); their Avg@k against the base's (the config's eval benchmarks, final
  checkpoint).
Target (the issue's): last-step ratio >= 20%, reward rising, all three above the base.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from asymcli.analysis.claims.data import by_group, final_scores, group_of, load_runs, locate
from asymcli.analysis.claims.stats import finite, paired_test
from asymcli.config import load_config
from asymcli.pipeline.layout import Layout

TARGET = 0.20
HEALTH = [("reinforce", group_of("reinforce")), ("grpo", group_of("grpo")),
          ("asym(0.9, 0.4)", group_of("asym", 0.9, 0.4))]


def _mean(xs: list[float]) -> float:
    xs = finite(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def _avg(scores: dict[str, float]) -> float:
    return 100 * _mean(list(scores.values())) if scores else float("nan")


def row(config: str) -> dict:
    cfg = load_config(config)
    lay = Layout.of(cfg)
    runs = load_runs(locate(lay.root))
    groups = by_group(runs)
    pos, neg, rei = (groups.get(group_of(m), {}) for m in ("pos_only", "neg_only", "reinforce"))
    seeds = sorted(set(pos) & set(neg) & set(rei))
    last, over = [], []
    for s in seeds:
        hp, hn, hr = ([r["entropy"] for r in g[s].rows] for g in (pos, neg, rei))
        last.append((hp[-1] - hn[-1]) / hr[-1])
        over.append((_mean(hp) - _mean(hn)) / _mean(hr))
    t_last, t_over = paired_test(last, +1), paired_test(over, +1)
    base = final_scores({"base": lay.samples("base")}) if lay.samples("base").exists() else {}
    base_acc = _avg(base["base"][1]) if "base" in base else float("nan")
    health = {}
    for name, g in HEALTH:
        rs = list(groups.get(g, {}).values())
        if not rs:
            health[name] = (math.nan, math.nan, math.nan, 0)
            continue
        r_first = _mean([_mean([r["reward_mean"] for r in x.rows[:10]]) for x in rs])
        r_last = _mean([_mean([r["reward_mean"] for r in x.rows[-10:]]) for x in rs])
        acc = _mean([_avg(x.scores) for x in rs])
        health[name] = (r_first, r_last, acc, len(rs))
    h_rei = _mean([rei[s].rows[-1]["entropy"] for s in seeds]) if seeds else float("nan")
    met = (t_last.mean is not None and t_last.mean >= TARGET
           and all(v[3] > 0 and v[1] > v[0] and v[2] > base_acc for v in health.values()))
    return {"config": config, "seeds": seeds, "h_rei": h_rei, "last": t_last, "over": t_over,
            "base": base_acc, "health": health, "met": met}


def _pct(t) -> str:
    if t.mean is None:
        return "–"
    ci = "" if t.ci_low is None else f" [{100 * t.ci_low:+.1f}, {100 * t.ci_high:+.1f}]"
    p = "" if t.p is None else f", p = {t.p:.2g}"
    return f"{100 * t.mean:+.1f}%{ci}{p}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", action="append", required=True,
                    help="a config YAML, or LABEL=YAML to name its row (e.g. configs/regime/g16.yaml=/tmp/g16-live.yaml)")
    ap.add_argument("--wall", action="append", default=[], help="NAME=SECONDS, the run-grid wall time of a config")
    a = ap.parse_args()
    walls = dict(w.split("=", 1) for w in a.wall)
    print("| config | seeds | REINFORCE entropy, last step | (Pos-Only − Neg-Only) / REINFORCE, last step [95% CI], p "
          "| same, mean over steps | reward first 10 → last 10 (REINFORCE / GRPO / AsymGRPO) "
          "| Avg@k: base → REINFORCE / GRPO / AsymGRPO | target met | run-grid wall |")
    print("|---|---|---:|---|---|---|---|---|---:|")
    for arg in a.config:
        label, _, c = arg.rpartition("=")
        label = label or c
        r = row(c)
        h = r["health"]
        rew = " / ".join(f"{v[0]:.3f} → {v[1]:.3f}" for v in h.values())
        acc = " / ".join(f"{v[2]:.2f}" for v in h.values())
        name = Path(label).stem
        wall = walls.get(name, "")
        if wall:
            wall = f"{int(wall) // 60} min {int(wall) % 60:02d} s"
        seeds = ",".join(map(str, r["seeds"]))
        print(f"| `{label}` | {seeds} (n = {len(r['seeds'])}) | {r['h_rei']:.4f} | {_pct(r['last'])} | {_pct(r['over'])} "
              f"| {rew} | {r['base']:.2f} → {acc} | {'yes' if r['met'] else 'no'} | {wall} |")


if __name__ == "__main__":
    main()
