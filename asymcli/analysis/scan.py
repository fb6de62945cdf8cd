"""`asym scan`'s outputs, and its validation against whole training runs (docs/scan.md).

- :data:`SCAN`: the Parquet schema of ``{results}/scan/scan.parquet`` (one row per pair);
- :func:`to_json`, :func:`print_rich`: the ``--format json`` and table views;
- :func:`heatmap`: Fig. 4d's layout (beta_pos rows, beta_neg columns) coloured by each
  prediction, on a scale symmetric about 0 so that sign reads as colour;
- :func:`measured_gaps`: per run id, the mean over steps of its entropy minus REINFORCE's of
  the same seed (the run-level effect a scan predicts), with its mean and CI over seeds;
- :func:`spearman`: Spearman's rho with an exact or Monte-Carlo permutation p-value and a
  Fisher-z 95% CI (sd 1.06 / sqrt(n - 3), Fieller, Hartley and Pearson 1957).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats as sps

from .. import artifacts

SCAN = pa.schema([
    ("label", pa.string()),  # reinforce, grpo, ..., asym(0.9, 0.4)
    ("method", pa.string()),
    ("beta_pos", pa.float64()),  # NaN for estimators without betas
    ("beta_neg", pa.float64()),
    ("prop1", pa.float64()),  # lr * kappa_B * (beta_pos - beta_neg); NaN outside the beta family
    ("first_order", pa.float64()),  # lr * E_g[-Cov_g(L, A - A_REIN)] (Appendix B)
    ("lookahead", pa.float64()),  # probe entropy after one step - REINFORCE's (nats/token)
    ("probe_entropy", pa.float64()),
    ("peak_pos", pa.float64()),  # Prop. 2: argmax W_+ = 1 - beta_pos; NaN outside (0, 1)
    ("peak_neg", pa.float64()),  # argmax W_- = beta_neg
])

PREDICTIONS = {"prop1": "Prop. 1: lr·κ_B·(β₊−β₋)", "first_order": "App. B first order",
               "lookahead": "one-step lookahead"}


def summary(result: Any, *, model: str, config: str | None) -> dict[str, Any]:
    """The scan as one JSON-able dict (``--format json`` and scan.json; NaN -> null)."""
    lo, hi = result.kappa_ci
    return _clean({"model": model, "config": config, "kappa": result.kappa, "kappa_ci95": [lo, hi],
                   "groups": result.n_groups, "mixed_groups": result.n_mixed, "batches": result.batches,
                   "reward_mean": result.reward_mean, "entropy": result.entropy,
                   "probe_entropy": result.probe_entropy, "lr": result.lr, "seconds": round(result.seconds, 1),
                   "pairs": result.rows})


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def print_rich(doc: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    lo, hi = doc["kappa_ci95"]
    sig = "" if lo is None else (
        "  (CI excludes 0)" if lo > 0 or hi < 0 else "  (CI includes 0: the sign is not known)")
    console.print(f"kappa_B = {_f(doc['kappa'], '.4g')}, 95% CI [{_f(lo)}, {_f(hi)}]{sig}; "
                  f"{doc['mixed_groups']} mixed of {doc['groups']} groups over {doc['batches']} batch(es); "
                  f"reward {doc['reward_mean']:.3f}, entropy {doc['entropy']:.4f} nats/token; {doc['seconds']} s")
    t = Table(title="Predicted entropy effect relative to REINFORCE (per step; lookahead in nats/token)")
    for col in ("pair", "Prop. 1", "first order", "lookahead", "W+ peak", "W- peak"):
        t.add_column(col, justify="left" if col == "pair" else "right")
    for r in doc["pairs"]:
        t.add_row(r["label"], _f(r["prop1"]), _f(r["first_order"]), _f(r["lookahead"]),
                  _f(r["peak_pos"], ".2f"), _f(r["peak_neg"], ".2f"))
    console.print(t)
    console.print("Prop. 1 and first order are in nats/token per step at the config's lr (eta = lr); "
                  "their sign and rank, not their size, carry over to a run (docs/scan.md).")


def _f(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def heatmap(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Fig. 4d's layout per prediction for the AsymGRPO pairs (and GRPO, REINFORCE, Pos-Only,
    Neg-Only at their betas); None when fewer than two distinct pairs have betas."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = {}
    for r in rows:
        if r["method"] in ("asym", "reinforce", "grpo", "pos_only", "neg_only") and not math.isnan(r["beta_pos"]):
            cells[(r["beta_pos"], r["beta_neg"])] = r
    if len(cells) < 2:
        return None
    bps = sorted({k[0] for k in cells}, reverse=True)
    bns = sorted({k[1] for k in cells})
    preds = [p for p in PREDICTIONS if any(not math.isnan(c[p]) for c in cells.values())]
    fig, axes = plt.subplots(1, len(preds), figsize=(3.6 * len(preds) + 0.6, 3.4), squeeze=False)
    for ax, pred in zip(axes[0], preds):
        grid = np.full((len(bps), len(bns)), np.nan)
        for (bp, bn), r in cells.items():
            grid[bps.index(bp), bns.index(bn)] = r[pred]
        lim = float(np.nanmax(np.abs(grid))) or 1.0
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim)  # red: raises entropy vs REINFORCE
        for (i, j), v in np.ndenumerate(grid):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(bns)), [f"{b:g}" for b in bns])
        ax.set_yticks(range(len(bps)), [f"{b:g}" for b in bps])
        ax.set_xlabel("β₋ (beta_neg)")
        ax.set_ylabel("β₊ (beta_pos)")
        ax.set_title(PREDICTIONS[pred], fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8, label="Δ entropy vs REINFORCE")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with artifacts.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------
# Validation against whole runs
# ---------------------------------------------------------------------------


def measured_gaps(entropy: dict[str, dict[int, Sequence[float]]], reference: str = "reinforce",
                  ) -> dict[str, dict[str, Any]]:
    """Run-level entropy effect per method key: for each seed the key shares with
    ``reference``, the mean over steps of (H_key - H_reference) (per-step curves, step 1 on);
    then their mean, n, and 95% t-interval over seeds.

    entropy: key -> seed -> per-step entropy curve (the same steps for every run)."""
    out: dict[str, dict[str, Any]] = {}
    ref = entropy.get(reference, {})
    for key, seeds in entropy.items():
        diffs = []
        for s, curve in seeds.items():
            if s in ref:
                n = min(len(curve), len(ref[s]))
                diffs.append(float(np.mean(np.asarray(curve[:n]) - np.asarray(ref[s][:n]))))
        if not diffs:
            continue
        d = np.asarray(diffs)
        half = (float(sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
                if len(d) > 1 else math.nan)
        out[key] = {"gap": float(d.mean()), "n": len(d), "ci95": [float(d.mean()) - half, float(d.mean()) + half],
                    "per_seed": diffs}
    return out


def spearman(x: Sequence[float], y: Sequence[float], *, n_perm: int = 100_000, seed: int = 0,
             ) -> dict[str, float]:
    """Spearman's rho of paired values, a two-sided permutation p-value (exact up to n = 8,
    else Monte Carlo with ``n_perm`` shuffles, add-one), and a 95% CI from Fisher's z with
    sd 1.06 / sqrt(n - 3). Pairs with a NaN are dropped."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = len(a)
    if n < 3:
        return {"rho": math.nan, "p": math.nan, "lo": math.nan, "hi": math.nan, "n": n}
    ra, rb = sps.rankdata(a), sps.rankdata(b)
    rho = float(np.corrcoef(ra, rb)[0, 1])
    if n <= 8:
        perms: Iterable[Any] = itertools.permutations(rb)
        vals = np.array([np.corrcoef(ra, p)[0, 1] for p in perms])
        p = float(np.mean(np.abs(vals) >= abs(rho) - 1e-12))
    else:
        rng = np.random.default_rng(seed)
        shuffled = np.array([rng.permutation(rb) for _ in range(n_perm)])
        ra_c = ra - ra.mean()
        sh_c = shuffled - shuffled.mean(axis=1, keepdims=True)
        vals = (sh_c @ ra_c) / (np.sqrt((sh_c ** 2).sum(axis=1)) * math.sqrt((ra_c ** 2).sum()))
        p = float((1 + np.sum(np.abs(vals) >= abs(rho) - 1e-12)) / (n_perm + 1))
    lo = hi = math.nan
    if n > 3 and abs(rho) < 1:
        z, sd = math.atanh(rho), 1.06 / math.sqrt(n - 3)
        lo, hi = math.tanh(z - 1.96 * sd), math.tanh(z + 1.96 * sd)
    return {"rho": rho, "p": p, "lo": lo, "hi": hi, "n": n}
