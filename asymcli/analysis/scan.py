"""`asym scan`'s outputs, and its validation against whole training runs (docs/scan.md).

- :data:`SCAN`: the Parquet schema of ``{results}/scan/scan.parquet`` (one row per pair);
- :func:`sign_established`, :func:`reported_rows`, :func:`next_step`: what the scan may
  claim. Prop. 1 ranks pairs as sign(kappa_B) x (beta_pos - beta_neg), so every prediction
  hangs on one bit, the sign of kappa_B; while its CI includes 0 the predictions are
  reported as unknown (null), with the point estimates kept in ``*_point`` for analysis;
- :data:`CHECKPOINTS`, :func:`run_summary`: ``asym scan --run``'s one row per checkpoint;
- :func:`to_json`, :func:`print_rich`, :func:`print_run`: the ``--format json`` and table views;
- :func:`heatmap`: Fig. 4d's layout (beta_pos rows, beta_neg columns) coloured by each
  prediction, on a scale symmetric about 0 so that sign reads as colour;
- :func:`measured_gaps`: per run id, the mean over steps of its entropy minus REINFORCE's of
  the same seed (the run-level effect a scan predicts), with its mean and CI over seeds;
- :func:`spearman`: Spearman's rho with an exact or Monte-Carlo permutation p-value and a
  Fisher-z 95% CI (sd 1.06 / sqrt(n - 3), Fieller, Hartley and Pearson 1957);
- :func:`seed_bootstrap_spearman`: the same rho for pairs measured on independent seeds, with a
  CI from resampling each pair's seeds (the referee-grade validation's statistic).
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
    # False: kappa_B's CI includes 0 (or has too few mixed groups for one), and prop1,
    # first_order and lookahead are null (unknown) but where they are 0 by construction.
    # (null = withheld for the sign; NaN = undefined for this estimator, as above)
    ("sign_established", pa.bool_()),
    ("prop1_point", pa.float64()),  # the point estimates, whatever the sign's status: for
    ("first_order_point", pa.float64()),  # analysis (e.g. how a base scan ranks), not for
    ("lookahead_point", pa.float64()),  # choosing pairs
])

#: `asym scan --run`: one row per checkpoint, in step order.
CHECKPOINTS = pa.schema([
    ("step", pa.int64()),
    ("model", pa.string()),
    ("kappa", pa.float64()),
    ("kappa_lo", pa.float64()),
    ("kappa_hi", pa.float64()),
    ("sign_established", pa.bool_()),
    ("groups", pa.int64()),
    ("mixed_groups", pa.int64()),
    ("batches", pa.int64()),
])

#: The predictions whose sign, and so whose ranking of the pairs, follows kappa_B's sign.
#: The lookahead measures one real step, but from a policy whose kappa_B may still change
#: sign; from the mechanism testbed's base (CI including 0) all three ranked the pairs
#: backwards (docs/scan.md), so none of them is reported there.
SIGN_DEPENDENT = ("prop1", "first_order", "lookahead")
UNKNOWN = "unknown"

PREDICTIONS = {"prop1": "Prop. 1: lr·κ_B·(β₊−β₋)", "first_order": "App. B first order",
               "lookahead": "one-step lookahead"}


def sign_established(ci: Sequence[float | None]) -> bool:
    """Whether a 95% CI of kappa_B excludes 0 (False for a missing or NaN bound: fewer than
    two mixed groups give no CI)."""
    lo, hi = ci
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return False
    return lo > 0 or hi < 0


def reported_rows(rows: Sequence[dict[str, Any]], established: bool, reference: str = "reinforce",
                  ) -> list[dict[str, Any]]:
    """The scan's rows as it reports them: each gains ``sign_established`` and ``*_point``
    (the raw estimates). Unless the sign is established, every prediction in
    :data:`SIGN_DEPENDENT` becomes NaN (null in JSON, "unknown" in the table) except those
    that are 0 whatever the sign: the reference's own (0 by definition) and Prop. 1's for a
    pair with beta_pos = beta_neg (GRPO's (0.5, 0.5): Prop. 1 predicts no effect at any
    kappa_B)."""
    out = []
    for r in rows:
        row = dict(r)
        for k in SIGN_DEPENDENT:
            row[f"{k}_point"] = r[k]
        row["sign_established"] = established
        if not established and r["label"] != reference:
            for k in SIGN_DEPENDENT:
                zero_gap = k == "prop1" and not math.isnan(r["beta_pos"]) and r["beta_pos"] == r["beta_neg"]
                if not zero_gap:
                    row[k] = math.nan
        out.append(row)
    return out


def is_unknown(row: dict[str, Any], key: str) -> bool:
    """Whether ``row[key]`` was withheld for the sign (not: undefined for this estimator)."""
    v, point = row.get(key), row.get(f"{key}_point")
    return (v is None or (isinstance(v, float) and math.isnan(v))) and point is not None and (
        not isinstance(point, float) or not math.isnan(point))


#: How much longer than the scan's own a CI may need to be before "more batches" stops being
#: advice worth giving (the CI half-width shrinks as 1 / sqrt(batches)).
MAX_BATCH_FACTOR = 16


def batches_to_exclude_zero(kappa: float, ci: Sequence[float], batches: int) -> int | None:
    """Batches at which the CI's half-width would fall below |kappa_B| if kappa_B stayed at
    its point estimate and the half-width shrank as 1 / sqrt(batches); None when the point
    is 0 or NaN, or the answer exceeds MAX_BATCH_FACTOR x ``batches``."""
    lo, hi = ci
    if any(math.isnan(x) for x in (kappa, lo, hi)) or kappa == 0:
        return None
    need = math.ceil(batches * ((hi - lo) / 2 / abs(kappa)) ** 2 * 1.1)  # 10% margin: the CI is itself noisy
    return need if need <= MAX_BATCH_FACTOR * batches else None


def next_step(kappa: float, ci: Sequence[float], batches: int, *, from_run: bool = False) -> str | None:
    """The recommended next step when kappa_B's sign is not established (None when it is)."""
    if sign_established(ci):
        return None
    if any(x is None or math.isnan(x) for x in ci):
        return ("fewer than 2 mixed groups (0 < p < 1), so kappa_B has no CI: scan more batches (--batches) or a "
                "checkpoint that solves some but not all of a group's rollouts")
    later = ("wait for later checkpoints and scan again" if from_run else
             "scan an early checkpoint of a training run: `asym scan --run runs/RUN_ID` scans each checkpoint "
             "and names the first where the sign is established")
    need = batches_to_exclude_zero(kappa, ci, batches)
    more = (f"about {need} batches (--batches {need}) would exclude 0 if kappa_B held at {kappa:.3g}"
            if need is not None else
            f"kappa_B is too close to 0 for more batches to help (over {MAX_BATCH_FACTOR * batches} needed)")
    return (f"{later}; {more}. More batches tell the sign at this model only: kappa_B drifts as training "
            "sharpens the policy (docs/scan.md)")


def summary(result: Any, *, model: str, config: str | None) -> dict[str, Any]:
    """The scan as one JSON-able dict (``--format json`` and scan.json; NaN -> null)."""
    lo, hi = result.kappa_ci
    known = sign_established((lo, hi))
    return _clean({"model": model, "config": config, "kappa": result.kappa, "kappa_ci95": [lo, hi],
                   "sign_established": known,
                   "kappa_sign": ("positive" if result.kappa > 0 else "negative") if known else UNKNOWN,
                   "next_step": next_step(result.kappa, (lo, hi), result.batches),
                   "groups": result.n_groups, "mixed_groups": result.n_mixed, "batches": result.batches,
                   "reward_mean": result.reward_mean, "entropy": result.entropy,
                   "probe_entropy": result.probe_entropy, "lr": result.lr, "seconds": round(result.seconds, 1),
                   "pairs": reported_rows(result.rows, known)})


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
    known = doc["sign_established"]
    sig = "" if lo is None else ("  (CI excludes 0)" if known else "  (CI includes 0: the sign is not known)")
    console.print(f"kappa_B = {_f(doc['kappa'], '.4g')}, 95% CI [{_f(lo)}, {_f(hi)}]{sig}; "
                  f"{doc['mixed_groups']} mixed of {doc['groups']} groups over {doc['batches']} batch(es); "
                  f"reward {doc['reward_mean']:.3f}, entropy {doc['entropy']:.4f} nats/token; {doc['seconds']} s")
    t = Table(title="Predicted entropy effect relative to REINFORCE (per step; lookahead in nats/token)")
    for col in ("pair", "Prop. 1", "first order", "lookahead", "W+ peak", "W- peak"):
        t.add_column(col, justify="left" if col == "pair" else "right")
    for r in doc["pairs"]:
        t.add_row(r["label"], *[UNKNOWN if is_unknown(r, k) else _f(r[k]) for k in SIGN_DEPENDENT],
                  _f(r["peak_pos"], ".2f"), _f(r["peak_neg"], ".2f"))
    console.print(t)
    if known:
        console.print("Prop. 1 and first order are in nats/token per step at the config's lr (eta = lr); "
                      "their sign and rank, not their size, carry over to a run (docs/scan.md).")
    else:
        console.print("unknown: Prop. 1 ranks pairs as sign(kappa_B) x (beta_pos - beta_neg), and kappa_B's sign is "
                      "not established here, so no pair's direction or rank is known (0s hold at any sign; "
                      "docs/scan.md).")
        console.print(f"next: {doc['next_step']}", soft_wrap=True)


def run_summary(run_dir: str, docs: Sequence[tuple[int, dict[str, Any]]], skipped: Sequence[str] = ()
                ) -> dict[str, Any]:
    """``asym scan --run``'s report: each checkpoint's scan (step order) and the first step
    whose kappa_B CI excludes 0, with the next step when none does."""
    first = next(((step, d) for step, d in docs if d["sign_established"]), None)
    signs = {d["kappa_sign"] for _, d in docs if d["sign_established"]}
    if first is not None:
        note = (f"{first[1]['model']}; its scan follows" + ("" if len(signs) == 1 else
                f". kappa_B's established sign changes between checkpoints ({', '.join(sorted(signs))}): it is a "
                "property of the policy, and a prediction holds only while the sign does"))
    else:
        last_step, last = docs[-1]
        note = (f"none of the {len(docs)} checkpoint(s) (last: step {last_step}) has kappa_B's sign established: "
                + (next_step(last["kappa"] if last["kappa"] is not None else math.nan,
                             [math.nan if x is None else x for x in last["kappa_ci95"]], last["batches"],
                             from_run=True) or ""))
    return {"run": run_dir, "first_established_step": None if first is None else first[0],
            "first_established_model": None if first is None else first[1]["model"],
            "next_step": note, "skipped": list(skipped),
            "checkpoints": [dict(d, step=step) for step, d in docs]}


def checkpoint_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """:data:`CHECKPOINTS` rows of a :func:`run_summary`."""
    nan = math.nan
    return [{"step": d["step"], "model": d["model"], "kappa": nan if d["kappa"] is None else d["kappa"],
             "kappa_lo": nan if d["kappa_ci95"][0] is None else d["kappa_ci95"][0],
             "kappa_hi": nan if d["kappa_ci95"][1] is None else d["kappa_ci95"][1],
             "sign_established": d["sign_established"], "groups": d["groups"], "mixed_groups": d["mixed_groups"],
             "batches": d["batches"]} for d in doc["checkpoints"]]


def print_run(doc: dict[str, Any], console: Any) -> None:
    """The per-checkpoint table, the first established step, then that checkpoint's pairs."""
    from rich.table import Table

    console.print(f"kappa_B per checkpoint of {doc['run']}", soft_wrap=True)
    t = Table()
    for col in ("step", "kappa_B", "95% CI", "mixed / groups", "sign"):
        t.add_column(col, justify="right")
    for d in doc["checkpoints"]:
        lo, hi = d["kappa_ci95"]
        t.add_row(str(d["step"]), _f(d["kappa"], ".4g"), f"[{_f(lo)}, {_f(hi)}]",
                  f"{d['mixed_groups']} / {d['groups']}", d["kappa_sign"])
    console.print(t)
    if doc["skipped"]:
        console.print("skipped: " + "; ".join(doc["skipped"]), soft_wrap=True)
    step = doc["first_established_step"]
    if step is None:
        console.print("first checkpoint with kappa_B's sign established: none", soft_wrap=True)
        console.print(f"next: {doc['next_step']}", soft_wrap=True)
        return
    console.print(f"first checkpoint with kappa_B's sign established: step {step}: {doc['next_step']}",
                  soft_wrap=True)
    print_rich(next(d for d in doc["checkpoints"] if d["step"] == step), console)


def _f(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def heatmap(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Fig. 4d's layout per prediction for the AsymGRPO pairs (and GRPO, REINFORCE, Pos-Only,
    Neg-Only at their betas); None when fewer than two distinct pairs have betas, or when no
    prediction has a value (no mixed group)."""
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
    preds = [p for p in PREDICTIONS if any(not math.isnan(c[p]) or is_unknown(c, p) for c in cells.values())]
    if not preds:  # no mixed group: every prediction is NaN, nothing to draw
        return None
    fig, axes = plt.subplots(1, len(preds), figsize=(3.6 * len(preds) + 0.6, 3.4), squeeze=False)
    for ax, pred in zip(axes[0], preds):
        grid = np.full((len(bps), len(bns)), np.nan)
        for (bp, bn), r in cells.items():
            grid[bps.index(bp), bns.index(bn)] = r[pred]
        finite = np.abs(grid[np.isfinite(grid)])
        lim = float(finite.max()) if finite.size and finite.max() > 0 else 1.0  # all unknown or 0: any scale
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim)  # red: raises entropy vs REINFORCE
        for (i, j), v in np.ndenumerate(grid):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=7)
        for (bp, bn), r in cells.items():  # withheld for kappa_B's sign: marked, not left as a gap
            if is_unknown(r, pred):
                ax.text(bns.index(bn), bps.index(bp), "?", ha="center", va="center", fontsize=9)
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


def seed_bootstrap_spearman(prediction: dict[str, float], per_seed: dict[str, Sequence[float]], *,
                            n_boot: int = 10_000, seed: int = 0, n_perm: int = 100_000,
                            ) -> dict[str, Any]:
    """Spearman's rho of ``prediction`` against each key's mean over its seeds, for keys measured
    on independent seeds (docs/results/scan-validation/): its CI resamples the seeds, not the keys.

    prediction: key -> predicted value; per_seed: key -> that key's per-seed measurements
    (its own seeds, shared with no other key). Keys missing from either are left out.
    Returns rho (average ranks for ties), the two-sided permutation p of :func:`spearman`
    (shuffling the keys' means), and ``lo``/``hi``: the 2.5/97.5 percentiles of rho over
    ``n_boot`` resamples in which each key's seeds are drawn with replacement within that key
    (a stratified bootstrap: the keys are the design, the seeds are the noise). A resample whose
    rho is undefined (every mean tied) is dropped and counted in ``dropped``.
    """
    keys = [k for k in prediction if k in per_seed and len(per_seed[k]) > 0]
    x = np.array([prediction[k] for k in keys], float)
    ys = [np.asarray(per_seed[k], float) for k in keys]
    base = spearman(x, [float(y.mean()) for y in ys], n_perm=n_perm, seed=seed)
    rng = np.random.default_rng(seed)
    rx = sps.rankdata(x)
    rhos = []
    dropped = 0
    for _ in range(n_boot):
        means = np.array([y[rng.integers(0, len(y), len(y))].mean() for y in ys])
        ry = sps.rankdata(means)
        if np.all(ry == ry[0]) or np.all(rx == rx[0]):
            dropped += 1
            continue
        rhos.append(float(np.corrcoef(rx, ry)[0, 1]))
    r = np.asarray(rhos)
    lo, hi = (float(np.quantile(r, 0.025)), float(np.quantile(r, 0.975))) if len(r) else (math.nan, math.nan)
    return {"rho": base["rho"], "p": base["p"], "lo": lo, "hi": hi, "n": base["n"],
            "seeds": {k: len(y) for k, y in zip(keys, ys)}, "n_boot": n_boot, "dropped": dropped}
