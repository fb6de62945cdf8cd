"""Does `asym scan` rank beta pairs the way whole training runs do? Backs
docs/results/scan/validation.md (and docs/scan.md's validation section).

    python bench/scan_validation.py --config configs/mechanism.yaml \
        --scan results/mechanism/scan/scan.json [--scan-late results/mechanism/scan-step30/scan.json] \
        > docs/results/scan/validation.md

Measured effect of a pair or method: per seed, the mean over training steps (after the first,
whose rollouts come from the shared start) of its entropy minus REINFORCE's of the same seed;
then the mean over the seeds it has (every run under the config's results_dir/runs).
Predictions: the scan's ``prop1``, ``first_order`` and ``lookahead`` columns. Spearman's rho
between the two over the pairs both have, with a permutation p and a Fisher-z CI
(asymcli.analysis.scan.spearman). ``--scan-late``: a second scan, from a checkpoint later in
training, compared with the measured gap over the steps after that checkpoint.

``--prereg PREREG.json``: the referee-grade design of docs/results/scan-validation/ instead
(pairs on disjoint seeds, no shared reference run, one primary predictor declared before the
runs, rho with a seed-bootstrap CI); everything it analyses is read from the preregistration:

    python bench/scan_validation.py --config configs/scan-validation.yaml \
        --prereg docs/results/scan-validation/preregistration.json \
        --scan results/scan-validation/scan/step10/scan.json --step 10 \
        --json docs/results/scan-validation/validation.json > docs/results/scan-validation/validation.md
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pyarrow.parquet as pq

from asymcli.analysis.scan import measured_gaps, seed_bootstrap_spearman, spearman
from asymcli.config import load_config, parse_run_id

PREDICTIONS = [("prop1", "Prop. 1: lr·κ_B·(β₊−β₋)"), ("first_order", "App. B first order"),
               ("lookahead", "one-step lookahead")]


def label_of(rid: str) -> str:
    method, bp, bn, _ = parse_run_id(rid)
    return f"asym({bp:g}, {bn:g})" if method == "asym" else method


def entropy_curves(runs_dir: Path, first_step: int) -> dict[str, dict[int, list[float]]]:
    """label -> seed -> entropy per step for steps > first_step (step-ordered)."""
    out: dict[str, dict[int, list[float]]] = {}
    for f in sorted(runs_dir.glob("*/metrics.parquet")):
        rid = f.parent.name
        _, _, _, seed = parse_run_id(rid)
        t = pq.read_table(f, columns=["step", "entropy"]).to_pylist()
        curve = [r["entropy"] for r in sorted(t, key=lambda r: r["step"]) if r["step"] > first_step]
        out.setdefault(label_of(rid), {})[seed] = curve
    return out


def table(scan: dict, gaps: dict[str, dict], title: str) -> tuple[list[str], dict[str, dict]]:
    lines = [f"### {title}", "",
             f"Scan: kappa_B = {scan['kappa']:.4g}, 95% CI [{scan['kappa_ci95'][0]:.4g}, {scan['kappa_ci95'][1]:.4g}] "
             f"({scan['mixed_groups']} mixed of {scan['groups']} groups, {scan['batches']} batches); "
             f"model `{scan['model']}`; {scan['seconds']} s.", "",
             "| pair | seeds | measured gap to REINFORCE (nats/token) [95% CI] | Prop. 1 | first order | lookahead |",
             "|---|---:|---:|---:|---:|---:|"]
    rows = {p["label"]: p for p in scan["pairs"]}
    keys = [k for k in rows if k in gaps and k != "reinforce"]
    for k in sorted(keys, key=lambda k: -gaps[k]["gap"]):
        g, r = gaps[k], rows[k]
        lo, hi = g["ci95"]
        ci = f"[{lo:+.5f}, {hi:+.5f}]" if not math.isnan(lo) else "-"
        lines.append(f"| {k} | {g['n']} | {g['gap']:+.5f} {ci} | {_f(r['prop1'])} | {_f(r['first_order'])} | "
                     f"{_f(r['lookahead'])} |")
    lines += ["", "| prediction | pairs | Spearman rho | 95% CI | permutation p |", "|---|---:|---:|---:|---:|"]
    stats = {}
    for col, name in PREDICTIONS:
        ks = [k for k in keys if rows[k][col] is not None]
        s = spearman([rows[k][col] for k in ks], [gaps[k]["gap"] for k in ks])
        stats[col] = s
        ci = f"[{s['lo']:+.2f}, {s['hi']:+.2f}]" if not math.isnan(s["lo"]) else "-"
        lines.append(f"| {name} | {s['n']} | {s['rho']:+.2f} | {ci} | {s['p']:.3g} |")
    return lines + [""], stats


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:+.3g}"


def pair_label(pair: str | list[float]) -> str:
    """A preregistered pair ("reinforce" or [beta_pos, beta_neg]) as the scan labels it."""
    return pair if isinstance(pair, str) else f"asym({pair[0]:g}, {pair[1]:g})"


def preregistered(prereg: dict, scan: dict, runs_dir: Path, step: int) -> tuple[list[str], dict]:
    """The preregistered analysis: each pair's per-seed mean entropy over steps step+1..end
    (its own seeds only), rho of each prediction against the pair means, with the seed
    bootstrap's CI. Refuses a run that is missing or trained on a seed the design does not give it."""
    want: dict[str, list[int]] = {}
    for i, pair in enumerate(prereg["pairs"]):
        k = prereg["seeds_per_pair"]
        want[pair_label(pair)] = list(range(200 + k * i, 200 + k * (i + 1)))
    curves = entropy_curves(runs_dir, step)
    per_seed: dict[str, list[float]] = {}
    for label, seeds in want.items():
        got = curves.get(label, {})
        missing = [s for s in seeds if s not in got]
        if missing:
            raise SystemExit(f"{runs_dir}: {label} has no run for seed(s) {missing} (preregistered: {seeds})")
        per_seed[label] = [float(sum(got[s]) / len(got[s])) for s in seeds]
    rows = {p["label"]: p for p in scan["pairs"]}
    absent = [k for k in want if k not in rows]
    if absent:
        raise SystemExit(f"the scan has no row for {absent}: scan the preregistered pairs")
    # The scan's *_point columns are its estimates whether or not it printed them (it withholds
    # them while kappa_B's sign is unknown); the preregistered checkpoint is one where it is known.
    pred = {col: {k: rows[k].get(f"{col}_point", rows[k][col]) for k in want} for col, _ in PREDICTIONS}
    primary = prereg["primary_predictor"]
    lines = [f"Scan of `{scan['model']}`: kappa_B = {scan['kappa']:.4g}, 95% CI "
             f"[{scan['kappa_ci95'][0]:.4g}, {scan['kappa_ci95'][1]:.4g}] ({scan['mixed_groups']} mixed of "
             f"{scan['groups']} groups, {scan['batches']} batches, seed {scan.get('seed', '?')}); {scan['seconds']} s.", "",
             f"| pair | seeds | mean entropy, steps {step + 1}-end (nats/token), per seed | mean | Prop. 1 | first order | lookahead |",
             "|---|---|---|---:|---:|---:|---:|"]
    for k in sorted(want, key=lambda k: -sum(per_seed[k]) / len(per_seed[k])):
        v = per_seed[k]
        lines.append(f"| {k} | {', '.join(map(str, want[k]))} | {', '.join(f'{x:.5f}' for x in v)} | "
                     f"{sum(v) / len(v):.5f} | {_f(pred['prop1'][k])} | {_f(pred['first_order'][k])} | "
                     f"{_f(pred['lookahead'][k])} |")
    lines += ["", "| prediction | role | pairs | Spearman rho | 95% CI (seed bootstrap) | permutation p |",
              "|---|---|---:|---:|---:|---:|"]
    stats: dict = {"step": step, "per_seed": per_seed, "seeds": want, "predictions": pred}
    for col, name in PREDICTIONS:
        ok = {k: x for k, x in pred[col].items() if x is not None}
        s = seed_bootstrap_spearman(ok, per_seed)
        stats[col] = s
        role = "**primary**" if col == primary else "secondary"
        lines.append(f"| {name} | {role} | {s['n']} | {s['rho']:+.2f} | [{s['lo']:+.2f}, {s['hi']:+.2f}] | {s['p']:.3g} |")
    return lines + [""], stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--scan", required=True, help="scan.json of a scan from the base")
    ap.add_argument("--scan-late", help="scan.json of a scan from a later checkpoint")
    ap.add_argument("--late-step", type=int, default=30, help="the checkpoint step of --scan-late")
    ap.add_argument("--json", help="also write the statistics here")
    ap.add_argument("--prereg", help="preregistration.json: run its design instead (docs/results/scan-validation/)")
    ap.add_argument("--step", type=int, help="with --prereg: the scanned checkpoint's step")
    a = ap.parse_args()
    cfg = load_config(a.config)
    runs = Path(cfg.results_dir) / "runs"
    if a.prereg:
        if a.step is None:
            ap.error("--prereg needs --step (the scanned checkpoint's step)")
        prereg = json.loads(Path(a.prereg).read_text())
        lines, stats = preregistered(prereg, json.loads(Path(a.scan).read_text()), runs, a.step)
        print("\n".join([f"Generated by `python bench/scan_validation.py --config {a.config} --prereg {a.prereg} "
                         f"--scan {a.scan} --step {a.step}`.", ""] + lines))
        if a.json:
            Path(a.json).write_text(json.dumps(stats, indent=2) + "\n")
        return
    out = ["# `asym scan` against whole training runs", "",
           f"Config `{a.config}`; runs under `{runs}`. Generated by `python bench/scan_validation.py "
           f"--config {a.config} --scan {a.scan}" + (f" --scan-late {a.scan_late}" if a.scan_late else "") + "`.", ""]
    stats = {}
    lines, stats["base"] = table(json.loads(Path(a.scan).read_text()), measured_gaps(entropy_curves(runs, 1)),
                                 "From the base, against the mean gap over the whole run (steps 2-end)")
    out += lines
    if a.scan_late:
        lines, stats["late"] = table(json.loads(Path(a.scan_late).read_text()),
                                     measured_gaps(entropy_curves(runs, a.late_step)),
                                     f"From a step-{a.late_step} checkpoint, against the gap over steps "
                                     f"{a.late_step + 1}-end")
        out += lines
    print("\n".join(out))
    if a.json:
        Path(a.json).write_text(json.dumps(stats, indent=2) + "\n")


if __name__ == "__main__":
    main()
