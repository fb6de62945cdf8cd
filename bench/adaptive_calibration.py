"""Claim 7's settings from its calibration seeds (configs/adaptive/calibration.yaml; issue 28).

Reads a finished calibration results folder and prints, as markdown and (``--json``) JSON:

1. **The band.** Per fixed-beta run, r = (mean entropy over the second half of training) /
   (entropy of its first step's rollouts, which the base sampled): the schedule's relative
   target is in that unit. Per group the mean of r over the calibration seeds; the band is
   [min, max] over the groups. The two targets are fixed by rule, written here before any
   calibration run finished: the band's 75% point (upper part) and 25% point (lower part),
   rounded to 0.01. The controller then has to move the gap up for one and down for the other
   (when kappa_B > 0: gap > 0 raises entropy).
2. **The best fixed pair per target:** the pair of the 3x3 grid (0.1/0.5/0.9) with the lowest
   mean tracking error |H - r_target x H_1| over the second half, in nats/token, averaged
   over the calibration seeds (claim 7's metric, with the target the schedule's run of that
   seed would set from its own first step).
3. **The seeds claim 7 needs:** the sd of paired accuracy differences (Avg@k x 100) between
   the calibration groups, pooled over all pairs of groups (1 degree of freedom per pair of
   groups at 2 seeds), and the n whose MDE (one-sided paired t, 80% power) is <= 1.5 points
   at that sd (claims.stats.seeds_for). Printed beside it: the sds measured on the mechanism
   testbed's committed claims (docs/results/mechanism-bundled), the larger of the two is used.

4. **The gain** (``--gains DIR...``, the results of configs/adaptive/gain-*.yaml): per gain,
   the schedule runs' tracking error |H - H*| against their own target (nats/token, second
   half), averaged over both targets and both seeds, and their saturated steps; the rule
   picks the lowest mean error.

    python bench/adaptive_calibration.py results/adaptive-calibration [--json out.json]
    python bench/adaptive_calibration.py --gains results/adaptive-gain-0.05 results/adaptive-gain-0.15 ...
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asymcli.analysis.claims import stats  # noqa: E402
from asymcli.analysis.claims.data import by_group, group_label, load_runs, locate  # noqa: E402
from asymcli.analysis.claims.schedule import saturation, target_of, tracking_error  # noqa: E402

GRID = (0.1, 0.5, 0.9)
TARGET_MDE = 1.5  # points of accuracy (issue 28)
MECHANISM_CLAIMS = ROOT / "docs" / "results" / "mechanism-bundled" / "claims.json"


def second_half(run) -> list[dict]:
    last = run.rows[-1]["step"]
    return [r for r in run.rows if r["step"] > last / 2 and math.isfinite(r["entropy"])]


def first_entropy(run) -> float:
    return next(r["entropy"] for r in run.rows if math.isfinite(r["entropy"]))


def relative_entropy(run) -> float:
    return statistics.fmean(r["entropy"] for r in second_half(run)) / first_entropy(run)


def tracking(run, rel_target: float) -> float:
    """Claim 7's tracking error against the target the schedule would set from this run's first step."""
    return tracking_error(run, rel_target * first_entropy(run), run.rows[-1]["step"])


def accuracy(run) -> float | None:
    return 100.0 * statistics.fmean(run.scores.values()) if run.scores else None


def mechanism_sds() -> list[float]:
    if not MECHANISM_CLAIMS.exists():
        return []
    d = json.loads(MECHANISM_CLAIMS.read_text())
    return [ch["std"] for c in d["claims"] for ch in c["checks"] if ch.get("unit") == "points" and ch.get("std")]


def calibrate(results: Path) -> dict:
    runs = load_runs(locate(results))
    groups = {g: seeds for g, seeds in by_group(runs).items() if g[0] != "asym_adaptive"}
    if not groups:
        raise SystemExit(f"{results}: no finished fixed-beta runs")
    rel = {g: statistics.fmean(relative_entropy(r) for r in seeds.values()) for g, seeds in groups.items()}
    lo, hi = min(rel.values()), max(rel.values())
    targets = {"upper": round(lo + 0.75 * (hi - lo), 2), "lower": round(lo + 0.25 * (hi - lo), 2)}
    grid = [g for g in groups if g[0] == "asym" and g[1] in GRID and g[2] in GRID]
    best = {}
    track = {}
    for name, t in targets.items():
        track[name] = {g: statistics.fmean(tracking(r, t) for r in groups[g].values()) for g in grid}
        best[name] = min(grid, key=lambda g: track[name][g])
    # pooled sd of paired accuracy differences over every pair of groups
    acc = {g: {s: accuracy(r) for s, r in seeds.items()} for g, seeds in groups.items()}
    ss, df = 0.0, 0
    for a, b in itertools.combinations(sorted(acc, key=str), 2):
        d = [acc[a][s] - acc[b][s] for s in acc[a] if s in acc[b] and acc[a][s] is not None and acc[b][s] is not None]
        if len(d) >= 2:
            m = statistics.fmean(d)
            ss += sum((x - m) ** 2 for x in d)
            df += len(d) - 1
    sd_cal = math.sqrt(ss / df) if df else None
    mech = mechanism_sds()
    sd_mech = math.sqrt(statistics.fmean(x * x for x in mech)) if mech else None
    sd = max(x for x in (sd_cal, sd_mech) if x is not None)
    n = stats.seeds_for(sd, TARGET_MDE)
    return {
        "results": str(results),
        "seeds": sorted({s for seeds in groups.values() for s in seeds}),
        "relative_entropy": {group_label(g): rel[g] for g in sorted(rel, key=lambda g: rel[g])},
        "band": [lo, hi],
        "targets": targets,
        "tracking_nats": {name: {group_label(g): v for g, v in sorted(tr.items(), key=lambda kv: kv[1])}
                          for name, tr in track.items()},
        "best_pair": {name: [g[1], g[2]] for name, g in best.items()},
        "accuracy_sd": {"calibration_pooled": sd_cal, "calibration_df": df, "mechanism_rms": sd_mech,
                        "mechanism_sds": mech, "used": sd},
        "seeds_for_mde": {"target_mde": TARGET_MDE, "n": n, "mde_at_n": stats.mde(sd, n)},
    }


def markdown(c: dict) -> str:
    out = [f"Calibration seeds {c['seeds']} ({c['results']})", "",
           "| group | second-half H / first-step H |", "|---|---:|"]
    out += [f"| {g} | {v:.3f} |" for g, v in c["relative_entropy"].items()]
    lo, hi = c["band"]
    out += ["", f"band [{lo:.3f}, {hi:.3f}]; targets: upper (75% point) {c['targets']['upper']}, "
                f"lower (25% point) {c['targets']['lower']}", ""]
    for name in ("upper", "lower"):
        bp, bn = c["best_pair"][name]
        out.append(f"best grid pair for the {name} target: ({bp:g}, {bn:g}); tracking error (nats/token): "
                   + ", ".join(f"{g} {v:.4f}" for g, v in list(c["tracking_nats"][name].items())[:4]))
    a = c["accuracy_sd"]
    out += ["", f"sd of paired accuracy differences: calibration pooled {a['calibration_pooled']:.2f} "
                f"(df {a['calibration_df']}), mechanism testbed rms {a['mechanism_rms']:.2f}; used {a['used']:.2f}",
            f"seeds for MDE <= {c['seeds_for_mde']['target_mde']} points: n = {c['seeds_for_mde']['n']} "
            f"(MDE {c['seeds_for_mde']['mde_at_n']:.2f})"]
    return "\n".join(out)


def gains(dirs: list[Path]) -> dict:
    """Per results folder (one gain each): the schedule runs' own tracking error and saturation."""
    from asymcli.config import load_config

    out = {}
    for d in dirs:
        gain = load_config(d / "config.resolved.yaml").train.schedule.gain
        runs = [r for r in load_runs(locate(d)).values() if r.method == "asym_adaptive"]
        per = {r.run_id: {"tracking_nats": tracking_error(r, target_of(r), r.rows[-1]["step"]),
                          "saturated_steps": saturation(r)[0], "first_saturated": saturation(r)[1],
                          "mean_gap_second_half": statistics.fmean(x["beta_pos"] - x["beta_neg"] for x in second_half(r))}
               for r in runs}
        out[str(gain)] = {"results": str(d), "runs": per,
                          "mean_tracking_nats": statistics.fmean(v["tracking_nats"] for v in per.values())}
    best = min(out, key=lambda g: out[g]["mean_tracking_nats"])
    return {"gains": out, "chosen": float(best)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, nargs="?")
    ap.add_argument("--gains", type=Path, nargs="+", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.gains:
        g = gains(args.gains)
        for gain, v in g["gains"].items():
            print(f"gain {gain}: mean tracking error {v['mean_tracking_nats']:.5f} nats/token")
            for rid, r in sorted(v["runs"].items()):
                print(f"  {rid}: {r['tracking_nats']:.5f}, saturated steps {r['saturated_steps']} "
                      f"(first {r['first_saturated']}), mean gap (second half) {r['mean_gap_second_half']:+.2f}")
        print(f"chosen gain: {g['chosen']}")
        if args.json:
            args.json.write_text(json.dumps(g, indent=2) + "\n")
        return
    c = calibrate(args.results)
    print(markdown(c))
    if args.json:
        args.json.write_text(json.dumps(c, indent=2) + "\n")


if __name__ == "__main__":
    main()
