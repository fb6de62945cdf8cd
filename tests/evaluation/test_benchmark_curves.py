"""Greedy test-accuracy curves for a benchmark config (Appendix G; Figures 2b, 3b, 4c).

A tiny benchmark config with local JSONL files of a few MATH-style problems: the prep
stage marks every training row ``train``, so ``train.eval_every`` evaluates the config's
eval benchmarks at T = 0 (one of them cut to a ``curve_limit`` subset), per benchmark and
as their mean, and the report's test-accuracy panels draw the EMA of that mean.

The reward is a stand-in (:class:`GoldGrader`, correct iff the gold answer is even): the
tiny random policy never solves a problem, and a known accuracy per benchmark is what the
curve must report.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from asymcli.analysis import aggregate, figures
from asymcli import artifacts
from asymcli.config import load_config
from asymcli.grading import Verdict
from stages import prep, train

TRAIN = [("What is $1+1$?", "2"), ("What is $2+5$?", "7"), ("What is $3 \\cdot 3$?", "9"),
         ("Solve $x+1=5$.", "4")]
MATH500 = [(f"What is ${a}+{a}$?", str(2 * a)) for a in range(1, 6)] + \
          [(f"What is ${a}+{a + 1}$?", str(2 * a + 1)) for a in range(1, 5)]  # 9 problems
AIME = [("Find $n$ with $n^2=9$, $n>0$.", "3"), ("What is $10-4$?", "6"), ("What is $7 \\cdot 1$?", "7"),
        ("What is $8/2$?", "4")]
EVAL_EVERY, STEPS, CURVE_LIMIT = 2, 4, 3


class GoldGrader:
    """Correct iff the gold answer is an even number, whatever the response."""

    def __init__(self, **kwargs):  # the trainer passes the grading config (multi_box)
        self.kwargs = kwargs

    def grade_many(self, texts, golds):
        return [Verdict(int(g) % 2 == 0, "correct" if int(g) % 2 == 0 else "wrong", g) for g in golds]


def write_jsonl(path, rows, answer_key="answer"):
    path.write_text("".join(json.dumps({"problem": p, answer_key: a}) + "\n" for p, a in rows))
    return str(path)


def bench_config(tmp_path, policy_dir):
    return load_config(None, {
        "results_dir": str(tmp_path / "results"),
        "task": {"kind": "benchmark", "source": "math_train", "path": write_jsonl(tmp_path / "train.jsonl", TRAIN)},
        "model": {"kind": "hf", "path": str(policy_dir)},
        "train": {"steps": STEPS, "prompts_per_step": 2, "mini_batch_prompts": 2, "group_size": 4,
                  "max_new_tokens": 8, "eval_every": EVAL_EVERY, "checkpoint_every": 0, "lr": 1e-3,
                  "warmup_steps": 1, "device": "cpu"},
        "eval": {"benchmarks": [
            {"name": "math500", "k": 1, "temperature": 0.0, "curve_limit": CURVE_LIMIT,
             "path": write_jsonl(tmp_path / "math500.jsonl", MATH500)},
            {"name": "aime24", "k": 1, "temperature": 0.0, "path": write_jsonl(tmp_path / "aime24.jsonl", AIME)},
        ]},
        "grid": {"methods": ["grpo", "reinforce"]},
    })


def expected_acc(rows):
    return sum(int(a) % 2 == 0 for _, a in rows) / len(rows)


@pytest.fixture(scope="module")
def trained(tiny_policy_dir, tmp_path_factory):
    """(config, {run_id: metrics.parquet}) after prep and two 4-step runs."""
    import asymcli.grading

    tmp_path = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(asymcli.grading, "Grader", GoldGrader)
        cfg = bench_config(tmp_path, tiny_policy_dir)
        prompts = prep.run(cfg)
        assert {r["split"] for r in artifacts.read_parquet(prompts, artifacts.PROMPTS).to_pylist()} == {"train"}
        paths = {rid: train.run(cfg, m, seed=0, progress=False) for rid, m in (("grpo_s0", "grpo"),
                                                                              ("reinforce_s0", "reinforce"))}
    return cfg, paths


def test_benchmark_config_logs_greedy_accuracy_per_benchmark(trained):
    cfg, paths = trained
    rows = artifacts.read_parquet(paths["grpo_s0"], artifacts.METRICS).to_pylist()
    assert [r["step"] for r in rows] == list(range(STEPS + 1))
    subset = [MATH500[i] for i in (0, 4, 8)]  # curve_limit 3: evenly spaced over the 9 problems
    want = {"math500": (CURVE_LIMIT, expected_acc(subset)), "aime24": (len(AIME), expected_acc(AIME))}
    for r in rows:
        if r["step"] % EVAL_EVERY:
            assert r["eval_bench"] == [] and math.isnan(r["eval_greedy_acc"]) and math.isnan(r["eval_s"])
            continue
        # n and acc checked apart: pytest.approx rejects nested structures since pytest 9.2
        got = {b["benchmark"]: (b["n"], b["acc"]) for b in r["eval_bench"]}
        assert sorted(got) == sorted(want), r["step"]
        assert {k: n for k, (n, _) in got.items()} == {k: n for k, (n, _) in want.items()}, r["step"]
        assert {k: a for k, (_, a) in got.items()} == pytest.approx({k: a for k, (_, a) in want.items()}), r["step"]
        assert r["eval_greedy_acc"] == pytest.approx(np.mean([a for _, a in want.values()]))
        assert r["eval_s"] > 0


def test_eval_cost_is_printed_in_the_run_log(tiny_policy_dir, tmp_path, monkeypatch, capfd):
    import asymcli.grading

    monkeypatch.setattr(asymcli.grading, "Grader", GoldGrader)
    cfg = bench_config(tmp_path, tiny_policy_dir)
    cfg.train.steps = 2
    prep.run(cfg)
    train.run(cfg, "grpo", seed=0, progress=False)  # what the Snakemake rule runs (--no-progress)
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if "greedy test accuracy" in ln]
    assert [ln.split(":")[0] for ln in lines] == ["grpo_s0 step 0", "grpo_s0 step 2"]
    assert all("math500 " in ln and "(n=3)" in ln and "aime24 " in ln and "eval took" in ln for ln in lines)


def test_figures_draw_the_benchmark_test_accuracy(trained, tmp_path):
    cfg, paths = trained
    curves = aggregate.curves(paths, ema_weight=cfg.report.ema)
    raw = [r for r in curves.to_pylist() if r["run_id"] == "grpo_s0"]
    acc = [r["eval_greedy_acc"] for r in raw]
    ema = aggregate.ema(acc, cfg.report.ema)
    assert [r["step"] for r in raw if not math.isnan(r["eval_greedy_acc"])] == [0, 2, 4]
    for spec, fig_specs in ((("reinforce", None, None), figures.FIG2_METHODS),
                            (("grpo", None, None), figures.FIG3_METHODS),
                            (("grpo", None, None), figures.FIG4_BASELINES)):
        ax = Figure().subplots()
        missing = figures.panel(ax, curves, fig_specs, "eval_greedy_acc_ema", title="t", ylabel="acc")
        assert figures.row_label(*spec) not in missing
        line = next(ln for ln in ax.lines if ln.get_label() == figures.row_label(*spec))
        assert list(line.get_xdata()) == [0, 2, 4]
        if spec[0] == "grpo":
            assert list(line.get_ydata()) == pytest.approx([e for e in ema if not math.isnan(e)])
    out = tmp_path / "fig"
    for fn, name in ((figures.fig2_channels, "fig2.png"), (figures.fig3_flip, "fig3.png"),
                     (figures.fig4_dynamics, "fig4.png")):
        assert fn(curves, out / name).stat().st_size > 10_000
