"""Report: Table 2 renderings (marks, spread, notes), index.md and its extension point,
figures (PNGs, missing runs), the `asym report` / `asym aggregate` commands."""

from __future__ import annotations

import re
import subprocess
import sys

import pyarrow as pa
import pytest
from rich.console import Console

from asymcli.analysis import aggregate as agg
from asymcli import artifacts
from asymcli.analysis import figures
from asymcli.analysis import report as rep
from asymcli.config import config_from_dict
from asymcli.pipeline import REPORT_PARTS, Layout
from stages import report as report_stage
from tests.pipeline.test_pipeline_fakes import write_fake_results, write_samples

PNG = b"\x89PNG\r\n\x1a\n"


def make_cfg(root, **extra):
    data = {"results_dir": str(root), "grid": {"betas": [[0.7, 0.7], [0.9, 0.4]]},
            "eval": {"benchmarks": [{"name": "math500", "k": 5}, {"name": "aime24", "k": 10}]}}
    data.update(extra)
    return config_from_dict(data)


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """Fake results + one full `report` stage run (aggregation included)."""
    root = write_fake_results(tmp_path_factory.mktemp("results"))
    cfg = make_cfg(root)
    console = Console(record=True, width=160)
    out = report_stage.run(cfg, console=console)
    return cfg, root, out, console.export_text()


def test_report_writes_every_declared_file(reported):
    cfg, root, out, _ = reported
    expected = {root / "report" / f for files in REPORT_PARTS.values() for f in files}
    assert expected <= set(out)
    for p in expected:
        assert p.exists() and p.stat().st_size > 0, p
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG
    for name in agg.SCHEMAS:
        artifacts.read_parquet(Layout.of(cfg).agg(name), agg.SCHEMAS[name])


def test_terminal_table(reported):
    *_, text = reported
    assert "Table 2 (Avg@k)" in text
    assert "AsymGRPO (βpos=0.9, βneg=0.4)" in text and "MATH-500" in text and "Avg." in text
    assert "report/index.md" in text


def test_entropy_beside_accuracy(reported):
    """Table 2's terminal print and table2.md carry each row's training entropy (mean over the
    run, last step) and reward beside its Avg., read from agg/train_stats.parquet."""
    cfg, root, _, text = reported
    stats = artifacts.read_parquet(Layout.of(cfg).agg("train_stats"), agg.TRAIN_STATS).to_pylist()
    t2 = artifacts.read_parquet(Layout.of(cfg).agg("table2"), agg.TABLE2)
    assert rep.DYNAMICS_TITLE in text and "Ent. mean" in text
    md = (root / "report" / "table2.md").read_text()
    section = md.split(f"## {rep.DYNAMICS_TITLE}", 1)[1]
    labels = [r["label"] for r in stats]
    assert "Base model" not in section and labels[0] == "REINFORCE"
    for r in stats:
        line = next(x for x in section.splitlines() if x.startswith(f"| {r['label']} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2].startswith(f"{r['entropy_mean']:.4f}") and cells[3].startswith(f"{r['entropy_final']:.4f}")
        assert cells[4] == f"{r['reward_first']:.3f}→{r['reward_last']:.3f}" and cells[5] == str(r["n_seeds"])
        avg = next(x for x in t2.to_pylist() if x["label"] == r["label"] and x["metric"] == "avg@k"
                   and x["benchmark"] == agg.AVG)
        assert cells[1].startswith(f"{avg['mean']:.2f}")


def num(cell: str) -> float:
    return float(re.search(r"\d+\.\d+", cell).group())


def test_markdown_marks_best_and_second_per_column(reported):
    _, root, _, _ = reported
    md = (root / "report" / "table2.md").read_text()
    table = md.split(f"## {rep.DYNAMICS_TITLE}")[0]  # Table 2 itself, not the dynamics below it
    lines = [line for line in table.splitlines() if line.startswith("| ") and "Method" not in line]
    cols = list(zip(*[[c.strip() for c in line.strip("|").split("|")][1:] for line in lines]))
    for col in cols:
        bold = [c for c in col if c.startswith("**")]
        under = [c for c in col if c.startswith("<u>")]
        assert bold, col
        best = max(num(c) for c in col if c != "–")
        assert all(num(c) == best for c in bold)
        if under:
            assert all(num(c) == num(under[0]) < best for c in under)
            assert not any(num(under[0]) < num(c) < best for c in col if c != "–")
    assert "± = sample standard deviation over the seeds" in md
    assert "final checkpoint" in md and "k per benchmark: MATH-500 5, AIME24 10" in md


def test_latex_and_csv(reported):
    _, root, _, _ = reported
    tex = (root / "report" / "table2.tex").read_text()
    assert r"\textbf{" in tex and r"\underline{" in tex and r"\toprule" in tex
    assert r"AsymGRPO ($\beta_{\mathrm{pos}}$=0.9, $\beta_{\mathrm{neg}}$=0.4)" in tex
    assert "±" not in tex and "β" not in tex  # all escaped for LaTeX
    csv = (root / "report" / "table2.csv").read_text().splitlines()
    assert csv[0].startswith("label,method,beta_pos,beta_neg,n_seeds,math500,math500_std,aime24,aime24_std,Avg.")
    grpo = next(line for line in csv if line.startswith("GRPO,"))
    assert grpo.split(",")[4] == "2" and grpo.split(",")[6] != ""


def test_spread_shown_only_with_several_seeds():
    cells = [rep.Cell(50.0, None, 1), rep.Cell(60.0, 1.234, 2), rep.Cell(None, None, 0)]
    assert [c.text() for c in cells] == ["50.00", "60.00 ± 1.23", "–"]


def test_rank_ties_share_a_mark():
    col = [rep.Cell(50.004, None, 1), rep.Cell(49.996, None, 1), rep.Cell(40.0, None, 1), rep.Cell(30.0, None, 1)]
    rep.mark_ranks(col)
    assert [c.rank for c in col] == [1, 1, 2, 0]


def test_index_links_everything_and_has_the_claims_hook(reported):
    _, root, _, _ = reported
    index = (root / "report" / "index.md").read_text()
    for f in ("table2.md", "table2.tex", "table2.csv", "table2_passk.md", "table2_majk.md", "grid.md",
              "figures/fig1_advantages.png", "figures/fig4d_grid.png"):
        assert f"({f})" in index, f
    assert "## Claims" in index and "κ̂" in index


def test_extra_sections_extend_the_index(reported, monkeypatch):
    cfg, root, _, _ = reported
    monkeypatch.setattr(rep, "EXTRA_SECTIONS", list(rep.EXTRA_SECTIONS))

    @rep.extra_section
    def my_section(ctx: rep.ReportContext) -> str:
        n = ctx.table2.num_rows if ctx.table2 is not None else 0
        return f"## My check\n\n{n} rows seen.\n"

    rep.extra_section(lambda ctx: None)  # adds nothing
    (path,) = rep.write_index(cfg, Layout.of(cfg))
    text = path.read_text()
    assert "## My check" in text and text.index("## Claims") < text.index("## My check")


def test_checkpoint_named_in_the_note(tmp_path):
    write_samples(tmp_path, "grpo_s0", 0.3, steps=(1, 2))
    cfg = make_cfg(tmp_path, report={"checkpoint": "1"})
    report_stage.run(cfg, ["table2"])
    md = (tmp_path / "report" / "table2.md").read_text()
    assert "Checkpoint: step 1 (report.checkpoint)" in md


def test_figures_with_missing_runs_still_render(tmp_path):
    empty = agg.CURVES.empty_table()
    for fn, name in ((figures.fig2_channels, "f2.png"), (figures.fig3_flip, "f3.png"),
                     (figures.fig4_dynamics, "f4.png")):
        p = fn(empty, tmp_path / name)
        assert p.read_bytes()[:8] == PNG
    p = figures.grid_heatmap(agg.GRID.empty_table(), tmp_path / "g.png")
    assert p.read_bytes()[:8] == PNG


def test_grid_cells_carry_spread_and_n(tmp_path):
    """Figure 4d annotates mean ± std and n, so a small spread is not read off the colours alone;
    with a paired test, the tested difference first, with its n and Holm p."""
    assert figures.grid_cell_text({"mean": 69.624, "std": 0.904, "n_seeds": 5}) == "69.6 ± 0.9\nn=5"
    assert figures.grid_cell_text({"mean": 71.33, "std": None, "n_seeds": 1}) == "71.3\nn=1"
    assert figures.grid_cell_text({"mean": 69.6, "std": 0.9, "n_seeds": 5, "d_mean": 0.712, "d_n": 3,
                                   "p_holm": 0.41}) == "Δ +0.71\nn=3, p_Holm 0.41\n69.6 ± 0.9"
    grid = pa.Table.from_pylist(schema=agg.GRID, mapping=[
        {"beta_pos": 0.9, "beta_neg": 0.4, "mean": 69.6, "std": 0.9, "n_seeds": 5, "step_min": 60, "step_max": 60},
        {"beta_pos": 0.7, "beta_neg": 0.7, "mean": 69.3, "std": 0.9, "n_seeds": 5, "step_min": 60, "step_max": 60}])
    assert figures.grid_heatmap(grid, tmp_path / "g.png").read_bytes()[:8] == PNG


def test_panel_reports_missing_methods():
    from matplotlib.figure import Figure

    root_rows = []
    import tests.pipeline.test_pipeline_fakes as fakes

    for step, row in enumerate(fakes.metrics_rows(4, 0.3), start=1):
        root_rows.append({"run_id": "reinforce_s0", "method": "reinforce", "beta_pos": None, "beta_neg": None,
                          "seed": 0, **{k: row[k] for k in agg.CURVES.names if k in row},
                          "eval_greedy_acc_ema": row["eval_greedy_acc"]})
    curves = artifacts.to_table(root_rows, agg.CURVES)
    ax = Figure().subplots()
    missing = figures.panel(ax, curves, figures.FIG2_METHODS, "entropy", title="t", ylabel="y")
    assert missing == ["Pos-Only Modulation", "Neg-Only Modulation", "REINFORCE w/ Entro. Reg."]
    # named by the figure's title (figures._not_run), never in a box over the panel's data
    assert not ax.texts
    assert figures._not_run(missing) == "; not run: Pos-Only Modulation, Neg-Only Modulation, REINFORCE w/ Entro. Reg."
    s = figures.series(curves, ("reinforce", None, None), "eval_greedy_acc_ema")
    assert s is not None and list(s[0]) == [2, 4] and s[3] == 1


def test_report_stage_rejects_unknown_part(tmp_path):
    from asymcli.errors import ConfigError

    with pytest.raises(ConfigError, match="--part 'tables': must be one of table2, grid, figures, index"):
        report_stage.run(make_cfg(tmp_path), ["tables"])
    assert not (tmp_path / "report").exists()


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "asymcli.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_cli_aggregate_and_report(tmp_path):
    root = write_fake_results(tmp_path / "results")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"results_dir: {root}\ngrid: {{betas: [[0.9, 0.4]]}}\n"
                   "eval: {benchmarks: [{name: math500, k: 5}, {name: aime24, k: 10}]}\n")
    res = run_cli("aggregate", "--config", str(cfg), "--part", "table2", "--runs", "base,grpo_s0,grpo_s1",
                  cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    t = artifacts.read_parquet(root / "agg" / "table2.parquet", agg.TABLE2)
    assert {r["method"] for r in t.to_pylist()} == {"base", "grpo"}
    res = run_cli("report", "--config", str(cfg), "--part", "table2", "--no-aggregate", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "GRPO" in res.stdout and "Pos-Only" not in res.stdout  # --no-aggregate used agg/ as is
    res = run_cli("aggregate", "--config", str(cfg), "--runs", "grpo_s0,nonsense", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert re.match(r"error: 'nonsense' is not a run id", res.stderr)
    res = run_cli("aggregate", "--config", str(cfg), "--runs", "pos_only_s7", cwd=tmp_path)
    assert res.returncode == 2 and "pos_only_s7/samples.parquet: artifact does not exist" in res.stderr
