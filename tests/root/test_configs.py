"""The shipped configs: they load, the default stays minimal, the paper configs say what
Appendix G/H say and mark every value the paper does not give."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from asymcli.config import Config, load_config, resolve_run
from asymcli.pipeline import REPO_ROOT, grid_pair_runs, table_runs

CONFIGS = REPO_ROOT / "configs"
PAPER = {p.stem: p for p in sorted((CONFIGS / "paper").glob("*.yaml"))}
PAPER_BENCHMARKS = [("math500", 5), ("aime24", 10), ("aime25", 10), ("amc23", 10), ("olympiadbench", 5)]


@pytest.mark.parametrize("path", [CONFIGS / "default.yaml", CONFIGS / "smoke.yaml", *PAPER.values()],
                         ids=lambda p: p.name)
def test_config_loads(path):
    cfg = load_config(path)
    assert table_runs(cfg)
    for m, bp, bn, seed in table_runs(cfg) + grid_pair_runs(cfg):
        resolve_run(cfg, m, bp, bn, seed)  # every run of the grid resolves


def test_paper_configs_exist():
    assert set(PAPER) == {"qwen3-4b", "qwen2.5-math-1.5b", "qwen2.5-7b-base"}


#: What the default sets in its train section: the CPU's fast path (issue 31), nothing else.
FAST_PATH = {"engine": "static", "forward_tokens": 2048, "logprob_gain_every": 10}


def test_default_config_is_minimal():
    """The grid/eval/report sections (and name/results_dir), the fast path's two train keys and
    the bundle size: tuning any other dataclass default carries over to the embedded default."""
    raw = yaml.safe_load((CONFIGS / "default.yaml").read_text())
    assert set(raw) <= {"name", "results_dir", "eval", "grid", "report", "train", "resources"}
    assert raw["train"] == FAST_PATH and raw["resources"] == {"train_bundle": 2}
    defaults = Config()
    for key in ("report",):
        for k, v in raw.get(key, {}).items():
            assert hasattr(getattr(defaults, key), k)
    cfg = load_config(CONFIGS / "default.yaml")
    assert cfg.train == dataclasses.replace(defaults.train, **FAST_PATH)
    assert cfg.model == defaults.model and cfg.task == defaults.task


def test_default_config_is_the_quick_comparison():
    # `asym run-grid --betas 0.9,0.4` on the default: GRPO and REINFORCE beside AsymGRPO.
    cfg = load_config(CONFIGS / "default.yaml")
    assert {"reinforce", "grpo"} <= set(cfg.grid.methods) and [0.9, 0.4] in cfg.grid.betas
    assert cfg.eval.benchmarks[0].temperature == 0.4
    assert cfg.report.ema == 0.7 and cfg.report.checkpoint == "final"


def test_paper_cpu_config_covers_table2_the_figures_and_the_claims():
    cfg = load_config(CONFIGS / "paper-cpu.yaml")
    default = load_config(CONFIGS / "default.yaml")
    # the default's task, base and run settings, except the fast path (its committed runs predate it)
    assert (cfg.task, cfg.model, cfg.base) == (default.task, default.model, default.base)
    assert cfg.train == Config().train and dataclasses.replace(cfg.train, **FAST_PATH) == default.train
    assert cfg.results_dir != default.results_dir  # else the shared runs would retrain back and forth
    assert {"reinforce", "grpo", "grpo_ent", "clip_higher", "dr_grpo", "pos_only", "neg_only"} <= set(cfg.grid.methods)
    assert {"reinforce_ent", "ent_decrease", "ent_increase"} <= set(cfg.grid.methods)
    assert [0.9, 0.4] in cfg.grid.betas and [0.7, 0.7] in cfg.grid.betas
    assert len(cfg.grid.seeds) >= 3


def test_smoke_config_is_tiny():
    cfg = load_config(CONFIGS / "smoke.yaml")
    assert cfg.train.steps == 3 and cfg.base.steps <= 20
    assert cfg.eval.benchmarks[0].limit and cfg.eval.benchmarks[0].limit <= 16
    assert len(table_runs(cfg)) <= 3 and not cfg.grid.grid


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_config_follows_appendix_g_h(name):
    cfg = load_config(PAPER[name])
    t = cfg.train
    assert cfg.model.kind == "hf" and cfg.model.path.startswith("Qwen/")
    assert cfg.task.kind == "benchmark" and cfg.task.source == "math_train"
    assert t.lr == 2e-6 and t.group_size == 8 and t.loss_agg == "token-mean"
    assert [(b.name, b.k) for b in cfg.eval.benchmarks] == PAPER_BENCHMARKS
    assert all(b.temperature == 0.4 for b in cfg.eval.benchmarks)
    assert [0.9, 0.4] in cfg.grid.betas and "grpo" in cfg.grid.methods
    assert cfg.report.ema == 0.7 and cfg.report.kappa_steps == 20


def test_qwen3_4b_settings():
    cfg = load_config(PAPER["qwen3-4b"])
    t = cfg.train
    assert cfg.model.path == "Qwen/Qwen3-4B" and cfg.model.enable_thinking is False
    assert (t.prompts_per_step, t.mini_batch_prompts, t.max_new_tokens) == (128, 64, 4096)
    assert resolve_run(cfg, "grpo_ent").entropy_coef == 0.001
    assert resolve_run(cfg, "reinforce_ent").entropy_coef == 0.005
    assert resolve_run(cfg, "clip_higher").clip_eps_high == 0.28
    # App. G: token-level aggregation "for all settings", Dr.GRPO's row included (chosen).
    assert resolve_run(cfg, "dr_grpo").loss_agg == "token-mean"
    assert [0.7, 0.7] in cfg.grid.betas
    grid = {(bp, bn) for _, bp, bn, _ in grid_pair_runs(cfg)}
    assert {(0.9, 0.4), (0.9, 0.5), (0.5, 0.5)} <= grid
    table2_methods = {"reinforce", "grpo", "grpo_ent", "clip_higher", "dr_grpo", "pos_only", "neg_only"}
    assert table2_methods <= set(cfg.grid.methods)


def test_qwen25_math_15b_settings():
    cfg = load_config(PAPER["qwen2.5-math-1.5b"])
    t = cfg.train
    assert cfg.model.path == "Qwen/Qwen2.5-Math-1.5B"
    assert (t.prompts_per_step, t.mini_batch_prompts, t.max_new_tokens) == (512, 128, 2560)
    assert resolve_run(cfg, "reinforce_ent").entropy_coef == 0.002
    assert {"reinforce", "pos_only", "neg_only", "reinforce_ent", "ent_decrease", "ent_increase"} <= set(cfg.grid.methods)


def _leaf_lines(path: Path):
    """(section, line) of every `key: value` leaf line (not a section header or list item)."""
    section = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            section = line.split(":")[0]
        m = re.match(r"^\s+[\w_]+:\s*(.*)$", line)
        if m and m.group(1).split("#")[0].strip() not in ("",):
            yield section, line


@pytest.mark.parametrize("name", sorted(PAPER))
def test_every_paper_value_cites_the_paper_or_says_chosen(name):
    cited = re.compile(r"#.*(App\. [GH]|Sec\. \d|Table \d|chosen: not in the paper)")
    for section, line in _leaf_lines(PAPER[name]):
        if section in ("model", "train", "methods", "report", "resources", "task"):
            assert cited.search(line), f"{name}: '{line.strip()}' neither cites the paper nor says '# chosen: not in the paper'"
    text = PAPER[name].read_text()
    assert "# chosen: not in the paper" in text


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_configs_mark_the_values_the_paper_leaves_open(name):
    """Issue 13: Dr.GRPO's aggregation, dual-clip, Adam betas/eps, evaluation top_p and
    length, the prompt template and the grader each carry a '# chosen' note."""
    text = PAPER[name].read_text()
    cfg = load_config(PAPER[name])
    for key in ("dual_clip_c: null", "adam_beta1: 0.9", "adam_beta2: 0.999", "adam_eps: 1.0e-8",
                "loss_agg: token-mean         # chosen"):
        line = next((ln for ln in text.splitlines() if key in ln), None)
        assert line is not None and "chosen: not in the paper" in line, (name, key)
    blocks = re.split(r"\n(?!\s*#)", text)  # runs of consecutive comment lines
    for topic in ("(the prompt template)", "(the grader)", "top_p 1.0", "max_new_tokens unset"):
        assert any(topic in b and "chosen: not in the paper" in b for b in blocks), (name, topic)
    assert resolve_run(cfg, "dr_grpo").loss_agg == "token-mean" and cfg.train.dual_clip_c is None
    assert all(b.top_p == 1.0 and b.max_new_tokens is None and b.curve_limit is None for b in cfg.eval.benchmarks)


def test_paper_configs_match_each_other_where_the_paper_does():
    cfgs = {n: load_config(p) for n, p in PAPER.items()}
    shared = {"lr", "group_size", "loss_agg", "eval_every"}
    for n, c in cfgs.items():
        for f in shared:
            assert getattr(c.train, f) == getattr(cfgs["qwen3-4b"].train, f), (n, f)
    assert dataclasses.asdict(cfgs["qwen2.5-7b-base"].eval) == dataclasses.asdict(cfgs["qwen3-4b"].eval)
