"""The report: Table 2 (and its pass@k / maj@k twins), the grid, figures and index.md.

Why it exists: the aggregate stage leaves long-form tables in ``{results}/agg/``; this
module turns them into what a reader compares: markdown / LaTeX / CSV tables with the
paper's marks (best per column in bold, second underlined), a rich table in the
terminal, the figures (asymcli.analysis.figures) and ``report/index.md`` linking everything.

Extension point (``extra_sections``): ``index.md`` ends with the sections returned by the
functions in ``EXTRA_SECTIONS`` (``@extra_section`` appends one; ``index_markdown`` /
``write_index`` also take an explicit ``extra_sections`` list). Each gets the
``ReportContext`` and returns markdown, or None to add nothing; the built-in one is the
claims' summary (:func:`claims_section`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from . import aggregate as agg
from .. import artifacts
from ..config import Config
from ..errors import ArtifactError
from ..pipeline import REPORT_PARTS, Layout

METRIC_TITLES = {
    "avg@k": "Avg@k",
    "pass@k": "pass@k",
    "maj@k": "maj@k",
}
METRIC_FILES = {"avg@k": "table2", "pass@k": "table2_passk", "maj@k": "table2_majk"}
METRIC_EXPLAINED = {
    "avg@k": "Avg@k: the mean accuracy of the k samples per problem, averaged over problems",
    "pass@k": "pass@k: the fraction of problems with at least one correct sample among the k",
    "maj@k": ("maj@k: the fraction of problems whose most frequent extracted answer among the k "
              "samples is correct (ties: the answer sampled first)"),
}


def bench_title(name: str) -> str:
    """How the paper names a benchmark (asymcli.evaluation.benchmarks.REGISTRY), else its name."""
    if name == agg.AVG:
        return name
    from ..evaluation.benchmarks import REGISTRY

    return REGISTRY[name].title if name in REGISTRY else name


def base_label(cfg: Config) -> str:
    """The base-model row: the model's name for a hub model (as the paper), else 'Base model'."""
    if cfg.model.kind == "hf" and cfg.model.path:
        return f"{Path(cfg.model.path.rstrip('/')).name} (base)"
    return "Base model (tiny, after warm-up)"


# ---------------------------------------------------------------------------
# Table 2 as a grid of cells
# ---------------------------------------------------------------------------


@dataclass
class Cell:
    mean: float | None
    std: float | None
    n_seeds: int
    rank: int = 0  # 1 = best in its column, 2 = second best, 0 = neither

    def text(self, spread: bool = True, digits: int = 2) -> str:
        if self.mean is None or math.isnan(self.mean):
            return "–"
        s = f"{self.mean:.{digits}f}"
        if spread and self.n_seeds > 1 and self.std is not None and not math.isnan(self.std):
            s += f" ± {self.std:.{digits}f}"
        return s


@dataclass
class TableView:
    metric: str
    columns: list[str]  # benchmark names, then "Avg."
    labels: list[str]
    methods: list[tuple[str, float | None, float | None]]
    cells: list[list[Cell]]  # [row][col]
    seeds: list[int]  # n seeds per row
    note: str = ""

    @property
    def titles(self) -> list[str]:
        return [bench_title(c) for c in self.columns]


def table_view(table: pa.Table, metric: str = "avg@k", note: str = "") -> TableView:
    """One metric of the TABLE2 long table as rows x columns, with best/second marked."""
    rows = [r for r in table.to_pylist() if r["metric"] == metric]
    cols = sorted({(r["col"], r["benchmark"]) for r in rows})
    columns = [b for _, b in cols]
    order = sorted({r["row"] for r in rows})
    by = {(r["row"], r["benchmark"]): r for r in rows}
    labels, methods, cells, seeds = [], [], [], []
    for i in order:
        first = next(r for r in rows if r["row"] == i)
        labels.append(first["label"])
        methods.append((first["method"], first["beta_pos"], first["beta_neg"]))
        line = []
        for b in columns:
            r = by.get((i, b))
            mean = None if r is None or r["mean"] is None or math.isnan(r["mean"]) else r["mean"]
            std = None if r is None or r["std"] is None or math.isnan(r["std"]) else r["std"]
            line.append(Cell(mean, std, r["n_seeds"] if r else 0))
        cells.append(line)
        seeds.append(max((c.n_seeds for c in line), default=0))
    for j in range(len(columns)):
        mark_ranks([row[j] for row in cells])
    return TableView(metric, columns, labels, methods, cells, seeds, note)


def mark_ranks(column: Sequence[Cell]) -> None:
    """Rank 1 = best, 2 = second best, by the value as displayed (2 decimals): equal
    displayed values share a rank, as they would in the paper."""
    values = sorted({round(c.mean, 2) for c in column if c.mean is not None}, reverse=True)
    for c in column:
        if c.mean is None:
            continue
        v = round(c.mean, 2)
        c.rank = 1 if v == values[0] else (2 if len(values) > 1 and v == values[1] else 0)


def base_source(cfg: Config, layout: Layout) -> str | None:
    """Which base the runs started from, for the table's note: the prebuilt warm-up shipped
    with asym or one warmed up here (the base stage records it in sft_metrics.parquet)."""
    if cfg.model.kind != "tiny":
        return None
    seen = []
    for b in cfg.grid.bases or [None]:
        folder = layout.base_folder(b)
        try:
            meta = artifacts.read_metadata(folder / "sft_metrics.parquet")
        except ArtifactError:
            return None
        src = str(meta.get("base_source", "warmed up here"))
        if src.startswith("prebuilt"):
            src = f"the prebuilt warm-up shipped with asym (recipe {src.split()[1]})"
        else:
            secs = meta.get("seconds")
            src = "warmed up here" + (f" in {float(secs):.0f} s" if secs is not None else "")
        seen.append(src if b is None else f"b{b} {src}")
    return "Base model: " + "; ".join(seen) + "."


def table_note(cfg: Config, table: pa.Table, scores: pa.Table | None, metric: str,
               base: str | None = None) -> str:
    """The text under a table: metric, k and temperature, checkpoint, seeds, spread."""
    rows = [r for r in table.to_pylist() if r["metric"] == metric]
    parts = [METRIC_EXPLAINED[metric] + ", x 100."]
    if scores is not None and scores.num_rows:
        ks: dict[str, set[int]] = {}
        temps: set[float] = set()
        for r in scores.to_pylist():
            ks.setdefault(r["benchmark"], set()).add(r["k"])
            if r["temperature"] is not None:
                temps.add(round(r["temperature"], 3))
        col = {r["benchmark"]: r["col"] for r in rows}
        kt = ", ".join(f"{bench_title(b)} {'/'.join(str(k) for k in sorted(v))}"
                       for b, v in sorted(ks.items(), key=lambda kv: (col.get(kv[0], 1 << 30), kv[0])))
        parts.append(f"k per benchmark: {kt}; temperature {', '.join(f'{t:g}' for t in sorted(temps))}.")
    parts.append("Avg. = mean over the benchmarks (as the paper); '–' = the run lacks a benchmark.")
    steps = sorted({(r["step_min"], r["step_max"]) for r in rows if r["method"] != "base"})
    lo = min((s[0] for s in steps), default=None)
    hi = max((s[1] for s in steps), default=None)
    where = "" if lo is None else (f" = step {lo}" if lo == hi else f" = steps {lo}-{hi}")
    if cfg.report.checkpoint == "final":
        parts.append(f"Checkpoint: each run's final checkpoint (report.checkpoint: final{where}); "
                     f"the base model before RL.")
    else:
        parts.append(f"Checkpoint: step {cfg.report.checkpoint} (report.checkpoint); the base model before RL.")
    n = sorted({r["n_seeds"] for r in rows})
    if n and n[-1] > 1:
        parts.append("Mean over seeds; ± = sample standard deviation over the seeds (n - 1), "
                     "shown for rows with 2 or more seeds (seed counts per row: table2.csv).")
    else:
        parts.append("One seed per row.")
    parts.append("Best per column in bold, second best underlined.")
    if base:
        parts.append(base)
    return " ".join(parts)


# ---------------------------------------------------------------------------
# Renderers
# ---------------------------------------------------------------------------


def to_markdown(view: TableView, title: str = "") -> str:
    def fmt(c: Cell) -> str:
        t = c.text()
        return f"**{t}**" if c.rank == 1 else (f"<u>{t}</u>" if c.rank == 2 else t)

    out = [f"## {title}\n"] if title else []
    out.append("| Method | " + " | ".join(view.titles) + " |")
    out.append("|---|" + "---:|" * len(view.columns))
    for label, line in zip(view.labels, view.cells):
        out.append(f"| {label} | " + " | ".join(fmt(c) for c in line) + " |")
    if view.note:
        out.append(f"\n{view.note}")
    return "\n".join(out) + "\n"


_TEX_ESCAPE = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
               "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def tex_escape(text: str) -> str:
    out = "".join(_TEX_ESCAPE.get(ch, ch) for ch in text)
    return (out.replace("βpos", r"$\beta_{\mathrm{pos}}$").replace("βneg", r"$\beta_{\mathrm{neg}}$")
            .replace("±", r"$\pm$").replace("–", "--"))


def to_latex(view: TableView, caption: str = "") -> str:
    def fmt(c: Cell) -> str:
        t = tex_escape(c.text())
        return rf"\textbf{{{t}}}" if c.rank == 1 else (rf"\underline{{{t}}}" if c.rank == 2 else t)

    lines = [
        "% Generated by `asym report`; needs \\usepackage{booktabs}.",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{tex_escape(caption)}}}" if caption else "",
        r"\begin{tabular}{l" + "c" * len(view.columns) + "}",
        r"\toprule",
        "Method & " + " & ".join(tex_escape(t) for t in view.titles) + r" \\",
        r"\midrule",
    ]
    for label, line in zip(view.labels, view.cells):
        lines.append(tex_escape(label) + " & " + " & ".join(fmt(c) for c in line) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if view.note:
        lines.append(r"\par\smallskip\footnotesize " + tex_escape(view.note))
    lines.append(r"\end{table}")
    return "\n".join(x for x in lines if x) + "\n"


def to_csv(view: TableView) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["label", "method", "beta_pos", "beta_neg", "n_seeds"]
    for c in view.columns:
        head += [c, f"{c}_std"]
    w.writerow(head)
    for label, (m, bp, bn), n, line in zip(view.labels, view.methods, view.seeds, view.cells):
        row: list[Any] = [label, m, "" if bp is None else bp, "" if bn is None else bn, n]
        for c in line:
            row += ["" if c.mean is None else f"{c.mean:.4f}", "" if c.std is None else f"{c.std:.4f}"]
        w.writerow(row)
    return buf.getvalue()


def to_rich(view: TableView, title: str = "") -> Any:
    from rich.table import Table

    t = Table(title=title or None, caption=view.note or None, caption_justify="left", header_style="bold")
    t.add_column("Method")
    for name in view.titles:
        t.add_column(name, justify="right")
    for label, line in zip(view.labels, view.cells):
        t.add_row(label, *[f"[bold]{c.text()}[/]" if c.rank == 1 else
                           (f"[underline]{c.text()}[/]" if c.rank == 2 else c.text()) for c in line])
    return t


# ---------------------------------------------------------------------------
# Training dynamics beside Table 2 (agg/train_stats.parquet)
# ---------------------------------------------------------------------------

DYNAMICS_TITLE = "Training dynamics beside accuracy"
DYNAMICS_HEAD = ["Method", "Avg.", "Ent. mean", "Ent. last", "Reward", "n"]


def dynamics_rows(stats: pa.Table, table2: pa.Table | None, spread: bool = True) -> list[list[str]]:
    """One line per trained Table 2 row: Avg. (Avg@k, from Table 2), entropy (nats/token) as
    the mean over the run and at the last step, training reward over the first and last
    ``window`` steps, seeds. Rows in Table 2's order; ``spread``: ± sample std over seeds."""
    avg = {}
    if table2 is not None:
        for r in table2.to_pylist():
            if r["metric"] == "avg@k" and r["benchmark"] == agg.AVG:
                avg[(r["method"], r["beta_pos"], r["beta_neg"])] = Cell(r["mean"], r["std"], r["n_seeds"])
    out = []
    for r in stats.to_pylist():
        n = r["n_seeds"]
        c = avg.get((r["method"], r["beta_pos"], r["beta_neg"]))
        out.append([
            r["label"], c.text(spread) if c is not None else "–",
            Cell(r["entropy_mean"], r["entropy_mean_std"], n).text(spread, digits=4),
            Cell(r["entropy_final"], r["entropy_final_std"], n).text(spread, digits=4),
            f"{r['reward_first']:.3f}→{r['reward_last']:.3f}" if r["reward_first"] is not None
            and r["reward_last"] is not None else "–",
            str(n),
        ])
    return out


def dynamics_note(stats: pa.Table) -> str:
    rows = stats.to_pylist()
    w = rows[0]["window"] if rows else 10
    return (f"Ent. (entropy): nats/token on the policy's own rollouts, per run the mean over training steps "
            f"(mean) and the last step (last), then the mean over seeds (± sample std). Reward: training "
            f"reward over the first {w} steps → the last {w}. Avg.: Table 2's. Prop. 1 predicts higher "
            f"entropy for beta_pos > beta_neg while kappa > 0; `asym claims` tests it.")


def dynamics_markdown(stats: pa.Table, table2: pa.Table | None) -> str:
    rows = dynamics_rows(stats, table2)
    if not rows:
        return ""
    out = [f"## {DYNAMICS_TITLE}\n", "| " + " | ".join(DYNAMICS_HEAD) + " |",
           "|---|" + "---:|" * (len(DYNAMICS_HEAD) - 1)]
    out += ["| " + " | ".join(line) + " |" for line in rows]
    out.append(f"\n{dynamics_note(stats)}")
    return "\n".join(out) + "\n"


def dynamics_rich(stats: pa.Table, table2: pa.Table | None) -> Any:
    """The terminal version: means only and the seed count in the title, so that it fits 80
    columns; table2.md has the spreads and a seeds column."""
    from rich.table import Table

    ns = sorted({r["n_seeds"] for r in stats.to_pylist()})
    seeds = f"{ns[0]} seed{'s' if ns[0] != 1 else ''} per row" if len(ns) == 1 else "seeds per row: table2.md"
    t = Table(title=f"{DYNAMICS_TITLE} ({seeds})", caption=dynamics_note(stats), caption_justify="left",
              header_style="bold")
    for i, h in enumerate(DYNAMICS_HEAD[:-1]):
        t.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0, min_width=11 if i == 4 else None)
    for line in dynamics_rows(stats, table2, spread=False):
        t.add_row(*line[:-1])
    return t


def grid_markdown(grid: pa.Table) -> str:
    """Figure 4d as a table: rows beta_pos, columns beta_neg, cells Avg. (x 100)."""
    rows = grid.to_pylist()
    if not rows:
        return "## Figure 4d: (βpos, βneg) grid\n\nNo AsymGRPO runs have been evaluated yet.\n"
    bps = sorted({r["beta_pos"] for r in rows}, reverse=True)
    bns = sorted({r["beta_neg"] for r in rows})
    at = {(r["beta_pos"], r["beta_neg"]): r for r in rows}
    best = max(r["mean"] for r in rows if r["mean"] is not None) if any(r["mean"] is not None for r in rows) else None
    out = ["## Figure 4d: (βpos, βneg) grid\n", "| βpos \\ βneg | " + " | ".join(f"{b:g}" for b in bns) + " |",
           "|---|" + "---:|" * len(bns)]
    for bp in bps:
        cells = []
        for bn in bns:
            r = at.get((bp, bn))
            if r is None or r["mean"] is None:
                cells.append("")
                continue
            c = Cell(r["mean"], r["std"], r["n_seeds"]).text()
            cells.append(f"**{c}**" if best is not None and round(r["mean"], 2) == round(best, 2) else c)
        out.append(f"| {bp:g} | " + " | ".join(cells) + " |")
    out.append("\nAvg. over the benchmarks (Avg@k x 100) at the reported checkpoint; best in bold; "
               "empty = not run. ± = sample std over seeds where there are several.")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# index.md and its extension point
# ---------------------------------------------------------------------------


@dataclass
class ReportContext:
    """What a section of index.md may use."""

    cfg: Config
    layout: Layout
    table2: pa.Table | None = None  # agg/table2.parquet (TABLE2), if present
    grid: pa.Table | None = None
    kappa: pa.Table | None = None
    files: list[str] = field(default_factory=list)  # report files present (relative to report/)


SectionFn = Callable[[ReportContext], "str | None"]

#: Sections appended to index.md, in order. Extend with ``@extra_section``.
EXTRA_SECTIONS: list[SectionFn] = []


def extra_section(fn: SectionFn) -> SectionFn:
    """Decorator: append ``fn``'s markdown to index.md (return None to add nothing)."""
    EXTRA_SECTIONS.append(fn)
    return fn


@extra_section
def claims_section(ctx: ReportContext) -> str | None:
    """The paper's claims checked on these runs (asymcli.analysis.claims): summary table + link to claims.md."""
    from .claims import report_section

    return report_section(ctx)


def kappa_markdown(kappa: pa.Table, steps: int) -> str:
    rows = kappa.to_pylist()
    if not rows:
        return ""
    out = [f"## κ̂ over the first {steps} steps (Table 1, x 10³)\n", "| Method | κ̂ x 10³ | seeds |", "|---|---:|---:|"]
    for r in sorted(rows, key=lambda r: agg.row_sort_key(r["method"], r["beta_pos"], r["beta_neg"])):
        v = r["kappa_hat_e3"]
        cell = "–" if v is None or math.isnan(v) else Cell(v, r["std"], r["n_seeds"]).text()
        out.append(f"| {agg.row_label(r['method'], r['beta_pos'], r['beta_neg'])} | {cell} | {r['n_seeds']} |")
    out.append("\nAppendix E: mean over steps of κ_B (groups with mixed outcomes only); a positive value "
               "is the sign condition under which the positive channel sustains entropy (Prop. 1).")
    return "\n".join(out) + "\n"


def index_markdown(ctx: ReportContext, extra_sections: Sequence[SectionFn] | None = None) -> str:
    """index.md: links to the tables and figures, Table 2 inline, kappa-hat, then the
    ``extra_sections`` (default: ``EXTRA_SECTIONS``, which holds the Claims placeholder)."""
    from .figures import FIGURE_CAPTIONS

    cfg = ctx.cfg
    present = set(ctx.files)
    model = cfg.model.path if cfg.model.kind == "hf" else "the embedded tiny model"
    out = [f"# Report: {cfg.name}\n",
           f"Results under `{ctx.layout.root}`; model: {model}. Snakemake runs record the config "
           f"they used in `{ctx.layout.resolved_config.name}` there.\n"]
    out.append("## Tables\n")
    for name, what in (("table2.md", "Table 2 (Avg@k)"), ("table2_passk.md", "pass@k"),
                       ("table2_majk.md", "maj@k"), ("grid.md", "Figure 4d grid")):
        if name in present:
            extra = " ([LaTeX](table2.tex), [CSV](table2.csv))" if name == "table2.md" else ""
            out.append(f"- [{what}]({name}){extra}")
    if ctx.table2 is not None and ctx.table2.num_rows:
        out.append("\n" + to_markdown(table_view(ctx.table2, "avg@k"), ""))
        out.append("Avg@k x 100; notes (k, checkpoint, seeds, spread) under [Table 2](table2.md).\n")
    out.append("## Figures\n")
    shown = False
    for f in REPORT_PARTS["figures"] + ("figures/fig4d_grid.png", "figures/fig_schedule.png"):
        if f in present:
            out.append(f"![{FIGURE_CAPTIONS[f].split(':')[0]}]({f})\n\n{FIGURE_CAPTIONS[f]}\n")
            shown = True
    if not shown:
        out.append("No figures yet (`asym report` or `snakemake figures`).\n")
    if ctx.kappa is not None and ctx.kappa.num_rows:
        out.append(kappa_markdown(ctx.kappa, cfg.report.kappa_steps))
    for fn in EXTRA_SECTIONS if extra_sections is None else extra_sections:
        text = fn(ctx)
        if text:
            out.append(text.rstrip() + "\n")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Writing the report parts
# ---------------------------------------------------------------------------


def _read(path: Path, schema: pa.Schema) -> pa.Table:
    return artifacts.read_parquet(path, schema)


def _read_optional(path: Path, schema: pa.Schema) -> pa.Table | None:
    return _read(path, schema) if path.exists() else None


def write_table2(cfg: Config, layout: Layout) -> list[Path]:
    table = _read(layout.agg("table2"), agg.TABLE2)
    scores = _read_optional(layout.agg("run_scores"), agg.RUN_SCORES)
    stats = _read_optional(layout.agg("train_stats"), agg.TRAIN_STATS)
    out = []
    for metric, stem in METRIC_FILES.items():
        note = table_note(cfg, table, scores, metric, base_source(cfg, layout))
        view = table_view(table, metric, note)
        title = f"Table 2 ({METRIC_TITLES[metric]}): {cfg.name}"
        if not view.labels:
            text = f"## {title}\n\nNo evaluated runs yet.\n"
        else:
            text = to_markdown(view, title)
            if metric == "avg@k" and stats is not None and stats.num_rows:
                text += "\n" + dynamics_markdown(stats, table)
        p = layout.report_dir / f"{stem}.md"
        artifacts.write_text(p, text)
        out.append(p)
        if metric == "avg@k":
            for ext, body in (("tex", to_latex(view, title)), ("csv", to_csv(view))):
                p = layout.report_dir / f"table2.{ext}"
                artifacts.write_text(p, body)
                out.append(p)
    return out


def write_grid(cfg: Config, layout: Layout) -> list[Path]:
    from . import figures

    grid = _read(layout.agg("grid"), agg.GRID)
    p = layout.report_dir / "grid.md"
    artifacts.write_text(p, grid_markdown(grid))
    png = layout.report_dir / "figures" / "fig4d_grid.png"
    scores = _read_optional(layout.agg("run_scores"), agg.RUN_SCORES)
    figures.grid_heatmap(grid, png, scores=scores, checkpoint=cfg.report.checkpoint)
    return [p, png]


def write_figures(cfg: Config, layout: Layout) -> list[Path]:
    from . import figures

    curves = _read(layout.agg("curves"), agg.CURVES)
    scores = _read_optional(layout.agg("run_scores"), agg.RUN_SCORES)
    d = layout.report_dir / "figures"
    pairs = [tuple(float(x) for x in p) for p in cfg.grid.betas]
    schedule = figures.fig_schedule(curves, d / "fig_schedule.png")  # only with asym_adaptive runs
    return [
        figures.fig1_advantages(d / "fig1_advantages.png", group_size=cfg.train.group_size),
        figures.fig2_channels(curves, d / "fig2_channels.png"),
        figures.fig3_flip(curves, d / "fig3_flip.png"),
        figures.fig4_dynamics(curves, d / "fig4_dynamics.png", pairs=pairs,  # type: ignore[arg-type]
                              scores=scores, checkpoint=cfg.report.checkpoint),
    ] + ([schedule] if schedule is not None else [])


def report_files(layout: Layout) -> list[str]:
    d = layout.report_dir
    if not d.is_dir():
        return []
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))


def context(cfg: Config, layout: Layout | None = None) -> ReportContext:
    layout = layout or Layout.of(cfg)
    return ReportContext(
        cfg=cfg, layout=layout,
        table2=_read_optional(layout.agg("table2"), agg.TABLE2),
        grid=_read_optional(layout.agg("grid"), agg.GRID),
        kappa=_read_optional(layout.agg("kappa"), agg.KAPPA),
        files=report_files(layout),
    )


def write_index(cfg: Config, layout: Layout, extra_sections: Sequence[SectionFn] | None = None) -> list[Path]:
    ctx = context(cfg, layout)
    ctx.files = sorted(set(ctx.files) | {"index.md"})
    p = layout.report_dir / "index.md"
    artifacts.write_text(p, index_markdown(ctx, extra_sections))
    return [p]


WRITERS: dict[str, Callable[[Config, Layout], list[Path]]] = {
    "table2": write_table2,
    "grid": write_grid,
    "figures": write_figures,
    "index": write_index,
}


def print_tables(cfg: Config, console: Any, layout: Layout | None = None) -> bool:
    """Print Table 2 (Avg@k) and the grid, if aggregated, with rich. False if nothing to show."""
    layout = layout or Layout.of(cfg)
    shown = False
    t2 = _read_optional(layout.agg("table2"), agg.TABLE2)
    if t2 is not None and t2.num_rows:
        scores = _read_optional(layout.agg("run_scores"), agg.RUN_SCORES)
        view = table_view(t2, "avg@k", table_note(cfg, t2, scores, "avg@k", base_source(cfg, layout)))
        console.print(to_rich(view, f"Table 2 (Avg@k): {cfg.name}"))
        stats = _read_optional(layout.agg("train_stats"), agg.TRAIN_STATS)
        if stats is not None and stats.num_rows:
            console.print(dynamics_rich(stats, t2))
        shown = True
    grid = _read_optional(layout.agg("grid"), agg.GRID)
    if grid is not None and grid.num_rows > 1:
        from rich.markdown import Markdown

        console.print(Markdown(grid_markdown(grid)))
        shown = True
    if shown and (layout.report_dir / "index.md").exists():  # name only a file that exists
        console.print(f"report: {layout.report_dir / 'index.md'}")
    return shown
