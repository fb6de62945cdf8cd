"""The plotting helpers behind the paper's figures (asymcli/analysis/figures.py).

Series of the CURVES table per method, per-run curves paired by seed, the mean and 95% t
interval over seeds (:class:`Band`), and the drawing of them: level panels (:func:`panel`),
paired-difference panels (:func:`diff_panel`, with the mean-over-steps summary that
``asym claims`` tests), notes inside a panel, axes style and one legend per figure. Apart from
figures.py so that it keeps one function per paper figure. Matplotlib's object API only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure
from scipy.stats import t as _t

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
    "asym_adaptive": "#e6550d",
}
ASYM_STYLES = ["-", "--", ":", "-."]

Spec = tuple[str, "float | None", "float | None"]  # (method, beta_pos, beta_neg)


# ---------------------------------------------------------------------------
# Series from the CURVES table
# ---------------------------------------------------------------------------


def _rows_of(curves: pa.Table, spec: Spec) -> np.ndarray:
    """Boolean mask of the CURVES rows of ``spec``."""
    method, bp, bn = spec
    m = np.array(curves.column("method").to_pylist(), dtype=object)
    keep = m == method
    if method == "asym" and keep.any():
        keep &= np.isclose(curves.column("beta_pos").to_numpy(zero_copy_only=False).astype(float), bp)
        keep &= np.isclose(curves.column("beta_neg").to_numpy(zero_copy_only=False).astype(float), bn)
    elif method == "asym_adaptive" and keep.any():  # beta_pos holds a run's own target, else NaN
        t = curves.column("beta_pos").to_numpy(zero_copy_only=False).astype(float)
        keep &= np.isnan(t) if bp is None else np.isclose(t, bp)
    return keep


def series(curves: pa.Table, spec: Spec, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """(steps, mean over seeds, sample std over seeds, n seeds) of one column, NaNs skipped.
    None when no run of ``spec`` has a finite value of ``column``."""
    keep = _rows_of(curves, spec)
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


# ---------------------------------------------------------------------------
# Per-run curves, pairing by seed, mean and 95% t CI over seeds
# ---------------------------------------------------------------------------

RunCurves = dict[str, dict[int, float]]  # pairing key -> {step: value}


def pair_key(run_id: str) -> str:
    """The key that pairs runs of different methods: the run id's last ``_`` field, "s0" for
    ``grpo_s0`` / ``asym_bp0.9_bn0.4_s0`` (a multi-base layout's "b1s0" pairs the same way)."""
    return run_id.rsplit("_", 1)[-1]


def run_curves(curves: pa.Table, spec: Spec, column: str) -> RunCurves:
    """Per-run curves of ``spec``: {pair_key(run_id): {step: value}}, finite values only."""
    keep = _rows_of(curves, spec)
    out: RunCurves = {}
    if not keep.any():
        return out
    rids = np.array(curves.column("run_id").to_pylist(), dtype=object)[keep]
    steps = curves.column("step").to_numpy()[keep]
    vals = curves.column(column).to_numpy(zero_copy_only=False).astype(float)[keep]
    for rid, st, v in zip(rids, steps, vals):
        if math.isfinite(v):
            out.setdefault(pair_key(str(rid)), {})[int(st)] = float(v)
    return {k: out[k] for k in sorted(out)}


@dataclass(frozen=True)
class Band:
    """Per step: mean over seeds, its 95% two-sided t interval (NaN with one seed) and n."""

    steps: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)


def t_interval(xs: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): the two-sided t interval mean ± t_{(1+level)/2, n-1} sd / sqrt(n); at 0.95
    the interval of ``asymcli.analysis.claims.stats.paired_test``, at 0.90 the one whose side
    clears 0 exactly when its one-sided test at 0.05 does; lo = hi = NaN for one value."""
    a = np.asarray(xs, float)
    mean = float(a.mean())
    if len(a) < 2:
        return mean, math.nan, math.nan
    sd = float(a.std(ddof=1))
    if sd <= 1e-12 * max(1.0, float(np.abs(a).max())):
        return mean, mean, mean
    half = float(_t.ppf((1 + level) / 2, len(a) - 1)) * sd / math.sqrt(len(a))
    return mean, mean - half, mean + half


def mean_band(runs: RunCurves) -> Band:
    """Mean and 95% t CI over the runs at every step any of them logged."""
    steps = sorted({s for c in runs.values() for s in c})
    cols = [[c[s] for c in runs.values() if s in c] for s in steps]
    return _band(steps, cols)


def paired_diff(a: RunCurves, b: RunCurves) -> Band:
    """A − B per step, paired by key: at each step the keys with a value in both; the mean
    difference and its 95% t CI over those keys."""
    keys = sorted(set(a) & set(b))
    steps = sorted({s for k in keys for s in a[k] if s in b[k]})
    cols = [[a[k][s] - b[k][s] for k in keys if s in a[k] and s in b[k]] for s in steps]
    return _band(steps, cols)


def _band(steps: Sequence[int], cols: Sequence[Sequence[float]]) -> Band:
    stats = np.array([t_interval(c) for c in cols], float).reshape(-1, 3)
    return Band(np.asarray(steps, int), stats[:, 0], stats[:, 1], stats[:, 2],
                np.array([len(c) for c in cols], int))


def mean_over_steps_diff(a: RunCurves, b: RunCurves, column: str) -> list[float]:
    """The value per key that ``asym claims`` tests for a curve (claims.mechanism.curve_gap): the
    mean of A − B over the steps both logged (after the first step for columns measured before
    the update), one value per paired key ([] without one); :func:`t_interval` turns it into
    the mean and CI drawn."""
    from .claims.base import BEFORE_UPDATE

    per = []
    for k in sorted(set(a) & set(b)):
        steps = sorted(set(a[k]) & set(b[k]))
        if column in BEFORE_UPDATE and a[k] and b[k]:
            first = min(min(a[k]), min(b[k]))
            steps = [s for s in steps if s > first]
        if steps:
            per.append(float(np.mean([a[k][s] - b[k][s] for s in steps])))
    return per


def spec_label(spec: Spec) -> str:
    return row_label(*spec)


def _style(spec: Spec, asym_index: dict[tuple[Any, Any], int]) -> dict[str, Any]:
    method, bp, bn = spec
    if method in ("asym", "asym_adaptive") and (method == "asym" or bp is not None):
        i = asym_index.setdefault((method, bp, bn), len(asym_index))
        return {"color": COLORS[method], "linestyle": ASYM_STYLES[i % len(ASYM_STYLES)]}
    return {"color": COLORS.get(method, None)}


def note(ax: Any, text: str, big: bool = False) -> None:
    """Text inside a panel (kept out of the layout so it never squeezes the axes)."""
    if big:
        t = ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9,
                    color="#555555")
    else:
        t = ax.text(0.02, 0.02, text, ha="left", va="bottom", transform=ax.transAxes, fontsize=6.5,
                    color="#666666", bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})
    t.set_in_layout(False)


#: Columns drawn as points with error bars (evaluations every ``train.eval_every`` steps).
SPARSE = 12  # at most this many steps: markers and error bars instead of a band


def _draw_band(ax: Any, band: Band, label: str, style: dict[str, Any], slot: float = 0.0,
               clip: tuple[float, float] | None = None) -> None:
    """Mean line with its 95% CI: error bars when there are few steps (shifted sideways by
    ``slot`` x 1.2% of the step range, so the bars of several methods do not overlap), else a
    shaded band. The line carries the label; bars and band go with it. ``clip``: the range the
    quantity can take (a beta in [0, 1], a fraction): the interval is cut to it, since a t
    interval of a bounded quantity can run outside what is possible."""
    if clip is not None:
        band = Band(band.steps, band.mean, np.clip(band.lo, *clip), np.clip(band.hi, *clip), band.n)
    has_ci = bool(np.isfinite(band.lo).any())
    if len(band) <= SPARSE:
        span = float(band.steps.max() - band.steps.min()) if len(band) > 1 else 1.0
        x = band.steps + slot * 0.012 * span
        ax.plot(x, band.mean, label=label, marker="o", markersize=3.5, linewidth=1.4, **style)
        if has_ci:
            err = np.vstack([band.mean - band.lo, band.hi - band.mean])
            ax.errorbar(x, band.mean, yerr=np.where(np.isfinite(err), err, 0.0), fmt="none",
                        ecolor=style.get("color"), capsize=3, elinewidth=1.0, label="_nolegend_")
    else:
        ax.plot(band.steps, band.mean, label=label, linewidth=1.4, **style)
        if has_ci:
            ok = np.isfinite(band.lo)
            ax.fill_between(band.steps, np.where(ok, band.lo, band.mean), np.where(ok, band.hi, band.mean),
                            alpha=0.18, color=style.get("color"), linewidth=0)


def draw_runs(ax: Any, runs: RunCurves, label: str, style: dict[str, Any],
              clip: tuple[float, float] | None = None) -> None:
    """Mean over runs with its 95% t CI (:func:`mean_band`) of already-derived curves, for
    panels whose values are not a CURVES column (e.g. entropy relative to a run's target);
    ``clip``: the possible range of the values (the CI is cut to it)."""
    runs = {k: {s: v for s, v in c.items() if math.isfinite(v)} for k, c in runs.items()}
    runs = {k: c for k, c in runs.items() if c}
    if runs:
        _draw_band(ax, mean_band(runs), label, style, clip=clip)


def spec_style(spec: Spec, asym_index: dict[tuple[Any, Any], int] | None = None) -> dict[str, Any]:
    return _style(spec, {} if asym_index is None else asym_index)


def axes_style(ax: Any, title: str, ylabel: str) -> None:
    _axes_style(ax, title, ylabel)


def _axes_style(ax: Any, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("training step", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def single_step_axis(ax: Any) -> None:
    """A panel whose points all sit at one training step (a config that evaluates only the
    final checkpoint): matplotlib would zoom to the dodge offsets (59.97-60.03, "+6e1"), so the
    axis shows that one step as one tick, with the dodged bars side by side around it."""
    lo, hi = ax.get_xlim()
    if hi - lo < 1.0:
        step = round((lo + hi) / 2)
        ax.set_xlim(step - 0.1, step + 0.1)
        ax.set_xticks([step])


def panel(ax: Any, curves: pa.Table, specs: Sequence[Spec], column: str, *, title: str, ylabel: str,
          asym_index: dict[tuple[Any, Any], int] | None = None, linestyle: str | None = None,
          suffix: str = "", legend: bool = True, dodge: bool = False, clip: tuple[float, float] | None = None,
          runs_of: Any = None) -> list[str]:
    """Draw ``column`` for each spec (mean over seeds with its 95% t CI, cut to ``clip``).
    Returns the specs with no runs: the figure names them in its title (a note inside the
    panel would cover data). ``dodge`` shifts each method's error bars sideways a little.
    ``runs_of(spec)``: per-run curves to draw instead of the CURVES column (e.g. Avg@k)."""
    asym_index = {} if asym_index is None else asym_index
    missing = []
    drawn = 0
    for i, spec in enumerate(specs):
        runs = run_curves(curves, spec, column) if runs_of is None else runs_of(spec)
        if not runs:
            missing.append(spec_label(spec))
            continue
        style = _style(spec, asym_index)
        if linestyle:
            style["linestyle"] = linestyle
        _draw_band(ax, mean_band(runs), spec_label(spec) + suffix, style,
                   slot=(i - (len(specs) - 1) / 2) if dodge else 0.0, clip=clip)
        drawn += 1
    _axes_style(ax, title, ylabel)
    single_step_axis(ax)
    if drawn == 0:
        note(ax, "no runs with this metric yet:\n" + "\n".join(missing)
              + "\n(add the methods to grid.methods)", big=True)
    elif legend:
        ax.legend(fontsize=7, frameon=False)
    return missing


def zero_label(ref: Spec) -> str:
    return f"0 = no difference from {spec_label(ref)}"


def diff_panel(ax: Any, curves: pa.Table, specs: Sequence[Spec], ref: Spec, column: str, *, title: str,
               ylabel: str, scale: float = 1.0, summary: bool = True,
               asym_index: dict[tuple[Any, Any], int] | None = None, runs_of: Any = None) -> list[str]:
    """Paired-difference panel: for each spec but ``ref``, (spec − ref) x ``scale`` per step,
    paired by seed (:func:`paired_diff`): mean with its 95% t CI over seeds, and the zero line.
    With ``summary`` (per-step metrics), the mean over steps with its paired 95% (thin) and 90% (thick) CIs (the value
    ``asym claims`` tests) is drawn at the right edge. Returns the labels not drawn."""
    asym_index = {} if asym_index is None else asym_index
    get = (lambda sp: run_curves(curves, sp, column)) if runs_of is None else runs_of
    base = get(ref)
    missing: list[str] = [] if base else [spec_label(ref)]
    drawn: list[tuple[Spec, RunCurves]] = []
    for i, spec in enumerate(specs):
        if spec == ref:
            continue
        runs = get(spec)
        if not runs:
            missing.append(spec_label(spec))
            continue
        if not base:
            continue
        d = paired_diff(_scaled(runs, scale), _scaled(base, scale))
        if not len(d):
            missing.append(spec_label(spec) + " (no seed paired)")
            continue
        _draw_band(ax, d, spec_label(spec), _style(spec, asym_index), slot=i - (len(specs) - 1) / 2)
        drawn.append((spec, runs))
    _axes_style(ax, title, ylabel)
    if not drawn:
        note(ax, "nothing to pair:\n" + "\n".join(f"no runs: {m}" for m in missing), big=True)
        return missing
    ax.axhline(0.0, color="black", linewidth=0.9, label=zero_label(ref), zorder=1)
    if not summary:
        single_step_axis(ax)
    if summary:
        lines = ax.get_lines()
        x_max = max(float(np.max(ln.get_xdata())) for ln in lines if len(ln.get_xdata()) > 1) \
            if any(len(ln.get_xdata()) > 1 for ln in lines) else 1.0
        x_min = min(float(np.min(ln.get_xdata())) for ln in lines if len(ln.get_xdata()) > 1) \
            if any(len(ln.get_xdata()) > 1 for ln in lines) else 0.0
        gap = max(1.0, 0.06 * (x_max - x_min))
        right = x_max + gap * (1.5 + 0.5 * len(drawn))
        # the summary sits in a shaded strip so its x position is not read as a training step
        ax.axvspan(x_max + gap * 0.5, right, color="#f0f0f0", zorder=0, linewidth=0)
        ax.text(x_max + gap * (0.75 + 0.25 * len(drawn)), 0.98, "mean\nover\nsteps", ha="center", va="top",
                fontsize=6, color="#555555", transform=ax.get_xaxis_transform()).set_in_layout(False)
        ax.set_xlim(right=right)
        scaled_base = _scaled(base, scale)
        for i, (spec, runs) in enumerate(drawn):
            per = mean_over_steps_diff(_scaled(runs, scale), scaled_base, column)
            if not per:
                continue
            mean, lo, hi = t_interval(per)
            x = x_max + gap * (1 + 0.5 * i)
            color = _style(spec, asym_index).get("color")
            err = None if not math.isfinite(lo) else [[mean - lo], [hi - mean]]
            ax.errorbar([x], [mean], yerr=err, marker="D", markersize=4, capsize=3,
                        linewidth=0, elinewidth=1.0, color=color, label=spec_label(spec))
            # the thick bar is the 90% CI: it clears 0 on a side exactly when the one-sided test
            # at 0.05 that `asym claims` runs says "holds" (or "fails") there, so a verdict reads off it
            _, lo90, hi90 = t_interval(per, 0.90)
            if math.isfinite(lo90):
                ax.errorbar([x], [mean], yerr=[[mean - lo90], [hi90 - mean]], marker="D", markersize=4,
                            linewidth=0, elinewidth=3.2, capsize=0, color=color, zorder=3, label=spec_label(spec))
    return missing


#: Legend entries of :func:`seed_strip` (the same for every row; the rows are named on the y axis).
STRIP_LABELS = ("one seed's paired difference", "mean paired difference", "95% CI (thin bar)",
                "90% CI (thick bar; clear of 0 = one-sided p < 0.05)")


def interval_row(ax: Any, y: float, values: Sequence[float], mean: float, ci95: tuple[float, float],
                 ci90: tuple[float, float], color: Any, text: str = "") -> None:
    """One row of a strip: every value as a dot (spread vertically so ties stay visible), the
    mean (diamond), its 95% CI (thin bar) and 90% CI (thick bar); ``text`` at the right edge.
    CIs that are NaN (one value) are not drawn."""
    xs = np.asarray([v for v in values if v is not None and math.isfinite(v)], float)
    if len(xs):
        jitter = (np.arange(len(xs)) % 7 - 3) * 0.0225
        ax.plot(xs, y + 0.22 + jitter, "o", markersize=3, alpha=0.55, color=color, label=STRIP_LABELS[0])
    if math.isfinite(ci95[0]):
        ax.errorbar([mean], [y], xerr=[[mean - ci95[0]], [ci95[1] - mean]], fmt="none", ecolor=color,
                    elinewidth=1.0, capsize=3, label=STRIP_LABELS[2])
    if math.isfinite(ci90[0]):
        ax.errorbar([mean], [y], xerr=[[mean - ci90[0]], [ci90[1] - mean]], fmt="none", ecolor=color,
                    elinewidth=3.2, capsize=0, label=STRIP_LABELS[3])
    ax.plot([mean], [y], "D", markersize=5, color=color, label=STRIP_LABELS[1])
    if text:
        ax.annotate(text, (1.0, y), xycoords=("axes fraction", "data"), xytext=(-2, -5), textcoords="offset points",
                    ha="right", va="top", fontsize=6.5, color="#333333").set_in_layout(False)


def strip_axes(ax: Any, labels: Sequence[str], *, title: str, xlabel: str) -> None:
    """Axes of a strip: rows ``labels`` top to bottom, the zero line, x grid."""
    ax.axvline(0.0, color="black", linewidth=0.9, zorder=1)
    ax.set_yticks(range(len(labels)), list(labels)[::-1], fontsize=7)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, axis="x")


def seed_strip(ax: Any, rows: Sequence[tuple[str, Sequence[float], Any]], *, title: str, xlabel: str,
               sign: int = 1) -> list[dict[str, Any]]:
    """Per-seed paired differences, one row per comparison (``rows``: (label, values, colour),
    top to bottom), drawn by :func:`interval_row` with the zero line. The thick bar (90% CI)
    clears 0 on the ``sign`` side exactly when the one-sided paired t-test at 0.05 of
    ``asym claims`` says "holds"; n and that p are written beside each row. Returns per row
    {label, n, mean, lo95, hi95, lo90, hi90, p} (what was drawn)."""
    from .claims.stats import paired_test

    drawn = []
    for i, (label, values, color) in enumerate(rows):
        y = len(rows) - 1 - i
        t = paired_test(values, sign)
        if not t.n:
            ax.text(0.0, y, "no paired seeds", ha="center", va="center", fontsize=7, color="#666666")
            continue
        nan = math.nan
        ci95 = (nan, nan) if t.ci_low is None else (t.ci_low, t.ci_high)
        ci90 = (nan, nan) if t.ci90_low is None else (t.ci90_low, t.ci90_high)
        interval_row(ax, y, values, t.mean, ci95, ci90, color,  # type: ignore[arg-type]
                     f"n={t.n}, p={t.p:.2g}" if t.p is not None else f"n={t.n}")
        drawn.append({"label": label, "n": t.n, "mean": t.mean, "lo95": ci95[0], "hi95": ci95[1], "lo90": ci90[0],
                      "hi90": ci90[1], "p": t.p})
    strip_axes(ax, [r[0] for r in rows], title=title, xlabel=xlabel)
    return drawn


SUMMARY_LABEL = ("right of a Δ panel: mean over steps (the value `asym claims` tests), paired CI: "
                 "thick 90% (clear of 0 = one-sided p < 0.05), thin 95%")


def summary_handle() -> Any:
    """Legend proxy explaining the diamonds of :func:`diff_panel`'s summary."""
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="D", markersize=4, color="black", linewidth=0)


def _scaled(runs: RunCurves, scale: float) -> RunCurves:
    if scale == 1.0:
        return runs
    return {k: {s: v * scale for s, v in c.items()} for k, c in runs.items()}


def figure_legend(fig: Figure, axes: Sequence[Any], extra: Sequence[tuple[Any, str]] = (),
                  ncol: int = 6) -> None:
    """One legend for the whole figure (the union of the panels' labelled lines, then ``extra``)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    for h, lab in extra:
        seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center",
                   ncol=min(len(seen), ncol), fontsize=8, frameon=False)


def curves_or_empty(curves: pa.Table | None) -> pa.Table:
    from .aggregate import CURVES

    return CURVES.empty_table() if curves is None else curves
