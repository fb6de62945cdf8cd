"""Figures a reader can trust at a glance (issue 22 part 4): the paired-difference panels of
Figs. 2 and 3 plot exactly the paired mean and 95% t CI of the runs, accuracy panels plot the
evaluations themselves (no EMA), every drawn line has a legend entry, and Fig. 4d's colour
scale is anchored on a reference with a minimum half-range and marks significance."""

from __future__ import annotations

import math

import matplotlib.colors as mcolors
import numpy as np
import pyarrow as pa
import pytest
import scipy.stats
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from asymcli.analysis import aggregate as agg
from asymcli import artifacts
from asymcli.analysis import figures
from asymcli.analysis.claims.stats import paired_test

SEEDS = (0, 1, 2, 3, 4)
STEPS = 20
EVAL_EVERY = 5
# method -> (entropy offset, accuracy offset)
LEVELS = {"reinforce": (0.0, 0.0), "pos_only": (0.002, -0.01), "neg_only": (-0.001, 0.02),
          "reinforce_ent": (0.006, -0.005), "grpo": (0.0005, 0.01), "ent_decrease": (-0.0015, -0.02),
          "ent_increase": (0.005, -0.04), "clip_higher": (0.001, 0.0), "dr_grpo": (0.0, 0.0),
          "grpo_ent": (0.003, 0.0)}


def make_curves(levels=LEVELS, seeds=SEEDS, steps=STEPS, eval_every=EVAL_EVERY, run_fmt="{m}_s{s}") -> pa.Table:
    """CURVES rows: per seed a shared seed effect (what pairing removes) plus method offset and
    noise; greedy evaluations at step 0 (the shared base) and every ``eval_every`` steps."""
    rows = []
    for s in seeds:
        rs = np.random.default_rng(100 + s)
        seed_ent, seed_acc = rs.normal(0, 0.004), rs.normal(0, 0.03)
        for mi, (m, (dent, dacc)) in enumerate(levels.items()):
            r = np.random.default_rng(1000 * s + mi)
            acc = [math.nan] * (steps + 1)
            for st in range(0, steps + 1, eval_every):
                acc[st] = 0.55 if st == 0 else 0.55 + 0.004 * st + seed_acc + dacc + r.normal(0, 0.005)
            ema = agg.ema(acc, 0.7)
            for st in range(0, steps + 1):
                rows.append({
                    "run_id": run_fmt.format(m=m, s=s), "method": m, "beta_pos": None, "beta_neg": None, "seed": s,
                    "step": st, "reward_mean": 0.5 + 0.01 * st + r.normal(0, 0.01),
                    "entropy": math.nan if st == 0 else 0.045 + seed_ent + dent + r.normal(0, 0.0005),
                    "kappa": 0.1, "none_solved_frac": 0.1 + r.normal(0, 0.01),
                    "all_solved_frac": 0.2 + r.normal(0, 0.01), "mixed_frac": 0.7,
                    "logprob_gain_correct": 0.03 + r.normal(0, 0.005), "logprob_gain_correct_tok": 0.001,
                    "response_len_mean": 20.0, "eval_greedy_acc": acc[st], "eval_greedy_acc_ema": ema[st]})
    return artifacts.to_table(rows, agg.CURVES)


def _runs(curves: pa.Table, method: str, column: str) -> dict[int, dict[int, float]]:
    out: dict[int, dict[int, float]] = {}
    for r in curves.to_pylist():
        if r["method"] == method and math.isfinite(r[column]):
            out.setdefault(r["seed"], {})[r["step"]] = r[column]
    return out


def direct_diff(curves, a, b, column, scale=1.0):
    """Per step: (mean, ci_low, ci_high) of the per-seed differences, by claims.stats.paired_test."""
    ra, rb = _runs(curves, a, column), _runs(curves, b, column)
    steps = sorted({st for s in ra for st in ra[s] if s in rb and st in rb[s]})
    out = {}
    for st in steps:
        d = [scale * (ra[s][st] - rb[s][st]) for s in sorted(ra) if s in rb and st in ra[s] and st in rb[s]]
        t = paired_test(d, +1)
        out[st] = (t.mean, t.ci_low, t.ci_high)
    return out


def _bars(ax, line):
    """The error-bar container drawn for ``line`` (same x and colour), or None."""
    for c in ax.containers:
        if isinstance(c, ErrorbarContainer) and c.lines[0] is None:
            (bars,) = c.lines[2]
            segs = bars.get_segments()
            xs = [sg[0, 0] for sg in segs]
            if (len(xs) == len(line.get_xdata()) and np.allclose(xs, line.get_xdata())
                    and np.allclose(bars.get_color()[0][:3], mcolors.to_rgb(line.get_color()))):
                return segs
    return None


def drawn(ax, label):
    """(x rounded to steps, mean, lo, hi) of the series labelled ``label``: its line and its
    error bars or fill_between band."""
    line = next(ln for ln in ax.lines if ln.get_label() == label)
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    segs = _bars(ax, line)
    if segs is not None:
        return (np.round(x), y, np.array([min(sg[:, 1]) for sg in segs]),
                np.array([max(sg[:, 1]) for sg in segs]))
    polys = [p for p in ax.collections if isinstance(p, PolyCollection)
             and np.allclose(p.get_facecolor()[0][:3], mcolors.to_rgb(line.get_color()))]
    assert polys, f"no band for {label}"
    v = polys[0].get_paths()[0].vertices
    lo = np.array([v[np.isclose(v[:, 0], xi), 1].min() for xi in x])
    hi = np.array([v[np.isclose(v[:, 0], xi), 1].max() for xi in x])
    return x, y, lo, hi


# ---------------------------------------------------------------------------
# Pairing
# ---------------------------------------------------------------------------


def test_pair_key_is_the_run_ids_last_field():
    assert figures.pair_key("grpo_s0") == "s0"
    assert figures.pair_key("asym_bp0.9_bn0.4_s3") == "s3"
    assert figures.pair_key("reinforce_ent_s12") == "s12"
    assert figures.pair_key("grpo_b1s0") == "b1s0"  # a multi-base layout pairs the same way


def test_paired_diff_pairs_by_key_and_step():
    a = {"b1s0": {1: 1.0, 2: 2.0}, "b1s1": {1: 3.0, 2: 5.0}, "b2s0": {1: 9.0}, "b9s9": {1: 100.0}}
    b = {"b1s0": {1: 0.0, 2: 1.0}, "b1s1": {1: 1.0}, "b2s0": {1: 5.0}}
    d = figures.paired_diff(a, b)
    assert list(d.steps) == [1, 2] and list(d.n) == [3, 1]
    t = paired_test([1.0, 2.0, 4.0], +1)
    assert d.mean[0] == pytest.approx(t.mean) and (d.lo[0], d.hi[0]) == pytest.approx((t.ci_low, t.ci_high))
    assert d.mean[1] == 1.0 and math.isnan(d.lo[1])  # one pair: a mean, no interval


def test_run_curves_keyed_by_pairing_key():
    c = make_curves(seeds=(0, 1), run_fmt="{m}_b1s{s}")
    runs = figures.run_curves(c, ("grpo", None, None), "eval_greedy_acc")
    assert list(runs) == ["b1s0", "b1s1"] and sorted(runs["b1s0"]) == [0, 5, 10, 15, 20]


# ---------------------------------------------------------------------------
# Paired-difference panels: the plotted mean and CI are the runs' paired statistics
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curves():
    return make_curves()


@pytest.mark.parametrize("ref, specs, column, scale", [
    ("reinforce", figures.FIG2_METHODS, "entropy", 1.0),
    ("reinforce", figures.FIG2_METHODS, "eval_greedy_acc", 100.0),
    ("grpo", figures.FIG3_METHODS, "entropy", 1.0),
    ("grpo", figures.FIG3_METHODS, "eval_greedy_acc", 100.0),
])
def test_diff_panel_draws_the_paired_mean_and_t_ci(curves, ref, specs, column, scale):
    ax = Figure().subplots()
    missing = figures.diff_panel(ax, curves, specs, (ref, None, None), column, title="t", ylabel="y",
                                 scale=scale, summary=False)
    assert missing == []
    for spec in specs:
        if spec[0] == ref:
            continue
        want = direct_diff(curves, spec[0], ref, column, scale)
        x, y, lo, hi = drawn(ax, figures.row_label(*spec))
        assert list(x) == list(want)
        assert y == pytest.approx([w[0] for w in want.values()])
        assert lo == pytest.approx([w[1] for w in want.values()])
        assert hi == pytest.approx([w[2] for w in want.values()])
    zero = [ln for ln in ax.lines if ln.get_label() == figures.zero_label((ref, None, None))]
    assert len(zero) == 1 and set(zero[0].get_ydata()) == {0.0}


def test_diff_panel_summary_is_the_claims_value(curves):
    """The diamond at the right edge: per seed the mean over steps (after the first, as
    claims.mechanism.curve_gap for entropy) of the difference, then paired_test's mean and CI."""
    ax = Figure().subplots()
    figures.diff_panel(ax, curves, figures.FIG2_METHODS, figures.REINFORCE, "entropy", title="t", ylabel="y")
    ra, rb = _runs(curves, "pos_only", "entropy"), _runs(curves, "reinforce", "entropy")
    per = []
    for s in SEEDS:
        steps = sorted(set(ra[s]) & set(rb[s]))[1:]  # entropy is logged before the update: first step out
        per.append(np.mean([ra[s][st] - rb[s][st] for st in steps]))
    t = paired_test(per, +1)
    label = figures.row_label("pos_only", None, None)
    summaries = [c for c in ax.containers if c.get_label() == label and len(c.lines[0].get_xdata()) == 1]
    assert len(summaries) == 2  # thin 95% CI, thick 90% CI, on one diamond
    thin, thick = sorted(summaries, key=lambda c: c.lines[2][0].get_linewidth()[0])
    (line, _caps, (bars,)) = thin.lines
    assert line.get_xdata()[0] > STEPS
    assert line.get_ydata()[0] == pytest.approx(t.mean)
    seg = bars.get_segments()[0]
    assert (seg[:, 1].min(), seg[:, 1].max()) == pytest.approx((t.ci_low, t.ci_high))
    assert t.ci_low > 0  # the synthetic Pos-Only gap holds, and the panel shows it above 0
    # the thick bar is the 90% interval: its lower end clears 0 exactly when the one-sided p < 0.05
    half90 = float(scipy.stats.t.ppf(0.95, t.n - 1)) * t.se
    seg90 = thick.lines[2][0].get_segments()[0]
    assert thick.lines[0].get_xdata()[0] == line.get_xdata()[0]
    assert (seg90[:, 1].min(), seg90[:, 1].max()) == pytest.approx((t.mean - half90, t.mean + half90))
    assert (t.mean - half90 > 0) == (t.p < 0.05)


def test_accuracy_panels_plot_the_evaluations_not_the_ema(curves):
    ax = Figure().subplots()
    figures.panel(ax, curves, figures.FIG3_METHODS, figures.ACC, title="t", ylabel="acc")
    runs = _runs(curves, "grpo", "eval_greedy_acc")
    x, y, lo, hi = drawn(ax, "GRPO")
    assert list(x) == [0, 5, 10, 15, 20]
    for i, st in enumerate(x):
        vals = [runs[s][int(st)] for s in SEEDS]
        assert y[i] == pytest.approx(np.mean(vals))
        if st > 0:  # step 0 is the shared base: no spread
            t = paired_test(vals, +1)
            assert (lo[i], hi[i]) == pytest.approx((t.ci_low, t.ci_high))
    ema = _runs(curves, "grpo", "eval_greedy_acc_ema")
    assert y[-1] != pytest.approx(np.mean([ema[s][20] for s in SEEDS]))


def test_diff_panel_notes_missing_reference():
    c = make_curves(levels={"pos_only": (0.0, 0.0)})
    ax = Figure().subplots()
    missing = figures.diff_panel(ax, c, figures.FIG2_METHODS, figures.REINFORCE, "entropy", title="t", ylabel="y")
    assert "REINFORCE" in missing
    assert any("nothing to pair" in t.get_text() for t in ax.texts)


# ---------------------------------------------------------------------------
# Legends cover every line
# ---------------------------------------------------------------------------


def _capture(monkeypatch):
    figs: list[Figure] = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: figs.append(fig) or path)
    return figs


def _legend_texts(fig: Figure) -> set[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return {t.get_text() for lg in legends for t in lg.get_texts()}


def _drawn_labels(fig: Figure) -> list[str]:
    """The label of every drawn series: lines (inside an error-bar container or not) and
    containers with a data line; bare error bars must belong to a labelled line."""
    labels = []
    for ax in fig.axes:
        inside = set()
        for c in ax.containers:
            for part in c.lines:
                for a in (part if isinstance(part, tuple) else (part,)):
                    if a is not None:
                        inside.add(id(a))
            if c.lines[0] is not None:
                labels.append(c.get_label())
        labels += [ln.get_label() for ln in ax.lines if id(ln) not in inside]
        for c in ax.containers:
            if c.lines[0] is None:
                assert any(_bars(ax, ln) is not None for ln in ax.lines if id(ln) not in inside), "bars without a line"
        assert not [c for c in ax.collections if isinstance(c, LineCollection) and id(c) not in inside]
    return labels


@pytest.mark.parametrize("name", ["fig1", "fig2", "fig3", "fig4"])
def test_every_line_has_a_legend_entry(curves, monkeypatch, name):
    figs = _capture(monkeypatch)
    if name == "fig1":
        figures.fig1_advantages("x.png")
    elif name == "fig2":
        figures.fig2_channels(curves, "x.png")
    elif name == "fig3":
        figures.fig3_flip(curves, "x.png")
    else:
        figures.fig4_dynamics(curves, "x.png", pairs=())
    (fig,) = figs
    labels = _drawn_labels(fig)
    assert labels
    texts = _legend_texts(fig)
    unlabelled = [lab for lab in labels if lab.startswith("_") or lab not in texts]
    assert unlabelled == []


def test_fig2_and_fig3_have_the_paired_difference_row(curves, monkeypatch):
    figs = _capture(monkeypatch)
    figures.fig2_channels(curves, "a.png")
    figures.fig3_flip(curves, "b.png")
    f2, f3 = figs
    t2 = [ax.get_title() for ax in f2.axes]
    t3 = [ax.get_title() for ax in f3.axes]
    assert [t for t in t2 if t.startswith("Δ")] == [
        "Δ(a) entropy − REINFORCE", "Δ(b) greedy test accuracy − REINFORCE", "Δ(c) none-solved − REINFORCE",
        "Δ(d) log-prob gain − REINFORCE"]
    assert [t for t in t3 if t.startswith("Δ")] == ["Δ(a) entropy − GRPO", "Δ(b) greedy test accuracy − GRPO"]
    assert not any("EMA" in t for t in t2 + t3)
    # accuracy panels say they are greedy, not the Avg@k the claims test
    assert "greedy" in t2[1] and "greedy" in t3[1] and "Avg@k" in f2._suptitle.get_text()


# ---------------------------------------------------------------------------
# Figure 4d: anchored colour scale, significance marks
# ---------------------------------------------------------------------------


def _grid(cells):
    return pa.Table.from_pylist(schema=agg.GRID, mapping=[
        {"beta_pos": bp, "beta_neg": bn, "mean": m, "std": sd, "n_seeds": 5, "step_min": 60, "step_max": 60}
        for bp, bn, m, sd in cells])


def _scores(per_run: dict[str, float], benches=("math500", "aime24")) -> pa.Table:
    """RUN_SCORES rows whose Avg. over ``benches`` is ``per_run[rid]`` / 100 at step 60."""
    from asymcli.config import parse_run_id

    rows = []
    for rid, avg in per_run.items():
        m, bp, bn, seed = parse_run_id(rid)
        for i, b in enumerate(benches):
            off = 0.01 if i == 0 else -0.01
            for step, v in ((30, 0.1), (60, avg / 100 + off)):
                rows.append({"run_id": rid, "method": m, "beta_pos": bp, "beta_neg": bn, "seed": seed,
                             "step": step, "benchmark": b, "n_problems": 10, "k_min": 4, "k": 4,
                             "temperature": 0.4, "avg_at_k": v, "pass_at_k": v, "maj_at_k": v})
    return artifacts.to_table(rows, agg.RUN_SCORES)


def _clim(fig):
    return fig.axes[0].images[0].get_clim()


def test_grid_without_scores_colours_the_level_and_says_nothing_is_tested():
    """The mechanism testbed's cells (69.28, 67.98; seeds scatter 1-2 points): without scores
    the scale is centred on the grid's mean with half-range 3, so the cells are pale."""
    fig = figures.grid_figure(_grid([(0.9, 0.4, 69.28, 1.90), (0.7, 0.7, 67.98, 1.03)]))
    lo, hi = _clim(fig)
    centre = (69.28 + 67.98) / 2
    assert (lo, hi) == pytest.approx((centre - 3.0, centre + 3.0))
    assert "nothing tested" in fig.axes[0].get_title()
    lo, hi = _clim(figures.grid_figure(_grid([(0.9, 0.4, 70.0, 1.0), (0.1, 0.1, 60.0, 1.0)])))
    assert (lo, hi) == pytest.approx((60.0, 70.0))


def _grid_world():
    grpo = {f"grpo_s{s}": 69.0 + d for s, d in enumerate((0.5, -0.8, 1.2, -0.3, 0.1))}
    rein = {f"reinforce_s{s}": 60.0 for s in range(5)}
    # (0.9, 0.4): +2 every seed with a little noise (significant); (0.7, 0.7): +-1.3 noise (n.s.)
    hi_cell = {f"asym_bp0.9_bn0.4_s{s}": grpo[f"grpo_s{s}"] + 2.0 + e
               for s, e in enumerate((0.1, -0.1, 0.2, 0.0, -0.2))}
    ns_cell = {f"asym_bp0.7_bn0.7_s{s}": grpo[f"grpo_s{s}"] + e for s, e in enumerate((1.3, -1.5, 1.1, -0.9, 0.4))}
    # (0.9, 0.1): 3 seeds only, each BELOW its GRPO seed, yet its level (mean over 3 seeds) is
    # above GRPO's 5-seed mean: the old figure coloured the level (blue) against the paired sign
    low_cell = {f"asym_bp0.9_bn0.1_s{s}": grpo[f"grpo_s{s}"] - 0.3 + e for s, e in ((0, 0.05), (2, -0.05), (4, 0.02))}
    return grpo, rein, hi_cell, ns_cell, low_cell


def test_grid_colour_is_the_paired_difference_with_holm():
    grpo, rein, hi_cell, ns_cell, low_cell = _grid_world()
    scores = _scores({**grpo, **rein, **hi_cell, **ns_cell, **low_cell})
    avgs = figures.run_avgs(scores)
    assert avgs[("grpo", None, None)]["s2"] == pytest.approx(70.2)
    assert avgs[("asym", 0.9, 0.4)]["s0"] == pytest.approx(71.6)
    levels = [(0.9, 0.4, np.mean(list(hi_cell.values())), 1.0), (0.7, 0.7, np.mean(list(ns_cell.values())), 1.0),
              (0.9, 0.1, np.mean(list(low_cell.values())), 0.5)]
    assert levels[2][2] > np.mean(list(grpo.values()))  # the level is above GRPO's mean ...
    fig = figures.grid_figure(_grid(levels), scores)
    ax = fig.axes[0]
    img = ax.images[0]
    bps, bns = [0.9, 0.7], [0.1, 0.4, 0.7]
    want = {}
    for (bp, bn), cell in (((0.9, 0.4), hi_cell), ((0.7, 0.7), ns_cell), ((0.9, 0.1), low_cell)):
        d = [v - grpo["grpo_" + k.rsplit("_", 1)[1]] for k, v in cell.items()]
        want[bp, bn] = paired_test(d, +1)
    data = img.get_array()
    for (bp, bn), t in want.items():
        i, j = bps.index(bp), bns.index(bn)
        assert data[i, j] == pytest.approx(t.mean)  # the colour is the paired mean difference
        rgb = img.cmap(img.norm(data[i, j]))[:3]
        blue_side = rgb[2] > rgb[0]  # RdBu: above 0 blue, below red
        assert blue_side == (t.mean > 0)  # ... but the paired difference is negative: red
    filled = np.ma.filled(data.astype(float), np.nan)
    assert math.isnan(filled[1, 0]) and math.isnan(filled[1, 1]) and math.isnan(filled[0, 2])
    assert _clim(fig) == pytest.approx((-3.0, 3.0))  # centred on 0, half-range >= 3 points
    cells, ref = figures.grid_cells(_grid(levels), scores)
    assert ref == ("grpo", None, None)
    ps = {(c["beta_pos"], c["beta_neg"]): c for c in cells}
    two_sided = [min(1.0, 2 * min(want[k].p, want[k].p_opposite)) for k in ps]
    from asymcli.analysis.claims.stats import holm
    assert [ps[k]["p_holm"] for k in ps] == pytest.approx(holm(two_sided))
    assert [ps[k]["d_n"] for k in ps] == [5, 5, 3]
    texts = [t.get_text() for t in ax.texts]
    hi_text = next(t for t in texts if t.startswith("Δ +2.00"))
    assert hi_text.startswith("Δ +2.00 *\nn=5, p_Holm") and "± 1.0" in hi_text
    assert any(t.startswith("Δ -0.") and "n=3" in t for t in texts)
    assert texts.count("not run") == 3  # (0.7, 0.1), (0.7, 0.4), (0.9, 0.7): marked, hatched
    assert sum(1 for p in ax.patches if p.get_hatch() == "///") == 3
    title = ax.get_title()
    assert "Holm over the 3 tested cells" in title and "± over seeds" not in title and "mean ± sd over seeds" in title


def test_grid_text_fits_its_cells():
    grpo, rein, hi_cell, ns_cell, low_cell = _grid_world()
    fig = figures.grid_figure(_grid([(0.9, 0.4, 71.0, 1.0), (0.7, 0.7, 69.0, 1.0), (0.9, 0.1, 69.5, 0.5)]),
                              _scores({**grpo, **hi_cell, **ns_cell, **low_cell}))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[0]
    r = canvas.get_renderer()
    for t in ax.texts:
        x, y = t.get_position()
        (x0, y0), (x1, y1) = ax.transData.transform([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)])
        bb = t.get_window_extent(r)
        assert min(x0, x1) <= bb.x0 and bb.x1 <= max(x0, x1) and min(y0, y1) <= bb.y0 and bb.y1 <= max(y0, y1), t


def test_grid_from_claims_diffs():
    """Redrawing from a claims.json: the per-seed differences given directly."""
    diffs = {(0.9, 0.4): {"s0": -1.0, "s1": 0.5, "s2": 0.3}, (0.7, 0.7): {"s0": -2.0, "s1": -1.5, "s2": -1.8}}
    fig = figures.grid_figure(_grid([(0.9, 0.4, 69.3, 1.9), (0.7, 0.7, 68.0, 1.0)]), diffs=diffs, ref=figures.GRPO)
    data = np.ma.filled(fig.axes[0].images[0].get_array(), np.nan)
    assert data[0, 0] == pytest.approx(np.mean([-1.0, 0.5, 0.3])) and data[1, 1] == pytest.approx(-1.7666666, rel=1e-5)


def test_grid_heatmap_writes_a_png(tmp_path):
    p = figures.grid_heatmap(_grid([(0.9, 0.4, 69.28, 1.90)]), tmp_path / "g.png",
                             scores=_scores({"grpo_s0": 69.0, "asym_bp0.9_bn0.4_s0": 69.28}))
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------
# The adaptive schedule's figure
# ---------------------------------------------------------------------------


def schedule_curves() -> pa.Table:
    """make_curves plus asym_adaptive runs whose betas open from 0.5/0.5 to 1/0 and whose
    target is 0.05 nats/token; AsymGRPO (0.9, 0.4) runs beside them."""
    base = make_curves(levels={"reinforce": (0.0, 0.0), "grpo": (0.0, 0.0), "asym_adaptive": (0.002, 0.0)})
    rows = base.to_pylist()
    for r in rows:
        if r["method"] == "asym_adaptive" and r["step"] >= 1:
            d = min(1.0, 0.05 * r["step"])
            r.update(step_beta_pos=0.5 + d / 2, step_beta_neg=0.5 - d / 2, entropy_target=0.05)
    asym = make_curves(levels={"asym": (0.001, 0.0)}, run_fmt="asym_bp0.9_bn0.4_s{s}").to_pylist()
    for r in asym:
        r.update(beta_pos=0.9, beta_neg=0.4)
    return artifacts.to_table(rows + asym, agg.CURVES)


def test_fig_schedule_draws_the_betas_and_entropy_over_target(monkeypatch):
    figs = _capture(monkeypatch)
    c = schedule_curves()
    assert str(figures.fig_schedule(c, "s.png")) == "s.png"
    (fig,) = figs
    labels = _drawn_labels(fig)
    texts = _legend_texts(fig)
    assert [lab for lab in labels if lab.startswith("_") or lab not in texts] == []
    a, b = fig.axes[:2]
    bp = next(ln for ln in a.lines if ln.get_label().startswith("β₊"))
    assert bp.get_ydata()[-1] == pytest.approx(1.0) and bp.get_ydata()[0] == pytest.approx(0.525)
    # entropy in nats/token: the mean over seeds at the last step, per method; the target drawn
    ad = _runs(c, "asym_adaptive", "entropy")
    line = next(ln for ln in b.lines if ln.get_label() == figures.spec_label(figures.ADAPTIVE))
    assert line.get_ydata()[-1] == pytest.approx(np.mean([ad[s][STEPS] for s in SEEDS]))
    target = next(ln for ln in b.lines if ln.get_label().startswith("target H*"))
    assert target.get_ydata()[0] == pytest.approx(0.05)
    refs = {"REINFORCE", "GRPO", figures.spec_label(("asym", 0.9, 0.4))}
    assert refs <= {ln.get_label() for ln in b.lines}


def test_fig_schedule_shows_both_targets_and_the_steps_at_the_bounds(monkeypatch):
    """Two targets (asym_adaptive_t{target}_s{seed}): one beta pair and one dashed target per
    target; steps where most seeds sat at the bounds are marked with the first such step."""
    figs = _capture(monkeypatch)
    rows = []
    for t, rate in ((0.06, 0.1), (0.04, 0.02)):
        part = make_curves(levels={"asym_adaptive": (0.001, 0.0)}, run_fmt=f"asym_adaptive_t{t:g}_s{{s}}").to_pylist()
        for r in part:
            r["beta_pos"], r["beta_neg"] = t, None
            if r["step"] >= 1:
                d = min(1.0, rate * r["step"])
                r.update(step_beta_pos=0.5 + d / 2, step_beta_neg=0.5 - d / 2, entropy_target=t,
                         schedule_saturated=1.0 if rate * r["step"] > 1 else 0.0)
        rows += part
    figures.fig_schedule(artifacts.to_table(rows, agg.CURVES), "s.png")
    (fig,) = figs
    a, b = fig.axes[:2]
    names = [figures.spec_label(("asym_adaptive", t, None)) for t in (0.04, 0.06)]
    assert names == ["AsymGRPO-Adaptive (target 0.04)", "AsymGRPO-Adaptive (target 0.06)"]
    for n in names:
        assert {f"β₊, {n}", f"β₋, {n}"} <= {ln.get_label() for ln in a.lines}
        assert f"target H* of {n} (mean over seeds)" in {ln.get_label() for ln in b.lines}
    marks = [ln.get_label() for ln in a.lines if "at the bounds" in ln.get_label()]
    assert marks == [f"{names[1]}: most seeds at the bounds (first at step 11)"]


def test_fig_schedule_only_with_scheduled_runs(monkeypatch):
    figs = _capture(monkeypatch)
    assert figures.fig_schedule(make_curves(), "s.png") is None and figs == []


def test_fig_schedule_bands_stay_inside_0_1(monkeypatch):
    """Betas near 1 with seed noise: the t interval runs past 1; the drawn band is cut to [0, 1]."""
    figs = _capture(monkeypatch)
    rows = schedule_curves().to_pylist()
    for r in rows:
        if r["method"] == "asym_adaptive" and r["step"] >= 1:
            r["step_beta_pos"] = min(1.0, 0.97 + 0.01 * r["seed"])
            r["step_beta_neg"] = max(0.0, 0.03 - 0.01 * r["seed"])
    figures.fig_schedule(artifacts.to_table(rows, agg.CURVES), "s.png")
    (fig,) = figs
    a = fig.axes[0]
    bands = [p for p in a.collections if isinstance(p, PolyCollection)]
    assert bands
    bp = [r["step_beta_pos"] for r in rows if r["method"] == "asym_adaptive" and r["step"] == STEPS]
    from asymcli.analysis.plotting import t_interval

    _, lo, hi = t_interval(bp)
    assert hi > 1.0  # the raw interval leaves [0, 1] ...
    for p in bands:  # ... the drawn one does not
        y = p.get_paths()[0].vertices[:, 1]
        assert y.min() >= 0.0 and y.max() <= 1.0
    assert a.get_ylim()[0] >= -0.05 and a.get_ylim()[1] <= 1.05


def test_fig2_panel_c_is_readable(curves, monkeypatch):
    """Panel (c): one series per method (4 bands), not none- and all-solved (8)."""
    figs = _capture(monkeypatch)
    figures.fig2_channels(curves, "x.png")
    (fig,) = figs
    c = fig.axes[2]
    assert c.get_title() == "(c) none-solved fraction"
    assert len([p for p in c.collections if isinstance(p, PolyCollection)]) == len(figures.FIG2_METHODS)
    runs = _runs(curves, "pos_only", "none_solved_frac")
    x, y, lo, hi = drawn(c, figures.row_label("pos_only", None, None))
    assert y[-1] == pytest.approx(np.mean([runs[s][STEPS] for s in SEEDS]))
    assert lo.min() >= 0.0 and hi.max() <= 1.0


def test_no_note_box_covers_data(monkeypatch):
    """Missing methods are named in the figure title, not in a box over the panel's data."""
    figs = _capture(monkeypatch)
    c = make_curves(levels={"reinforce": (0.0, 0.0), "grpo": (0.0, 0.0)})
    figures.fig4_dynamics(c, "x.png", pairs=((0.9, 0.4),))
    figures.fig2_channels(c, "y.png")
    for fig in figs:
        for ax in fig.axes:
            assert not [t for t in ax.texts if "missing runs" in t.get_text()]
    title = figs[0]._suptitle.get_text()
    assert "; not run: " in title and figures.spec_label(("asym", 0.9, 0.4)) in title and "Dr.GRPO" in title


def _asym_world():
    """CURVES and RUN_SCORES of REINFORCE, GRPO and AsymGRPO (0.9, 0.4), 5 seeds; Avg@k at steps
    10 and 20 on two benchmarks, the asym runs +1.5 points above GRPO per seed (noisy)."""
    levels = {"reinforce": (0.0, 0.0), "grpo": (0.0005, 0.01)}
    c = make_curves(levels=levels).to_pylist()
    asym = make_curves(levels={"asym": (0.001, 0.02)}, run_fmt="asym_bp0.9_bn0.4_s{s}").to_pylist()
    for r in asym:
        r.update(beta_pos=0.9, beta_neg=0.4)
    curves = artifacts.to_table(c + asym, agg.CURVES)
    rows = []
    rng = np.random.default_rng(7)
    for s in SEEDS:
        seed_level = rng.normal(0, 0.05)
        for rid, m, bp, bn, off in ((f"reinforce_s{s}", "reinforce", None, None, 0.0),
                                    (f"grpo_s{s}", "grpo", None, None, 0.002),
                                    (f"asym_bp0.9_bn0.4_s{s}", "asym", 0.9, 0.4, 0.017)):
            for step in (10, 20):
                for i, b in enumerate(("a", "b")):
                    v = 0.6 + seed_level + off + 0.001 * step + rng.normal(0, 0.004) + 0.02 * i
                    rows.append({"run_id": rid, "method": m, "beta_pos": bp, "beta_neg": bn, "seed": s,
                                 "step": step, "benchmark": b, "n_problems": 10, "k_min": 4, "k": 4,
                                 "temperature": 0.4, "avg_at_k": v, "pass_at_k": v, "maj_at_k": v})
    return curves, artifacts.to_table(rows, agg.RUN_SCORES)


def test_fig4_plots_avg_at_k_and_the_paired_test(monkeypatch):
    figs = _capture(monkeypatch)
    curves, scores = _asym_world()
    figures.fig4_dynamics(curves, "x.png", pairs=((0.9, 0.4),), scores=scores)
    (fig,) = figs
    ax = fig.axes
    assert "Avg@k" in ax[2].get_title() and "greedy" not in ax[2].get_title()
    avg = figures.avg_curves(scores)
    asym = ("asym", 0.9, 0.4)
    # (c): the level is Avg@k x 100, mean over the benchmarks, per evaluated step
    x, y, lo, hi = drawn(ax[2], figures.spec_label(asym))
    assert list(x) == [10, 20]
    tab = scores.to_pylist()
    for i, st in enumerate((10, 20)):
        per_seed = [100 * np.mean([r["avg_at_k"] for r in tab if r["run_id"] == f"asym_bp0.9_bn0.4_s{s}"
                                   and r["step"] == st]) for s in SEEDS]
        assert y[i] == pytest.approx(np.mean(per_seed))
        assert per_seed == pytest.approx([avg[asym][f"s{s}"][st] for s in SEEDS])
    # (e): Avg@k − GRPO per evaluation, paired
    x, y, lo, hi = drawn(ax[4], figures.spec_label(asym))
    d20 = [avg[asym][f"s{s}"][20] - avg[figures.GRPO][f"s{s}"][20] for s in SEEDS]
    t = paired_test(d20, +1)
    assert y[-1] == pytest.approx(t.mean) and (lo[-1], hi[-1]) == pytest.approx((t.ci_low, t.ci_high))
    # (f): every seed's paired difference at the final step, its mean, 95% (thin) and 90% (thick) CI
    f = ax[5]
    row_labels = [tl.get_text() for tl in f.get_yticklabels()]
    assert row_labels[::-1][0] == "AsymGRPO (0.9, 0.4)\n− GRPO"
    y_row = len(row_labels) - 1
    dots = [ln for ln in f.lines if ln.get_label() == figures.STRIP_LABELS[0]]
    vs_grpo = next(ln for ln in dots if np.all(np.abs(np.asarray(ln.get_ydata()) - y_row) < 0.5))
    assert sorted(vs_grpo.get_xdata()) == pytest.approx(sorted(d20))
    mean = next(ln for ln in f.lines if ln.get_label() == figures.STRIP_LABELS[1] and ln.get_ydata()[0] == y_row)
    assert mean.get_xdata()[0] == pytest.approx(t.mean)
    segs = {c.get_label(): c.lines[2][0].get_segments()[0] for c in f.containers
            if abs(c.lines[2][0].get_segments()[0][0, 1] - y_row) < 1e-9}
    s95, s90 = segs[figures.STRIP_LABELS[2]], segs[figures.STRIP_LABELS[3]]
    assert (s95[:, 0].min(), s95[:, 0].max()) == pytest.approx((t.ci_low, t.ci_high))
    assert (s90[:, 0].min(), s90[:, 0].max()) == pytest.approx((t.ci90_low, t.ci90_high))
    assert t.ci90_low > 0 and t.p < 0.05  # this world's gain holds, and the thick bar clears 0


def test_fig4_with_one_evaluated_step_shows_that_step_as_one_tick(monkeypatch):
    """A config that evaluates only the final checkpoint (the headline's): panels (c) and (e)
    hold the step-20 points only; their axis is that step, not the dodge offsets around it."""
    import pyarrow.compute as pc

    figs = _capture(monkeypatch)
    curves, scores = _asym_world()
    scores = scores.filter(pc.equal(scores["step"], 20))
    figures.fig4_dynamics(curves, "x.png", pairs=((0.9, 0.4),), scores=scores)
    (fig,) = figs
    for ax in (fig.axes[2], fig.axes[4]):
        x, y, lo, hi = drawn(ax, figures.spec_label(("asym", 0.9, 0.4)))
        assert list(np.round(x)) == [20]
        assert list(ax.get_xticks()) == [20] and ax.get_xlim() == pytest.approx((19.9, 20.1))


def test_fig4_without_scores_says_it_plots_greedy(curves, monkeypatch):
    figs = _capture(monkeypatch)
    figures.fig4_dynamics(curves, "x.png", pairs=())
    (fig,) = figs
    assert "greedy evaluations, not the Avg@k the claims test" in fig.axes[2].get_title()
    assert "cannot be drawn" in " ".join(t.get_text() for t in fig.axes[5].texts)


def test_claims_figure_draws_each_replication_and_the_pooled_test(monkeypatch):
    import json
    from pathlib import Path

    from asymcli.analysis.claims import pool

    figs = _capture(monkeypatch)
    d = Path(__file__).resolve().parents[2] / "docs" / "results" / "headline"
    a, b = json.loads((d / "claims-n24.json").read_text()), json.loads((d / "rerun-2026-12-03/claims.json").read_text())
    p = pool([("first", a), ("rerun", b)], primary_endpoint="5a.1")
    figures.claims_figure(p, "x.png", ids=["5a.1", "5a.2"])
    (fig,) = figs
    ax = fig.axes[0]
    assert ax.get_title().startswith("5a.1") and "[primary]" in ax.get_title()
    k = next(k for c in p["claims"] for k in c["checks"] if k["id"] == "5a.1")
    rows = figures.claim_rows(k)
    assert [r["label"] for r in rows] == ["r1: first", "r2: rerun", "pooled (fixed effect)"]
    means = [ln for ln in ax.lines if ln.get_label() == figures.STRIP_LABELS[1]]
    by_y = {round(ln.get_ydata()[0]): ln.get_xdata()[0] for ln in means}
    assert by_y[0] == pytest.approx(k["mean"])  # the pooled row (bottom) is the stratified estimate
    assert by_y[2] == pytest.approx(k["replications"][0]["mean"])
    thick = {round(c.lines[2][0].get_segments()[0][0, 1]): c.lines[2][0].get_segments()[0][:, 0]
             for c in ax.containers if c.get_label() == figures.STRIP_LABELS[3]}
    assert (thick[0].min(), thick[0].max()) == pytest.approx((k["ci90_low"], k["ci90_high"]))
    dots = [ln for ln in ax.lines if ln.get_label() == figures.STRIP_LABELS[0]]
    assert sum(len(ln.get_xdata()) for ln in dots) == 2 * 48  # 24 + 24 per replication, 48 pooled
    # colour = verdict: 5a.1 holds everywhere (green); 5a.2 is not "holds" (grey)
    assert all(mcolors.to_hex(ln.get_color()) == figures.VERDICT_COLORS["holds"] for ln in means)
    means2 = [ln for ln in fig.axes[1].lines if ln.get_label() == figures.STRIP_LABELS[1]]
    assert all(mcolors.to_hex(ln.get_color()) == figures.OTHER_VERDICT for ln in means2)
