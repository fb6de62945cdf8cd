"""Figures 1-4 of the paper, drawn from the aggregated artifacts (matplotlib, PNG).

Why it exists: the report shows the same views as the paper so a run can be compared with
it at a glance, and a figure must show what ``asym claims`` tests: a gap that holds is
visible, a gap that does not is never drawn as a strong contrast. Each function takes an
aggregate table (asymcli.analysis.aggregate.CURVES / GRID / RUN_SCORES) and writes one PNG atomically.

- Level curves: the mean over seeds with its 95% t confidence band over seeds (unpaired; no
  band with one seed).
- Test accuracy: Figure 4 plots Avg@k (x 100, mean over the benchmarks, from RUN_SCORES), what
  the claims test; Figures 2-3 plot the greedy evaluations (``eval_greedy_acc``, no EMA, which
  would mix in the shared base accuracy of step 0) and say so in every accuracy title. Bounded
  quantities (fractions, accuracies, betas) have their bands cut to the possible range.
- Paired-difference panels (Figs. 2-4, second row): method − reference per step, paired by
  seed (:func:`pair_key`, :func:`paired_diff`), the mean difference with its 95% t CI band over
  seeds (the interval of ``asymcli.analysis.claims.stats.paired_test``) and the zero line; at
  the right edge of a per-step metric's panel, the mean over steps (the value per seed that
  ``asym claims`` tests) with its paired 95% CI (thin bar) and 90% CI (thick bar): the thick bar
  clears 0 on the claimed side exactly when the claims' one-sided test at 0.05 says "holds".
  Figure 4 (f) and :func:`claims_figure` draw every seed's paired difference with the same bars.
- Figure 4d: colour = each cell's mean paired difference in Avg. to a reference (GRPO, else
  REINFORCE), the tested quantity, diverging around 0 with a half-range of at least
  ``GRID_MIN_HALF_RANGE`` points; each cell prints it with its paired n and the two-sided
  paired p, Holm-adjusted over the tested cells; cells never run are hatched.

Methods with no runs are named in the figure's title (a box inside a panel would cover data);
a panel with nothing to draw says so; every drawn line has a legend entry. Departures from
the paper: one model per figure (the paper stacks two backbones as rows; here the second row
holds the paired differences); Figure 4 and 4d are two files (4d belongs to the `grid` target). Uses matplotlib's object API (no
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
import matplotlib.patches
import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from .. import artifacts
from .aggregate import row_label  # noqa: F401
# paired_diff, run_curves, series, zero_label, row_label: re-exported, tests use figures.<name>
from .plotting import (COLORS, STRIP_LABELS, SUMMARY_LABEL, Spec, axes_style, curves_or_empty,  # noqa: F401
                       diff_panel, draw_runs, figure_legend, interval_row, note, pair_key, paired_diff, panel,
                       run_curves, seed_strip, series, spec_label, spec_style, strip_axes, summary_handle,
                       zero_label)

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


#: The caption of each figure in the report's index.md (asymcli/analysis/report.py).
FIGURE_CAPTIONS = {
    "figures/fig1_advantages.png": "Figure 1: advantage per rollout vs group accuracy p, (a) correct and "
                                   "(b) failed rollouts, for several β, with the flipped EntDecrease / "
                                   "EntIncrease channels (G = 8). Computed by the advantage registry.",
    "figures/fig2_channels.png": "Figure 2: entropy, test accuracy (greedy evaluations, not the Avg@k the "
                                 "claims test; 95% CI), none-solved fraction and log-prob gain on correct "
                                 "rollouts for REINFORCE, Pos-Only, Neg-Only and REINFORCE w/ entropy reg.; "
                                 "bottom row: each method minus REINFORCE, paired by seed, mean and 95% CI.",
    "figures/fig3_flip.png": "Figure 3: advantage flip test, entropy and greedy test accuracy (not the Avg@k "
                             "the claims test) of GRPO, EntDecrease, EntIncrease; bottom row: each minus "
                             "GRPO, paired by seed, mean and 95% CI.",
    "figures/fig4_dynamics.png": "Figure 4: training reward, entropy and test accuracy (Avg@k; greedy where no "
                                 "samples, said so) as unpaired means with 95% CI; bottom row: paired by seed, "
                                 "entropy and Avg@k minus GRPO, and every seed's Avg@k difference at the "
                                 "checkpoint with 95% (thin) and 90% (thick) CIs, what claim 5a tests.",
    "figures/fig_schedule.png": "Beta schedule: asym_adaptive's betas per step; entropy / the same seed's "
                                "target for it, REINFORCE, GRPO, AsymGRPO (0.9, 0.4) (95% CI over seeds).",
    "figures/fig4d_grid.png": "Figure 4d: the (βpos, βneg) grid; colour = each cell's mean paired "
                              "difference in Avg. to GRPO (the tested quantity, diverging around 0, half-range "
                              "≥ 3 points), with its paired n and two-sided p Holm-adjusted over the cells "
                              "(* < 0.05); ± = sd over seeds of the cell's Avg.; hatched = not run.",
}


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
#: What a greedy accuracy panel says about itself: `asym claims` tests Avg@k, not greedy accuracy.
GREEDY = "greedy evaluations, not the Avg@k the claims test"
FRACTION = (0.0, 1.0)  # the possible range of a fraction or an accuracy: CIs are cut to it


def _not_run(missing: Sequence[str]) -> str:
    """"; not run: X, Y" for a figure title (never a box over a panel's data)."""
    names = list(dict.fromkeys(m for m in missing if m))
    return f"; not run: {', '.join(names)}" if names else ""


def fig2_channels(curves: pa.Table | None, path: str | Path) -> Path:
    """Figure 2: entropy, greedy test accuracy, none-solved fraction, log-prob gain on correct
    rollouts for REINFORCE, Pos-Only, Neg-Only and REINFORCE w/ entropy reg. (top row), and
    each minus REINFORCE, paired by seed (bottom row). Panel (c) shows the none-solved fraction
    only (the one claim 3a tests): with the all-solved fraction it held 8 overlapping bands."""
    c = curves_or_empty(curves)
    fig = Figure(figsize=(16, 8.2), layout="constrained")
    ax = fig.subplots(2, 4)
    top, bot = ax[0], ax[1]
    kw: dict[str, Any] = {"legend": False}
    missing = panel(top[0], c, FIG2_METHODS, "entropy", title="(a) policy entropy", ylabel="entropy (nats/token)", **kw)
    missing += panel(top[1], c, FIG2_METHODS, ACC, title=f"(b) test accuracy ({GREEDY})", ylabel="accuracy",
                     dodge=True, clip=FRACTION, **kw)
    missing += panel(top[2], c, FIG2_METHODS, "none_solved_frac", title="(c) none-solved fraction",
                     ylabel="fraction of groups with no correct rollout", clip=FRACTION, **kw)
    missing += panel(top[3], c, FIG2_METHODS, "logprob_gain_correct", title="(d) log-prob gain, correct rollouts",
                     ylabel="E[log π_new − log π_old]", **kw)
    ref = "REINFORCE"
    diff_panel(bot[0], c, FIG2_METHODS, REINFORCE, "entropy", title=f"Δ(a) entropy − {ref}",
               ylabel="Δ entropy (nats/token)")
    diff_panel(bot[1], c, FIG2_METHODS, REINFORCE, ACC, title=f"Δ(b) greedy test accuracy − {ref}",
               ylabel="Δ greedy accuracy (points)", scale=100.0, summary=False)
    diff_panel(bot[2], c, FIG2_METHODS, REINFORCE, "none_solved_frac", title=f"Δ(c) none-solved − {ref}",
               ylabel="Δ fraction of groups")
    diff_panel(bot[3], c, FIG2_METHODS, REINFORCE, "logprob_gain_correct", title=f"Δ(d) log-prob gain − {ref}",
               ylabel="Δ E[log π_new − log π_old]")
    figure_legend(fig, list(top) + list(bot), extra=[(summary_handle(), SUMMARY_LABEL)], ncol=4)
    fig.suptitle("Figure 2: channel isolation (Sec. 3.1). Top: mean over seeds; bottom: method − REINFORCE, "
                 f"paired by seed; {BANDS}; (b): {GREEDY}{_not_run(missing)}", fontsize=10)
    return _save(fig, path)


def fig3_flip(curves: pa.Table | None, path: str | Path) -> Path:
    """Figure 3: the advantage flip test, entropy and test accuracy (top), each minus GRPO,
    paired by seed (bottom)."""
    c = curves_or_empty(curves)
    fig = Figure(figsize=(9, 8.0), layout="constrained")
    ax = fig.subplots(2, 2)
    missing = panel(ax[0, 0], c, FIG3_METHODS, "entropy", title="(a) policy entropy",
                    ylabel="entropy (nats/token)", legend=False)
    missing += panel(ax[0, 1], c, FIG3_METHODS, ACC, title="(b) test accuracy (greedy evaluations)", ylabel="accuracy",
                     legend=False, dodge=True, clip=FRACTION)
    diff_panel(ax[1, 0], c, FIG3_METHODS, GRPO, "entropy", title="Δ(a) entropy − GRPO",
               ylabel="Δ entropy (nats/token)")
    diff_panel(ax[1, 1], c, FIG3_METHODS, GRPO, ACC, title="Δ(b) greedy test accuracy − GRPO",
               ylabel="Δ greedy accuracy (points)", scale=100.0, summary=False)
    figure_legend(fig, ax.ravel(), extra=[(summary_handle(), SUMMARY_LABEL)], ncol=3)
    fig.suptitle(f"Figure 3: advantage flip test (Sec. 3.2). Bottom: method − GRPO, paired by seed;\n{BANDS}; "
                 f"(b): {GREEDY}{_not_run(missing)}", fontsize=10)
    return _save(fig, path)


def fig4_dynamics(curves: pa.Table | None, path: str | Path,
                  pairs: Sequence[tuple[float, float]] = ((0.9, 0.4),), *, scores: pa.Table | None = None,
                  checkpoint: str | int | None = "final") -> Path:
    """Figure 4: training reward, entropy and test accuracy of the baselines and AsymGRPO at
    the config's grid.betas pairs (top, means over seeds: unpaired, so a band holds the spread
    between seeds and bases), and what the claims test (bottom, paired by seed): (d) entropy −
    GRPO per step with the mean over steps (claim 5c), (e) the accuracy − GRPO per evaluation,
    (f) every seed's Avg@k difference at the reported checkpoint against GRPO and REINFORCE with
    its 95% and 90% CIs (claim 5a). Accuracy is Avg@k (x 100, mean over the benchmarks) from
    ``scores`` (RUN_SCORES); without them the panels plot greedy evaluations and say so."""
    c = curves_or_empty(curves)
    asym = [("asym", float(a), float(b)) for a, b in pairs]
    specs = FIG4_BASELINES + asym
    avg = avg_curves(scores)
    fig = Figure(figsize=(13, 8.4), layout="constrained")
    ax = fig.subplots(2, 3)
    idx: dict[tuple[Any, Any], int] = {}
    missing = panel(ax[0, 0], c, specs, "reward_mean", title="(a) training reward", ylabel="mean reward",
                    asym_index=idx, legend=False)
    missing += panel(ax[0, 1], c, specs, "entropy", title="(b) policy entropy", ylabel="entropy (nats/token)",
                     asym_index=idx, legend=False)
    if avg:
        what = "Avg@k x 100, mean over the benchmarks (what the claims test)"
        missing += panel(ax[0, 2], c, specs, "avg", title="(c) test accuracy, Avg@k", ylabel="Avg@k x 100",
                         asym_index=idx, legend=False, dodge=True, clip=(0.0, 100.0),
                         runs_of=lambda sp: avg.get(sp, {}))
    else:
        what = f"{GREEDY} (no samples: no Avg@k)"
        missing += panel(ax[0, 2], c, specs, ACC, title=f"(c) test accuracy ({GREEDY})", ylabel="accuracy",
                         asym_index=idx, legend=False, dodge=True, clip=FRACTION)
    refs = [GRPO, REINFORCE]
    diff_panel(ax[1, 0], c, [*asym, REINFORCE], GRPO, "entropy", title="Δ(b) entropy − GRPO (claim 5c)",
               ylabel="Δ entropy (nats/token)", asym_index=idx)
    if avg:
        diff_panel(ax[1, 1], c, [*asym, REINFORCE], GRPO, "avg", title="Δ(c) Avg@k − GRPO, per evaluation",
                   ylabel="Δ Avg@k (points)", summary=False, asym_index=idx, runs_of=lambda sp: avg.get(sp, {}))
        at = run_avgs(scores, checkpoint)
        rows = []
        for a in asym:
            for r in refs:
                keys = sorted(set(at.get(a, {})) & set(at.get(r, {})))
                rows.append((f"AsymGRPO ({a[1]:g}, {a[2]:g})\n− {spec_label(r)}", [at[a][k] - at[r][k] for k in keys],
                             COLORS.get(r[0])))
        step = "each run's final evaluation" if checkpoint in (None, "final") else f"step {checkpoint}"
        seed_strip(ax[1, 2], rows, title=f"Δ Avg@k at {step}, paired by seed (claim 5a)",
                   xlabel="Δ Avg@k (points)")
    else:
        diff_panel(ax[1, 1], c, [*asym, REINFORCE], GRPO, ACC, title="Δ(c) greedy test accuracy − GRPO",
                   ylabel="Δ greedy accuracy (points)", scale=100.0, summary=False, asym_index=idx)
        ax[1, 2].set_axis_off()
        note(ax[1, 2], "no Avg@k scores (samples.parquet) given:\nthe paired Avg@k test of claim 5a\ncannot be "
             "drawn; see `asym claims`", big=True)
    figure_legend(fig, ax.ravel(), extra=[(summary_handle(), SUMMARY_LABEL)], ncol=4)
    fig.suptitle(f"Figure 4: training dynamics. Top: mean over seeds, {BANDS}, unpaired (includes the spread "
                 f"between seeds and bases); bottom: paired by seed, what the claims test.\nAccuracy: {what}"
                 f"{_not_run(missing)}", fontsize=10)
    return _save(fig, path)


def avg_curves(scores: pa.Table | None) -> dict[Spec, dict[str, dict[int, float]]]:
    """Per run and evaluated step, the Avg. of Table 2 (mean Avg@k x 100 over the benchmarks),
    as {spec: {pair_key: {step: avg}}}; a step missing a benchmark is left out (as table2.sql)."""
    out: dict[Spec, dict[str, dict[int, float]]] = {}
    if scores is None or scores.num_rows == 0:
        return out
    rows = [r for r in scores.to_pylist() if r["method"] != "base"]
    n_bench = len({r["benchmark"] for r in rows})
    by: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        by.setdefault((r["run_id"], r["step"]), []).append(r)
    for (rid, step), rs in sorted(by.items()):
        vals = [r["avg_at_k"] for r in rs if r["avg_at_k"] is not None]
        if len(vals) != n_bench:
            continue
        r0 = rs[0]
        spec: Spec = ((r0["method"], float(r0["beta_pos"]), float(r0["beta_neg"])) if r0["method"] == "asym"
                      else (r0["method"], None, None))
        out.setdefault(spec, {}).setdefault(pair_key(rid), {})[int(step)] = 100.0 * float(np.mean(vals))
    return out


ADAPTIVE: Spec = ("asym_adaptive", None, None)
#: Fixed methods the schedule's entropy is compared with (claim 7's references, with every
#: AsymGRPO pair present).
SCHEDULE_REFS: list[Spec] = [("reinforce", None, None), ("grpo", None, None), ("pos_only", None, None)]


def schedule_specs(c: pa.Table) -> tuple[list[Spec], list[Spec]]:
    """(schedule groups, fixed references) present in the curves: ``asym_adaptive`` and one
    group per target of its own (``asym_adaptive_t0.9_s0``); claim 7's references."""
    rows = c.select(["method", "beta_pos", "beta_neg"]).to_pylist() if c.num_rows else []
    fin = lambda x: None if x is None or not math.isfinite(float(x)) else float(x)  # noqa: E731
    specs = {(r["method"], fin(r["beta_pos"]), fin(r["beta_neg"])) for r in rows}
    scheds = sorted((sp for sp in specs if sp[0] == "asym_adaptive"), key=lambda sp: (sp[1] is not None, sp[1] or 0))
    pairs = sorted(sp for sp in specs if sp[0] == "asym" and sp[1] is not None and sp[2] is not None)
    return scheds, [sp for sp in SCHEDULE_REFS if sp in specs] + pairs


def fig_schedule(curves: pa.Table | None, path: str | Path) -> Path | None:
    """The adaptive beta schedule (asym_adaptive), or None when no such run exists: (a) the
    betas each step used, per target (mean over seeds, band = spread), steps where the
    controller sat at its bounds marked; (b) entropy in nats/token for every schedule and
    fixed reference, each target drawn as a dashed line (its mean over seeds): claim 7 scores
    |H - H*| over the second half of training, shaded."""
    c = curves_or_empty(curves)
    scheds, refs = schedule_specs(c)
    if not scheds or not any(run_curves(c, sp, "step_beta_pos") for sp in scheds):
        return None
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    ax = fig.subplots(1, 2)
    idx: dict[tuple[Any, Any], int] = {}
    last = 1
    for sp in scheds:
        style = spec_style(sp, idx)
        bp, bn = run_curves(c, sp, "step_beta_pos"), run_curves(c, sp, "step_beta_neg")
        name = spec_label(sp)
        draw_runs(ax[0], bp, f"β₊, {name}", dict(style), clip=FRACTION)
        draw_runs(ax[0], bn, f"β₋, {name}", {**style, "alpha": 0.55}, clip=FRACTION)
        sat = run_curves(c, sp, "schedule_saturated")
        frac: dict[int, list[float]] = {}
        for c_ in sat.values():
            for st, v in c_.items():
                frac.setdefault(st, []).append(v)
        hit = sorted(st for st, vs in frac.items() if np.mean(vs) >= 0.5)
        if hit:  # most seeds at the bound: the run is the fixed pair there
            ax[0].plot(hit, [1.01] * len(hit), "|", color=style.get("color"), markersize=6,
                       label=f"{name}: most seeds at the bounds (first at step {hit[0]})")
        last = max([last, *(s for runs in (bp, bn) for c_ in runs.values() for s in c_)])
    axes_style(ax[0], "(a) the betas each step used (bands cut to [0, 1])", "beta")
    ax[0].set_ylim(-0.02, 1.04)
    ax[1].axvspan(last / 2, last, color="#f0f0f0", zorder=0, linewidth=0,
                  label="second half: claim 7's tracking-error window")
    drawn = []
    idx2: dict[tuple[Any, Any], int] = {}
    for sp in [*scheds, *refs]:
        runs = run_curves(c, sp, "entropy")
        if runs:
            draw_runs(ax[1], runs, spec_label(sp), spec_style(sp, idx if sp in scheds else idx2))
            drawn.append(sp)
    for sp in scheds:
        targets = [next((v for _, v in sorted(c_.items()) if math.isfinite(v)), math.nan)
                   for c_ in run_curves(c, sp, "entropy_target").values()]
        targets = [t for t in targets if math.isfinite(t)]
        if targets:
            ax[1].axhline(float(np.mean(targets)), color=spec_style(sp, idx).get("color"), linestyle=":",
                          linewidth=1.2, label=f"target H* of {spec_label(sp)} (mean over seeds)", zorder=1)
    axes_style(ax[1], "(b) entropy (nats/token) and the targets", "H")
    missing = [spec_label(s) for s in SCHEDULE_REFS if s not in drawn]
    figure_legend(fig, ax, ncol=3)
    fig.suptitle(f"Adaptive beta schedule: {BANDS}{_not_run(missing)}", fontsize=10)
    return _save(fig, path)


#: Figure 4d's colour scale: diverging around 0 (the paired difference to the reference) or,
#: without per-seed scores, around the grid's mean level; half-range at least this many points
#: (Avg. x 100), so gaps within about one seed standard deviation at this scale (the mechanism
#: testbed's seeds scatter by 1-2 points) are drawn pale, never at full contrast.
GRID_MIN_HALF_RANGE = 3.0
GRID_REFERENCES: list[Spec] = [GRPO, REINFORCE]  # the first one with runs is the reference


def grid_cells(grid: pa.Table | None, scores: pa.Table | None = None, checkpoint: str | int | None = "final",
               diffs: Mapping[tuple[float, float], Mapping[str, float]] | None = None,
               ref: Spec | None = None) -> tuple[list[dict[str, Any]], Spec | None]:
    """Figure 4d's cells and its reference (GRPO, else REINFORCE, with per-seed scores; else
    None). Each cell: beta_pos, beta_neg, the level (mean, std over seeds, n_seeds from GRID)
    and, with a reference, the paired difference to it over the seeds both have: ``d_n``,
    ``d_mean``, ``d_lo`` / ``d_hi`` (95% t CI), ``p`` (two-sided paired t-test: the grid claims
    no direction) and ``p_holm`` (Holm over every tested cell, >= 3 paired seeds).
    ``diffs`` (with ``ref``): the per-seed paired differences themselves, {(beta_pos, beta_neg):
    {seed key: cell − reference}} (e.g. from a claims.json), instead of ``scores``."""
    from .claims.stats import MIN_SEEDS, holm, paired_test

    rows = [] if grid is None else [r for r in grid.to_pylist() if r["mean"] is not None]
    if diffs is None:
        per_run = run_avgs(scores, checkpoint)
        ref = next((sp for sp in GRID_REFERENCES if per_run.get(sp)), None)
        diffs = {} if ref is None else {
            (bp, bn): {k: v - per_run[ref][k] for k, v in runs.items() if k in per_run[ref]}
            for (m, bp, bn), runs in per_run.items() if m == "asym"}
    cells = []
    for r in rows:
        c = {k: r[k] for k in ("beta_pos", "beta_neg", "mean", "std", "n_seeds")}
        c.update(d_n=0, d_mean=None, d_lo=None, d_hi=None, p=None, p_holm=None)
        if ref is not None:
            d = next((v for (bp, bn), v in diffs.items()
                      if math.isclose(bp, r["beta_pos"]) and math.isclose(bn, r["beta_neg"])), {})
            if d:
                t = paired_test(list(d.values()), 1)
                c.update(d_n=t.n, d_mean=t.mean, d_lo=t.ci_low, d_hi=t.ci_high)
                if t.n >= MIN_SEEDS:
                    c["p"] = 1.0 if t.p is None and t.mean == 0 else (0.0 if t.p is None else
                                                                    min(1.0, 2.0 * min(t.p, t.p_opposite)))
        cells.append(c)
    for c, ph in zip(cells, holm([c["p"] for c in cells])):
        c["p_holm"] = ph
    return cells, ref


def grid_cell_text(c: Mapping[str, Any]) -> str:
    """A Figure 4d cell: with a paired test "Δ +0.71 *\nn=3, p_Holm 0.04\n69.6 ± 0.9" (the Δ
    line is what the colour shows; * = Holm p < 0.05; the last line the level, mean ± sd over
    its seeds); without one "69.6 ± 0.9\nn=5"."""
    sd = c.get("std")
    n = c.get("n_seeds") or 1
    level = f"{c['mean']:.1f}" + (f" ± {sd:.1f}" if n > 1 and sd is not None and math.isfinite(sd) else "")
    if c.get("d_mean") is None:
        return f"{level}\nn={n}"
    if c.get("p_holm") is None:
        return f"Δ {c['d_mean']:+.2f}\nn={c['d_n']}: no test\n{level}"
    star = " *" if c["p_holm"] < 0.05 else ""
    return f"Δ {c['d_mean']:+.2f}{star}\nn={c['d_n']}, p_Holm {c['p_holm']:.2g}\n{level}"


def run_avgs(scores: pa.Table | None, checkpoint: str | int | None = "final") -> dict[Spec, dict[str, float]]:
    """Per run, the Avg. of Table 2 (mean Avg@k x 100 over the benchmarks, at the reported
    checkpoint: each run's final evaluated step, or ``checkpoint``), as {spec: {pair_key: avg}}.
    A run missing a benchmark at that step has no Avg. (as table2.sql)."""
    from .aggregate import parse_checkpoint

    step = parse_checkpoint(checkpoint)
    out: dict[Spec, dict[str, float]] = {}
    steps_of: dict[str, int] = {}  # run id -> its last evaluated step
    rid_of: dict[tuple[Spec, str], str] = {}
    for r in [] if scores is None else scores.to_pylist():
        if r["method"] != "base":
            steps_of[r["run_id"]] = max(steps_of.get(r["run_id"], -1), r["step"])
            sp: Spec = ((r["method"], float(r["beta_pos"]), float(r["beta_neg"])) if r["method"] == "asym"
                        else (r["method"], None, None))
            rid_of[sp, pair_key(r["run_id"])] = r["run_id"]
    for spec, runs in avg_curves(scores).items():
        for key, by_step in runs.items():
            at = steps_of[rid_of[spec, key]] if step is None else step
            if at in by_step:
                out.setdefault(spec, {})[key] = by_step[at]
    return out


def grid_figure(grid: pa.Table | None, scores: pa.Table | None = None, checkpoint: str | int | None = "final",
                min_half_range: float = GRID_MIN_HALF_RANGE,
                diffs: Mapping[tuple[float, float], Mapping[str, float]] | None = None,
                ref: Spec | None = None) -> Figure:
    """Figure 4d (see :func:`grid_heatmap`) as a matplotlib Figure (``diffs``, ``ref``: see
    :func:`grid_cells`)."""
    cells, ref = grid_cells(grid, scores, checkpoint, diffs, ref)
    fig = Figure(figsize=(6.4, 5.6), layout="constrained")
    ax = fig.subplots(1, 1)
    if not cells:
        ax.set_title("Figure 4d: Avg. accuracy over the (βpos, βneg) grid", fontsize=10)
        ax.set_axis_off()
        note(ax, "no evaluated AsymGRPO runs yet\n(grid.grid / grid.betas; `snakemake grid`)", big=True)
        return fig
    bps = sorted({c["beta_pos"] for c in cells}, reverse=True)
    bns = sorted({c["beta_neg"] for c in cells})
    paired = ref is not None
    mat = np.full((len(bps), len(bns)), math.nan)
    at: dict[tuple[int, int], dict] = {}
    for c in cells:
        i, j = bps.index(c["beta_pos"]), bns.index(c["beta_neg"])
        v = c["d_mean"] if paired else c["mean"]
        mat[i, j] = math.nan if v is None else v
        at[i, j] = c
    centre = 0.0 if paired else float(np.nanmean(mat))
    half = max(float(min_half_range), float(np.nanmax(np.abs(mat - centre))) if np.isfinite(mat).any() else 0.0)
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#ffffff")
    im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, aspect="auto", vmin=centre - half, vmax=centre + half)
    # cells never run are hatched and say so; the text's size follows the cell's
    size = max(5.0, min(8.0, 34.0 / max(len(bps), len(bns))))
    for i in range(len(bps)):
        for j in range(len(bns)):
            if (i, j) not in at:
                ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                                          edgecolor="#bbbbbb", linewidth=0))
                ax.text(j, i, "not run", ha="center", va="center", fontsize=size, color="#888888")
                continue
            c = at[i, j]
            dark = math.isfinite(mat[i, j]) and abs(mat[i, j] - centre) / half > 0.6
            ax.text(j, i, grid_cell_text(c), ha="center", va="center", fontsize=size,
                    color="white" if dark else "black",
                    fontweight="bold" if (c.get("p_holm") or 1.0) < 0.05 else "normal")
    ax.set_xticks(range(len(bns)), [f"{b:g}" for b in bns])
    ax.set_yticks(range(len(bps)), [f"{b:g}" for b in bps])
    ax.set_xlabel("βneg", fontsize=9)
    ax.set_ylabel("βpos", fontsize=9)
    if paired:
        lab = spec_label(ref)  # type: ignore[arg-type]
        title = (f"Figure 4d: AsymGRPO − {lab} over the (βpos, βneg) grid, paired by seed\n"
                 f"colour and Δ: mean paired difference in Avg. (points), n = paired seeds; p_Holm: two-sided\n"
                 f"paired t-test, Holm over the {sum(c['p'] is not None for c in cells)} tested cells (* < 0.05); "
                 "last line: Avg. mean ± sd over seeds")
        cbar_label = f"Δ Avg. vs {lab} (points, paired)"
    else:
        title = ("Figure 4d: Avg. accuracy over the (βpos, βneg) grid\n"
                 f"colour: the level, centred on the grid's mean {centre:.1f} (no per-seed scores:\n"
                 "no paired test, nothing tested); text: mean ± sd over seeds, n seeds")
        cbar_label = "Avg. (Avg@k x 100)"
    ax.set_title(title, fontsize=8)
    fig.colorbar(im, ax=ax, label=cbar_label)
    return fig


def grid_heatmap(grid: pa.Table | None, path: str | Path, *, scores: pa.Table | None = None,
                 checkpoint: str | int | None = "final") -> Path:
    """Figure 4d over the (beta_pos, beta_neg) grid. With per-seed ``scores`` (RUN_SCORES) of a
    reference (GRPO, else REINFORCE): each cell's colour is the tested quantity, its mean paired
    difference in Avg. to the reference (diverging around 0, half-range >= GRID_MIN_HALF_RANGE
    points), with the paired n, the two-sided paired t-test Holm-adjusted over the tested cells,
    and the level (mean ± sd over seeds). Without them the colour is the level around the grid's
    mean and the title says nothing is tested. Cells never run are hatched, "not run"."""
    return _save(grid_figure(grid, scores, checkpoint), path)


# ---------------------------------------------------------------------------
# The claims' own tests, from a claims payload (claims.json, pooled or not)
# ---------------------------------------------------------------------------

#: Row colour by the check's verdict: the colour says what the test says, nothing more.
VERDICT_COLORS = {"holds": "#1a9641", "fails": "#d7191c"}
OTHER_VERDICT = "#636363"  # trend, inconclusive, equivalent, insufficient


def claim_rows(check: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows :func:`claims_figure` draws for one check of a claims payload: each replication
    (pooled payloads; per-seed values keyed "r1:s0") then the pooled estimate, or the check
    alone. Each row: label, values, mean, ci95, ci90, p, n, verdict, colour. The intervals are
    those of the payload (the pooled one is the stratified test's), never recomputed here."""
    nan = math.nan

    def row(label: str, values: list[float], c: Mapping[str, Any]) -> dict[str, Any]:
        ci95 = (c["ci_low"], c["ci_high"]) if c.get("ci_low") is not None else (nan, nan)
        ci90 = (c["ci90_low"], c["ci90_high"]) if c.get("ci90_low") is not None else (nan, nan)
        if c.get("ci90_low") is None and not c.get("replications") and len(values) >= 2:
            from .claims.stats import paired_test  # a claims.json from before the 90% CI: its t interval

            t = paired_test(values, -1 if str(check["claimed"]).startswith("< 0") else 1)
            ci90 = (t.ci90_low, t.ci90_high) if t.ci90_low is not None else (nan, nan)
        return {"label": label, "values": values, "mean": c["mean"], "ci95": ci95, "ci90": ci90, "p": c.get("p"),
                "n": c["n"], "verdict": c["verdict"], "color": VERDICT_COLORS.get(c["verdict"], OTHER_VERDICT)}

    reps = check.get("replications") or []
    if not reps:
        return [row(f"n = {check['n']} seeds", list(check["per_seed"].values()), check)]
    out = []
    for i, r in enumerate(reps):
        if not r.get("n"):
            continue
        vals = [v for k, v in check["per_seed"].items() if k.startswith(f"r{i + 1}:")]
        out.append(row(f"r{i + 1}: {Path(str(r['replication'])).parent.name or r['replication']}", vals, r))
    out.append(row("pooled (fixed effect)", list(check["per_seed"].values()), check))
    return out


def claims_figure(payload: Mapping[str, Any], path: str | Path, ids: Sequence[str] | None = None,
                  title: str = "") -> Path:
    """The paired differences each tested check of ``payload`` (an `asym claims` result) rests
    on, one panel per check: every seed's difference (dots), the mean (diamond), the 95% CI
    (thin bar) and 90% CI (thick bar: clear of 0 on the claimed side exactly when the one-sided
    test says "holds"), per replication and pooled for a pooled payload. Colour = the row's
    verdict (green holds, red fails, grey otherwise). ``ids``: the checks to draw (default: every
    tested check with 2+ paired seeds)."""
    checks = [k for c in payload["claims"] if c.get("kind", "claim") == "claim" for k in c["checks"]
              if k.get("n", 0) >= 2 and k.get("verdict") != "measured"]
    if ids is not None:
        by_id = {k.get("id"): k for k in checks}
        checks = [by_id[i] for i in ids if i in by_id]
    ncol = 2 if len(checks) > 1 else 1
    nrow = max(1, math.ceil(len(checks) / ncol))
    fig = Figure(figsize=(6.2 * ncol, 0.6 + 1.9 * nrow), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
    for ax, k in zip(axes, checks):
        rows = claim_rows(k)
        labels = [r["label"] for r in rows]
        for i, r in enumerate(rows):
            text = f"n={r['n']}, p={r['p']:.2g}, {r['verdict']}" if r["p"] is not None else f"n={r['n']}, {r['verdict']}"
            interval_row(ax, len(rows) - 1 - i, r["values"], r["mean"], r["ci95"], r["ci90"], r["color"], text)
        role = {"primary": " [primary]", "secondary": " [secondary]"}.get(k.get("endpoint") or "", "")
        unit = f" ({k['unit']})" if k.get("unit") else ""
        strip_axes(ax, labels, title=f"{k.get('id', '')} {k['label']}{role}", xlabel=f"paired difference{unit}, "
                   f"claimed {k['claimed']}")
    for ax in axes[len(checks):]:
        ax.set_axis_off()
    if not checks:
        note(axes[0], "no tested check with 2 or more paired seeds", big=True)
    figure_legend(fig, axes, ncol=4)
    how = ("pooled: fixed effect, stratified by replication; " if payload.get("pooling") else "")
    fig.suptitle((title + "\n" if title else "") + f"What `asym claims` tests: per-seed paired differences; {how}"
                 "colour = verdict (green holds, red fails, grey neither)", fontsize=10)
    return _save(fig, path)
