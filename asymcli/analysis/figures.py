"""Figures 1-4 of the paper, drawn from the aggregated artifacts (matplotlib, PNG).

Why it exists: the report shows the same views as the paper so a run can be compared with
it at a glance, and a figure must show what ``asym claims`` tests: a gap that holds is
visible, a gap that does not is never drawn as a strong contrast. Each function takes an
aggregate table (asymcli.analysis.aggregate.CURVES / GRID / RUN_SCORES) and writes one PNG atomically.

- Level curves: the mean over seeds with its 95% t confidence band over seeds (unpaired; no
  band with one seed).
- Test accuracy: the greedy evaluations themselves (``eval_greedy_acc`` at the eval steps,
  the mean over the config's eval benchmarks for a benchmark task), mean and 95% t CI over
  seeds as error bars; no EMA (an EMA over a few evaluations mixes in the shared base
  accuracy of step 0 and shrinks every gap).
- Paired-difference panels (Figs. 2 and 3, second row): method − reference (REINFORCE in
  Fig. 2, GRPO in Fig. 3) per step, paired by seed (:func:`pair_key`, :func:`paired_diff`),
  the mean difference with its 95% t CI band over seeds (the interval of
  ``asymcli.analysis.claims.stats.paired_test``) and the zero line; at the right edge of a per-step
  metric's panel, the mean over steps (the value per seed that ``asym claims`` tests) with its
  paired 95% CI (thin bar) and 90% CI (thick bar): the thick bar clears 0 on the claimed side
  exactly when the claims' one-sided test at 0.05 says "holds", so a verdict can be read off it.
- Figure 4d: a diverging colour scale centred on a reference (GRPO's Avg., else REINFORCE's,
  else the grid's mean) with a half-range of at least ``GRID_MIN_HALF_RANGE`` points, and
  each cell's paired difference to the reference marked * when a two-sided paired t-test
  gives p < 0.05.

A panel whose runs are missing says so inside the panel instead of failing; every drawn
line has a legend entry. Departures from the paper: one model per figure (the paper stacks
two backbones as rows; here the second row holds the paired differences); Figure 4 (a-c)
and 4d are two files (4d belongs to the `grid` target). Uses matplotlib's object API (no
pyplot state), so it is safe in any thread or process.

One function per figure here; the series, bands and panels they are drawn from live in
asymcli/analysis/plotting.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from .. import artifacts
from .aggregate import row_label  # noqa: F401
# paired_diff, run_curves, series, zero_label, row_label: re-exported, tests use figures.<name>
from .plotting import (COLORS, SUMMARY_LABEL, Spec, axes_style, curves_or_empty, diff_panel,  # noqa: F401
                       draw_runs, figure_legend, note, pair_key, paired_diff, panel, run_curves, series,
                       spec_label, spec_style, summary_handle, zero_label)

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
# Figure 1: advantage curves (analytic, from the registry)
# ---------------------------------------------------------------------------


def fig1_advantages(path: str | Path, *, group_size: int = 8,
                    betas: Sequence[float] = (0.0, 0.05, 0.25, 0.5, 0.75, 1.0)) -> Path:
    """(a) A_pos(p) and (b) |A_neg(p)| of the beta family (Eq. 5) for several beta, with the
    flipped EntDecrease (a) and EntIncrease (b) channels at G = ``group_size`` (App. C)."""
    from ..algorithm import advantages as adv

    g = int(group_size)
    p = np.linspace(0.02, 0.98, 193)
    fig = Figure(figsize=(9, 4.4), layout="constrained")
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
        ax.plot([q for q, _ in pts], [abs(v) for _, v in pts], "o", color=COLORS[est], markersize=3,
                label=lab.split(" (")[0] + ": registry values at p = k/G")
    axes[0].set_title("(a) successful rollouts: $A_{pos}(p)$", fontsize=10)
    axes[1].set_title("(b) failed rollouts: $|A_{neg}(p)|$", fontsize=10)
    for ax in axes:
        ax.set_xlabel("group accuracy p", fontsize=8)
        ax.set_ylabel("advantage magnitude", fontsize=8)
        ax.set_ylim(0, 4)
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    figure_legend(fig, axes, ncol=4)  # both panels' curves: (b)'s EntIncrease is not in (a)
    fig.suptitle("Figure 1: the β family (Eq. 5) and the flipped channels (App. C)", fontsize=10)
    return _save(fig, path)


# ---------------------------------------------------------------------------
# Figures 2-4: training dynamics
# ---------------------------------------------------------------------------


REINFORCE: Spec = ("reinforce", None, None)
GRPO: Spec = ("grpo", None, None)
ACC = "eval_greedy_acc"  # the evaluations themselves (CURVES also has the EMA, not drawn)
BANDS = "bands / bars: 95% t CI over seeds"


def _style_proxies() -> list[tuple[Any, str]]:
    from matplotlib.lines import Line2D

    return [(Line2D([], [], color="black", linewidth=1.4), "(c) none-solved"),
            (Line2D([], [], color="black", linewidth=1.4, linestyle="--"), "(c) all-solved")]


def fig2_channels(curves: pa.Table | None, path: str | Path) -> Path:
    """Figure 2: entropy, test accuracy, none/all-solved fractions, log-prob gain on correct
    rollouts for REINFORCE, Pos-Only, Neg-Only and REINFORCE w/ entropy reg. (top row), and
    each minus REINFORCE, paired by seed (bottom row)."""
    c = curves_or_empty(curves)
    fig = Figure(figsize=(16, 8.2), layout="constrained")
    ax = fig.subplots(2, 4)
    top, bot = ax[0], ax[1]
    kw: dict[str, Any] = {"legend": False}
    panel(top[0], c, FIG2_METHODS, "entropy", title="(a) policy entropy", ylabel="entropy (nats/token)", **kw)
    panel(top[1], c, FIG2_METHODS, ACC, title="(b) test accuracy (greedy evaluations)", ylabel="accuracy",
          dodge=True, **kw)
    panel(top[2], c, FIG2_METHODS, "none_solved_frac", title="(c) none-solved (—) / all-solved (- -)",
          ylabel="fraction of groups", **kw)
    panel(top[2], c, FIG2_METHODS, "all_solved_frac", title="(c) none-solved (—) / all-solved (- -)",
          ylabel="fraction of groups", linestyle="--", **kw)
    panel(top[3], c, FIG2_METHODS, "logprob_gain_correct", title="(d) log-prob gain, correct rollouts",
          ylabel="E[log π_new − log π_old]", **kw)
    ref = "REINFORCE"
    diff_panel(bot[0], c, FIG2_METHODS, REINFORCE, "entropy", title=f"Δ(a) entropy − {ref}",
               ylabel="Δ entropy (nats/token)")
    diff_panel(bot[1], c, FIG2_METHODS, REINFORCE, ACC, title=f"Δ(b) test accuracy − {ref}",
               ylabel="Δ accuracy (points)", scale=100.0, summary=False)
    diff_panel(bot[2], c, FIG2_METHODS, REINFORCE, "none_solved_frac", title=f"Δ(c) none-solved − {ref}",
               ylabel="Δ fraction of groups")
    diff_panel(bot[3], c, FIG2_METHODS, REINFORCE, "logprob_gain_correct", title=f"Δ(d) log-prob gain − {ref}",
               ylabel="Δ E[log π_new − log π_old]")
    figure_legend(fig, list(top) + list(bot), extra=[*_style_proxies(), (summary_handle(), SUMMARY_LABEL)],
                  ncol=4)
    fig.suptitle("Figure 2: channel isolation (Sec. 3.1). Top: mean over seeds; bottom: method − REINFORCE, "
                 f"paired by seed; {BANDS}", fontsize=10)
    return _save(fig, path)


def fig3_flip(curves: pa.Table | None, path: str | Path) -> Path:
    """Figure 3: the advantage flip test, entropy and test accuracy (top), each minus GRPO,
    paired by seed (bottom)."""
    c = curves_or_empty(curves)
    fig = Figure(figsize=(9, 8.0), layout="constrained")
    ax = fig.subplots(2, 2)
    panel(ax[0, 0], c, FIG3_METHODS, "entropy", title="(a) policy entropy", ylabel="entropy (nats/token)",
          legend=False)
    panel(ax[0, 1], c, FIG3_METHODS, ACC, title="(b) test accuracy (greedy evaluations)", ylabel="accuracy",
          legend=False, dodge=True)
    diff_panel(ax[1, 0], c, FIG3_METHODS, GRPO, "entropy", title="Δ(a) entropy − GRPO",
               ylabel="Δ entropy (nats/token)")
    diff_panel(ax[1, 1], c, FIG3_METHODS, GRPO, ACC, title="Δ(b) test accuracy − GRPO",
               ylabel="Δ accuracy (points)", scale=100.0, summary=False)
    figure_legend(fig, ax.ravel(), extra=[(summary_handle(), SUMMARY_LABEL)], ncol=3)
    fig.suptitle(f"Figure 3: advantage flip test (Sec. 3.2). Bottom: method − GRPO, paired by seed;\n{BANDS}",
                 fontsize=10)
    return _save(fig, path)


def fig4_dynamics(curves: pa.Table | None, path: str | Path,
                  pairs: Sequence[tuple[float, float]] = ((0.9, 0.4),)) -> Path:
    """Figure 4 (a-c): training reward, entropy and test accuracy of the baselines and
    AsymGRPO at the config's grid.betas pairs."""
    c = curves_or_empty(curves)
    specs = FIG4_BASELINES + [("asym", float(a), float(b)) for a, b in pairs]
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    ax = fig.subplots(1, 3)
    idx: dict[tuple[Any, Any], int] = {}
    panel(ax[0], c, specs, "reward_mean", title="(a) training reward", ylabel="mean reward", asym_index=idx,
          legend=False)
    panel(ax[1], c, specs, "entropy", title="(b) policy entropy", ylabel="entropy (nats/token)", asym_index=idx,
          legend=False)
    panel(ax[2], c, specs, ACC, title="(c) test accuracy (greedy evaluations)", ylabel="accuracy",
          asym_index=idx, legend=False, dodge=True)
    figure_legend(fig, ax)
    fig.suptitle(f"Figure 4 (a-c): training dynamics; {BANDS} (unpaired)", fontsize=10)
    return _save(fig, path)


ADAPTIVE: Spec = ("asym_adaptive", None, None)
#: Fixed methods the schedule's entropy is compared with (claim 7's references).
SCHEDULE_REFS: list[Spec] = [("reinforce", None, None), ("grpo", None, None), ("asym", 0.9, 0.4)]


def fig_schedule(curves: pa.Table | None, path: str | Path) -> Path | None:
    """The adaptive beta schedule (asym_adaptive), or None when no such run exists: (a) the
    betas each step used, (b) entropy relative to the schedule's target H* of the same seed,
    for the schedule and the fixed references (claim 7 scores the same ratio over the second
    half of training, shaded)."""
    c = curves_or_empty(curves)
    bp, bn = run_curves(c, ADAPTIVE, "step_beta_pos"), run_curves(c, ADAPTIVE, "step_beta_neg")
    if not bp:
        return None
    target = {k: next((v for _, v in sorted(c_.items()) if math.isfinite(v)), math.nan)
              for k, c_ in run_curves(c, ADAPTIVE, "entropy_target").items()}
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.subplots(1, 2)
    color = COLORS["asym_adaptive"]
    draw_runs(ax[0], bp, "β₊ of AsymGRPO-Adaptive", {"color": color})
    draw_runs(ax[0], bn, "β₋ of AsymGRPO-Adaptive", {"color": color, "linestyle": "--"})
    axes_style(ax[0], "(a) the betas each step used", "beta")
    last = max((s for runs in (bp, bn) for c_ in runs.values() for s in c_), default=1)
    ax[1].axvspan(last / 2, last, color="#f0f0f0", zorder=0, linewidth=0,
                  label="second half: claim 7's tracking-error window")
    idx: dict[tuple[Any, Any], int] = {}
    drawn = []
    for spec in [ADAPTIVE, *SCHEDULE_REFS]:
        runs = run_curves(c, spec, "entropy")
        rel = {k: {s: v / target[k] for s, v in c_.items()} for k, c_ in runs.items()
               if math.isfinite(target.get(k, math.nan)) and target[k] > 0}
        if rel:
            draw_runs(ax[1], rel, spec_label(spec), spec_style(spec, idx))
            drawn.append(spec)
    ax[1].axhline(1.0, color="black", linewidth=0.9, label="target H* (same seed)", zorder=1)
    axes_style(ax[1], "(b) entropy / target", "H / H*")
    missing = [spec_label(s) for s in SCHEDULE_REFS if s not in drawn]
    if missing:
        note(ax[1], "missing runs:\n" + "\n".join(missing))
    figure_legend(fig, ax, ncol=4)
    fig.suptitle(f"Adaptive beta schedule: {BANDS}", fontsize=10)
    return _save(fig, path)


#: Figure 4d's colour scale: diverging around the reference, half-range at least this many
#: points (Avg. x 100), so gaps within about one seed standard deviation at this scale
#: (the mechanism testbed's seeds scatter by 1-2 points) are drawn pale, never at full contrast.
GRID_MIN_HALF_RANGE = 3.0
GRID_REFERENCES: list[Spec] = [GRPO, REINFORCE]  # the first one with runs is the reference


def grid_cell_text(row: dict[str, Any], mark: str = "") -> str:
    """A Figure 4d cell: "69.62\n± 0.90\nn=5" (the ± line only with two or more seeds), then
    ``mark`` (the paired difference to the reference) on its own line when given."""
    n = row.get("n_seeds") or 1
    std = row.get("std")
    spread = f"\n± {std:.2f}" if n > 1 and std is not None and not math.isnan(std) else ""
    return f"{row['mean']:.2f}{spread}\nn={n}" + (f"\n{mark}" if mark else "")


def run_avgs(scores: pa.Table | None, checkpoint: str | int | None = "final") -> dict[Spec, dict[str, float]]:
    """Per run, the Avg. of Table 2 (mean Avg@k x 100 over the benchmarks, at the reported
    checkpoint: each run's final evaluated step, or ``checkpoint``), as {spec: {pair_key: avg}}.
    A run missing a benchmark at that step has no Avg. (as table2.sql)."""
    from .aggregate import parse_checkpoint

    out: dict[Spec, dict[str, float]] = {}
    if scores is None or scores.num_rows == 0:
        return out
    step = parse_checkpoint(checkpoint)
    rows = [r for r in scores.to_pylist() if r["method"] != "base"]
    n_bench = len({r["benchmark"] for r in rows})
    by_run: dict[str, list[dict]] = {}
    for r in rows:
        by_run.setdefault(r["run_id"], []).append(r)
    for rid, rs in sorted(by_run.items()):
        at = max(r["step"] for r in rs) if step is None else step
        vals = [r["avg_at_k"] for r in rs if r["step"] == at and r["avg_at_k"] is not None]
        if len(vals) != n_bench:
            continue
        r0 = rs[0]
        spec: Spec = ((r0["method"], float(r0["beta_pos"]), float(r0["beta_neg"])) if r0["method"] == "asym"
                      else (r0["method"], None, None))
        out.setdefault(spec, {})[pair_key(rid)] = 100.0 * float(np.mean(vals))
    return out


def grid_mark(cell: Mapping[str, float], ref: Mapping[str, float], ref_label: str) -> str:
    """"Δ +1.30 vs GRPO *": the cell's mean paired difference to the reference over the seeds
    both have, * when a two-sided paired t-test gives p < 0.05 with >= 3 seeds (claims.stats),
    "n.s." otherwise, "n<3" with fewer paired seeds."""
    from .claims.stats import MIN_SEEDS, paired_test

    keys = sorted(set(cell) & set(ref))
    if not keys:
        return ""
    diffs = [cell[k] - ref[k] for k in keys]
    mean = float(np.mean(diffs))
    if len(keys) < MIN_SEEDS:
        return f"Δ {mean:+.2f} vs {ref_label} (n<{MIN_SEEDS})"
    t = paired_test(diffs, 1 if mean >= 0 else -1)
    if t.p is None:  # every seed the same difference
        sig = t.verdict == "holds"
    else:
        sig = min(1.0, 2.0 * t.p) < 0.05
    return f"Δ {mean:+.2f} vs {ref_label} " + ("*" if sig else "n.s.")


def grid_figure(grid: pa.Table | None, scores: pa.Table | None = None, checkpoint: str | int | None = "final",
                min_half_range: float = GRID_MIN_HALF_RANGE) -> Figure:
    """Figure 4d (see :func:`grid_heatmap`) as a matplotlib Figure."""
    rows = [] if grid is None else [r for r in grid.to_pylist() if r["mean"] is not None]
    fig = Figure(figsize=(5.8, 5.0), layout="constrained")
    ax = fig.subplots(1, 1)
    if not rows:
        ax.set_title("Figure 4d: Avg. accuracy over the (βpos, βneg) grid", fontsize=10)
        ax.set_axis_off()
        note(ax, "no evaluated AsymGRPO runs yet\n(grid.grid / grid.betas; `snakemake grid`)", big=True)
        return fig
    bps = sorted({r["beta_pos"] for r in rows}, reverse=True)
    bns = sorted({r["beta_neg"] for r in rows})
    mat = np.full((len(bps), len(bns)), math.nan)
    cell: dict[tuple[int, int], dict] = {}
    for r in rows:
        i, j = bps.index(r["beta_pos"]), bns.index(r["beta_neg"])
        mat[i, j] = r["mean"]
        cell[i, j] = r
    per_run = run_avgs(scores, checkpoint)
    ref_spec = next((s for s in GRID_REFERENCES if per_run.get(s)), None)
    if ref_spec is not None:
        ref_runs = per_run[ref_spec]
        ref_label = spec_label(ref_spec)
        centre = float(np.mean(list(ref_runs.values())))
        centre_text = f"{ref_label} {centre:.2f} (n={len(ref_runs)})"
    else:
        ref_runs, ref_label = {}, ""
        centre = float(np.nanmean(mat))
        centre_text = f"the grid's mean {centre:.2f} (no GRPO / REINFORCE scores given)"
    half = max(float(min_half_range), float(np.nanmax(np.abs(mat - centre))))
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, aspect="auto", vmin=centre - half, vmax=centre + half)
    best = np.nanmax(mat)
    for i in range(len(bps)):
        for j in range(len(bns)):
            if math.isnan(mat[i, j]):
                continue
            r = cell[i, j]
            mark = ""
            if ref_runs:
                mark = grid_mark(per_run.get(("asym", float(r["beta_pos"]), float(r["beta_neg"])), {}),
                                 ref_runs, ref_label)
            dark = abs(mat[i, j] - centre) / half > 0.6
            # mean ± std and n in every cell, and the paired test against the reference: the
            # colour alone must not carry a gap the seeds do not support.
            ax.text(j, i, grid_cell_text(r, mark), ha="center", va="center", fontsize=7,
                    color="white" if dark else "black", fontweight="bold" if mat[i, j] == best else "normal")
    ax.set_xticks(range(len(bns)), [f"{b:g}" for b in bns])
    ax.set_yticks(range(len(bps)), [f"{b:g}" for b in bps])
    ax.set_xlabel("βneg", fontsize=9)
    ax.set_ylabel("βpos", fontsize=9)
    ax.set_title("Figure 4d: Avg. accuracy over the (βpos, βneg) grid\n"
                 f"colour: centred on {centre_text}, half-range ≥ {min_half_range:g} points;\n"
                 + ("Δ: paired by seed, * = two-sided paired t-test p < 0.05" if ref_runs
                    else "no per-seed scores: no paired test"), fontsize=8.5)
    fig.colorbar(im, ax=ax, label="Avg. (Avg@k x 100)")
    return fig


def grid_heatmap(grid: pa.Table | None, path: str | Path, *, scores: pa.Table | None = None,
                 checkpoint: str | int | None = "final") -> Path:
    """Figure 4d: Avg. accuracy (x 100) over the (beta_pos, beta_neg) grid, each cell annotated
    with mean ± sample std over seeds and n; empty cells = not run. The colour scale diverges
    around a reference, GRPO's Avg. (else REINFORCE's) from ``scores`` (RUN_SCORES), else the
    grid's mean, with a half-range of at least GRID_MIN_HALF_RANGE points; with ``scores``
    each cell also shows its paired difference to the reference, * when significant."""
    return _save(grid_figure(grid, scores, checkpoint), path)
