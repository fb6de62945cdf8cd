"""Figures 1-4 of the paper, drawn from the aggregated artifacts (matplotlib, PNG).

Why it exists: the report shows the same views as the paper so a run can be compared with
it at a glance. Each function takes an aggregate table (asymcli.aggregate.CURVES / GRID)
and writes one PNG atomically. Curves are the mean over seeds with a band of +-1 sample
std when there are several seeds; test accuracy is the EMA-smoothed (report.ema) greedy
accuracy the trainer logs every ``train.eval_every`` steps: the mean over the config's eval
benchmarks for a benchmark task (Appendix G's Avg. test accuracy), the held-out split for the
embedded task. A panel whose runs are missing says so inside the panel instead of failing.

Departures from the paper: one model per figure (the paper stacks two backbones as rows);
Figure 4 (a-c) and 4d are two files (4d belongs to the `grid` target).
Uses matplotlib's object API (no pyplot state), so it is safe in any thread or process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from . import artifacts
from .aggregate import row_label

# One color per method, the same in every figure.
COLORS = {
    "reinforce": "#7f7f7f",
    "reinforce_ent": "#bcbd22",
    "grpo": "#1f77b4",
    "grpo_ent": "#17becf",
    "clip_higher": "#9467bd",
    "dr_grpo": "#8c564b",
    "pos_only": "#2ca02c",
    "neg_only": "#d62728",
    "ent_decrease": "#e377c2",
    "ent_increase": "#ff7f0e",
    "asym": "#000000",
}
ASYM_STYLES = ["-", "--", ":", "-."]

Spec = tuple[str, "float | None", "float | None"]  # (method, beta_pos, beta_neg)

FIG2_METHODS: list[Spec] = [("reinforce", None, None), ("pos_only", None, None),
                            ("neg_only", None, None), ("reinforce_ent", None, None)]
FIG3_METHODS: list[Spec] = [("grpo", None, None), ("ent_decrease", None, None), ("ent_increase", None, None)]
FIG4_BASELINES: list[Spec] = [("reinforce", None, None), ("grpo", None, None), ("grpo_ent", None, None),
                              ("clip_higher", None, None), ("dr_grpo", None, None)]


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    with artifacts.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


# ---------------------------------------------------------------------------
# Series from the CURVES table
# ---------------------------------------------------------------------------


def series(curves: pa.Table, spec: Spec, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """(steps, mean over seeds, sample std over seeds, n seeds) of one column, NaNs skipped.
    None when no run of ``spec`` has a finite value of ``column``."""
    method, bp, bn = spec
    m = np.array(curves.column("method").to_pylist(), dtype=object)
    keep = m == method
    if method == "asym":
        keep &= np.isclose(curves.column("beta_pos").to_numpy(zero_copy_only=False).astype(float), bp)
        keep &= np.isclose(curves.column("beta_neg").to_numpy(zero_copy_only=False).astype(float), bn)
    if not keep.any():
        return None
    steps = curves.column("step").to_numpy()[keep]
    seeds = curves.column("seed").to_numpy()[keep]
    vals = curves.column(column).to_numpy(zero_copy_only=False).astype(float)[keep]
    ok = np.isfinite(vals)
    if not ok.any():
        return None
    steps, seeds, vals = steps[ok], seeds[ok], vals[ok]
    xs = np.unique(steps)
    mean = np.array([vals[steps == s].mean() for s in xs])
    std = np.array([vals[steps == s].std(ddof=1) if (steps == s).sum() > 1 else 0.0 for s in xs])
    return xs, mean, std, len(np.unique(seeds))


def _label(spec: Spec) -> str:
    return row_label(*spec)


def _style(spec: Spec, asym_index: dict[tuple[Any, Any], int]) -> dict[str, Any]:
    method, bp, bn = spec
    if method == "asym":
        i = asym_index.setdefault((bp, bn), len(asym_index))
        return {"color": COLORS["asym"], "linestyle": ASYM_STYLES[i % len(ASYM_STYLES)]}
    return {"color": COLORS.get(method, None)}


def _note(ax: Any, text: str, big: bool = False) -> None:
    """Text inside a panel (kept out of the layout so it never squeezes the axes)."""
    if big:
        t = ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9,
                    color="#555555")
    else:
        t = ax.text(0.02, 0.02, text, ha="left", va="bottom", transform=ax.transAxes, fontsize=6.5,
                    color="#666666", bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})
    t.set_in_layout(False)


def panel(ax: Any, curves: pa.Table, specs: Sequence[Spec], column: str, *, title: str, ylabel: str,
          asym_index: dict[tuple[Any, Any], int] | None = None, linestyle: str | None = None,
          suffix: str = "", legend: bool = True) -> list[str]:
    """Draw ``column`` for each spec (mean + band); note the missing ones. Returns them."""
    asym_index = {} if asym_index is None else asym_index
    missing = []
    drawn = 0
    for spec in specs:
        s = series(curves, spec, column)
        if s is None:
            missing.append(_label(spec))
            continue
        xs, mean, std, n = s
        style = _style(spec, asym_index)
        if linestyle:
            style["linestyle"] = linestyle
        marker = "o" if len(xs) <= 12 else None
        ax.plot(xs, mean, label=_label(spec) + suffix, marker=marker, markersize=3, linewidth=1.4, **style)
        if n > 1:
            ax.fill_between(xs, mean - std, mean + std, alpha=0.18, color=style.get("color"), linewidth=0)
        drawn += 1
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("training step", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if drawn == 0:
        _note(ax, "no runs with this metric yet:\n" + "\n".join(missing)
              + "\n(add the methods to grid.methods)", big=True)
    else:
        if missing:
            _note(ax, "missing runs:\n" + "\n".join(missing))
        if legend:
            ax.legend(fontsize=7, frameon=False)
    return missing


def figure_legend(fig: Figure, axes: Sequence[Any]) -> None:
    """One legend for the whole figure (the union of the panels' labelled lines)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center",
                   ncol=min(len(seen), 6), fontsize=8, frameon=False)


def _empty(curves: pa.Table | None) -> pa.Table:
    from .aggregate import CURVES

    return CURVES.empty_table() if curves is None else curves


# ---------------------------------------------------------------------------
# Figure 1: advantage curves (analytic, from the registry)
# ---------------------------------------------------------------------------


def fig1_advantages(path: str | Path, *, group_size: int = 8,
                    betas: Sequence[float] = (0.0, 0.05, 0.25, 0.5, 0.75, 1.0)) -> Path:
    """(a) A_pos(p) and (b) |A_neg(p)| of the beta family (Eq. 5) for several beta, with the
    flipped EntDecrease (a) and EntIncrease (b) channels at G = ``group_size`` (App. C)."""
    from .algorithm import advantages as adv

    g = int(group_size)
    p = np.linspace(0.02, 0.98, 193)
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    cmap = matplotlib.colormaps["viridis"]
    for i, b in enumerate(betas):
        pos, neg = adv.closed_form_channels("asym", p, g, beta_pos=b, beta_neg=b)
        color = cmap(i / max(1, len(betas) - 1))
        name = "REINFORCE" if b == 0 else ("GRPO" if b == 0.5 else None)
        lab = f"β={b:g}" + (f" ({name})" if name else "")
        axes[0].plot(p, np.asarray(pos, float), color=color, label=lab, linewidth=1.3)
        axes[1].plot(p, np.abs(np.asarray(neg, float)), color=color, label=lab, linewidth=1.3)
    for ax, est, which in ((axes[0], "ent_decrease", 0), (axes[1], "ent_increase", 1)):
        vals = np.asarray(adv.closed_form_channels(est, p, g)[which], float)
        pts = [(pp, a_pos if which == 0 else a_neg) for _k, pp, a_pos, a_neg in adv.channel_values(est, g)]
        pts = [(pp, v) for pp, v in pts if v is not None]
        lab = ("EntDecrease (flipped)" if which == 0 else "EntIncrease (flipped)") + f", G={g}"
        ax.plot(p, np.abs(vals), color=COLORS[est], linestyle="--", linewidth=1.3, label=lab)
        ax.plot([q for q, _ in pts], [abs(v) for _, v in pts], "o", color=COLORS[est], markersize=3)
    axes[0].set_title("(a) successful rollouts: $A_{pos}(p)$", fontsize=10)
    axes[1].set_title("(b) failed rollouts: $|A_{neg}(p)|$", fontsize=10)
    for ax in axes:
        ax.set_xlabel("group accuracy p", fontsize=8)
        ax.set_ylabel("advantage magnitude", fontsize=8)
        ax.set_ylim(0, 4)
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, frameon=False, loc="upper right")
    fig.suptitle("Figure 1: the β family (Eq. 5) and the flipped channels (App. C)", fontsize=10)
    return _save(fig, path)


# ---------------------------------------------------------------------------
# Figures 2-4: training dynamics
# ---------------------------------------------------------------------------


def fig2_channels(curves: pa.Table | None, path: str | Path) -> Path:
    """Figure 2: entropy, test accuracy, none/all-solved fractions, log-prob gain on correct
    rollouts for REINFORCE, Pos-Only, Neg-Only and REINFORCE w/ entropy reg."""
    c = _empty(curves)
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    ax = fig.subplots(1, 4)
    kw: dict[str, Any] = {"legend": False}
    panel(ax[0], c, FIG2_METHODS, "entropy", title="(a) policy entropy", ylabel="entropy", **kw)
    panel(ax[1], c, FIG2_METHODS, "eval_greedy_acc_ema", title="(b) test accuracy (EMA)", ylabel="accuracy", **kw)
    panel(ax[2], c, FIG2_METHODS, "none_solved_frac", title="(c) none-solved (—) / all-solved (- -)",
          ylabel="fraction of groups", **kw)
    panel(ax[2], c, FIG2_METHODS, "all_solved_frac", title="(c) none-solved (—) / all-solved (- -)",
          ylabel="fraction of groups", linestyle="--", suffix=" (all-solved)", **kw)
    panel(ax[3], c, FIG2_METHODS, "logprob_gain_correct", title="(d) log-prob gain, correct rollouts",
          ylabel="E[log π_new − log π_old]", **kw)
    figure_legend(fig, [ax[0], ax[1], ax[3]])
    fig.suptitle("Figure 2: channel isolation (Sec. 3.1)", fontsize=10)
    return _save(fig, path)


def fig3_flip(curves: pa.Table | None, path: str | Path) -> Path:
    """Figure 3: the advantage flip test, entropy and test accuracy."""
    c = _empty(curves)
    fig = Figure(figsize=(8, 4.0), layout="constrained")
    ax = fig.subplots(1, 2)
    panel(ax[0], c, FIG3_METHODS, "entropy", title="(a) policy entropy", ylabel="entropy", legend=False)
    panel(ax[1], c, FIG3_METHODS, "eval_greedy_acc_ema", title="(b) test accuracy (EMA)", ylabel="accuracy",
          legend=False)
    figure_legend(fig, ax)
    fig.suptitle("Figure 3: advantage flip test (Sec. 3.2)", fontsize=10)
    return _save(fig, path)


def fig4_dynamics(curves: pa.Table | None, path: str | Path,
                  pairs: Sequence[tuple[float, float]] = ((0.9, 0.4),)) -> Path:
    """Figure 4 (a-c): training reward, entropy and test accuracy of the baselines and
    AsymGRPO at the config's grid.betas pairs."""
    c = _empty(curves)
    specs = FIG4_BASELINES + [("asym", float(a), float(b)) for a, b in pairs]
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    ax = fig.subplots(1, 3)
    idx: dict[tuple[Any, Any], int] = {}
    panel(ax[0], c, specs, "reward_mean", title="(a) training reward", ylabel="mean reward", asym_index=idx,
          legend=False)
    panel(ax[1], c, specs, "entropy", title="(b) policy entropy", ylabel="entropy", asym_index=idx, legend=False)
    panel(ax[2], c, specs, "eval_greedy_acc_ema", title="(c) test accuracy (EMA)", ylabel="accuracy",
          asym_index=idx, legend=False)
    figure_legend(fig, ax)
    fig.suptitle("Figure 4 (a-c): training dynamics", fontsize=10)
    return _save(fig, path)


def grid_cell_text(row: dict[str, Any]) -> str:
    """A Figure 4d cell: "69.62\n± 0.90\nn=5" (the ± line only with two or more seeds)."""
    n = row.get("n_seeds") or 1
    std = row.get("std")
    spread = f"\n± {std:.2f}" if n > 1 and std is not None and not math.isnan(std) else ""
    return f"{row['mean']:.2f}{spread}\nn={n}"


def grid_heatmap(grid: pa.Table | None, path: str | Path) -> Path:
    """Figure 4d: Avg. accuracy (x 100) over the (beta_pos, beta_neg) grid, each cell annotated
    with mean ± sample std over seeds and n; empty cells = not run."""
    rows = [] if grid is None else [r for r in grid.to_pylist() if r["mean"] is not None]
    fig = Figure(figsize=(5.2, 4.4), layout="constrained")
    ax = fig.subplots(1, 1)
    ax.set_title("Figure 4d: Avg. accuracy over the (βpos, βneg) grid", fontsize=10)
    if not rows:
        ax.set_axis_off()
        _note(ax, "no evaluated AsymGRPO runs yet\n(grid.grid / grid.betas; `snakemake grid`)", big=True)
        return _save(fig, path)
    bps = sorted({r["beta_pos"] for r in rows}, reverse=True)
    bns = sorted({r["beta_neg"] for r in rows})
    mat = np.full((len(bps), len(bns)), math.nan)
    cell: dict[tuple[int, int], dict] = {}
    for r in rows:
        i, j = bps.index(r["beta_pos"]), bns.index(r["beta_neg"])
        mat[i, j] = r["mean"]
        cell[i, j] = r
    masked = np.ma.masked_invalid(mat)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#eeeeee")
    im = ax.imshow(masked, cmap=cmap, aspect="auto")
    best = np.nanmax(mat)
    lo, hi = np.nanmin(mat), np.nanmax(mat)
    for i in range(len(bps)):
        for j in range(len(bns)):
            if math.isnan(mat[i, j]):
                continue
            light = hi > lo and (mat[i, j] - lo) / (hi - lo) > 0.6
            # mean ± std and n in every cell: a colour contrast over a 0.3-point spread must not
            # read as a strong effect when the seeds scatter more than that.
            ax.text(j, i, grid_cell_text(cell[i, j]), ha="center", va="center", fontsize=7,
                    color="black" if light else "white",
                    fontweight="bold" if mat[i, j] == best else "normal")
    ax.set_xticks(range(len(bns)), [f"{b:g}" for b in bns])
    ax.set_yticks(range(len(bps)), [f"{b:g}" for b in bps])
    ax.set_xlabel("βneg", fontsize=9)
    ax.set_ylabel("βpos", fontsize=9)
    fig.colorbar(im, ax=ax, label="Avg. (Avg@k x 100)")
    return _save(fig, path)
