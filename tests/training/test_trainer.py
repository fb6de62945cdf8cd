"""The RL trainer on a tiny random model: wiring, every method, resume, numerical guards."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from asymcli import artifacts
from asymcli.config import METHODS, load_config, resolve_run
from asymcli.errors import NumericalError
from asymcli.grading import Verdict
from asymcli.artifacts import list_checkpoints
from asymcli.training.trainer import Trainer

TIMING = {"rollout_s", "update_s", "tokens_per_s", "eval_s"}


class ParityGrader:
    """Deterministic stand-in reward: correct iff the response text has an even length.

    A random tiny model never solves arithmetic; this gives mixed groups so every
    code path (kappa, both advantage channels, log-prob gain) is exercised.
    """

    def __init__(self, **kwargs):  # stands in for Grader(multi_box=...) too (tests/training/test_distributed.py)
        self.kwargs = kwargs

    def grade_many(self, texts, golds):
        return [Verdict(len(t) % 2 == 0, "correct" if len(t) % 2 == 0 else "wrong", t[-3:]) for t in texts]


def small_cfg(**train):
    base = {"steps": 3, "prompts_per_step": 4, "mini_batch_prompts": 2, "group_size": 4, "max_new_tokens": 12,
            "eval_every": 2, "eval_prompts": 4, "checkpoint_every": 2, "lr": 1e-3, "warmup_steps": 1}
    base.update(train)
    return load_config(None, {"model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1,
                                        "intermediate_size": 64}, "train": base})


def split(rows):
    return [r for r in rows if r["split"] == "train"], [r for r in rows if r["split"] != "train"]


def make(cfg, run, rows, model_dir, out, grader=None):
    tr, he = split(rows)
    return Trainer(cfg, run, tr, he, model_dir, out, grader=grader or ParityGrader(), progress=False)


def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def test_metrics_rows_and_schema(tiny_policy_dir, arith_rows, tmp_path):
    cfg = small_cfg()
    run = resolve_run(cfg, "asym", 0.9, 0.4, 0)
    path = make(cfg, run, arith_rows, tiny_policy_dir, tmp_path / "run").train()
    table = artifacts.read_parquet(path, artifacts.METRICS)
    rows = table.to_pylist()
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    meta = artifacts.read_metadata(path)
    assert meta["config"]["run"]["beta_pos"] == 0.9 and meta["config_hash"]
    for r in rows[1:]:
        assert sum(r["p_hist"]) == 4 and len(r["p_hist"]) == 5
        assert r["none_solved_frac"] + r["all_solved_frac"] + r["mixed_frac"] == pytest.approx(1.0)
        assert r["entropy"] > 0 and r["response_len_mean"] > 0 and r["grad_norm"] >= 0
    assert any(not math.isnan(r["kappa"]) for r in rows[1:])
    assert any(not math.isnan(r["logprob_gain_correct"]) for r in rows[1:])
    assert not math.isnan(rows[2]["eval_greedy_acc"]) and math.isnan(rows[1]["eval_greedy_acc"])
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [2, 3]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs(method, tiny_policy_dir, arith_rows, tmp_path):
    cfg = small_cfg(steps=1, eval_every=0, checkpoint_every=0)
    run = resolve_run(cfg, method, 0.7 if method == "asym" else None, 0.3 if method == "asym" else None, 0)
    rows = pq.read_table(make(cfg, run, arith_rows, tiny_policy_dir, tmp_path / method).train()).to_pylist()
    assert len(rows) == 1 and math.isfinite(rows[0]["loss"])


def test_resume_reproduces_uninterrupted_run(tiny_policy_dir, arith_rows, tmp_path):
    cfg = small_cfg(steps=4)
    run = resolve_run(cfg, "grpo", seed=1)
    full = pq.read_table(make(cfg, run, arith_rows, tiny_policy_dir, tmp_path / "a").train()).to_pylist()
    # An interrupted run: it got as far as the step-2 checkpoint and died during step 3.
    make(cfg, dataclasses.replace(run, steps=2), arith_rows, tiny_policy_dir, tmp_path / "b").train()
    (tmp_path / "b" / "metrics.parquet").unlink()
    resumed_trainer = make(cfg, run, arith_rows, tiny_policy_dir, tmp_path / "b")
    assert resumed_trainer.start_step == 3
    resumed = pq.read_table(resumed_trainer.train()).to_pylist()
    assert len(full) == len(resumed) == 5
    for x, y in zip(full, resumed):
        for k in x:
            if k not in TIMING:
                assert same(x[k], y[k]), (x["step"], k, x[k], y[k])


def test_same_seed_same_metrics_different_seed_differs(tiny_policy_dir, arith_rows, tmp_path):
    cfg = small_cfg(steps=2, checkpoint_every=0)
    a = pq.read_table(make(cfg, resolve_run(cfg, "reinforce", seed=0), arith_rows, tiny_policy_dir, tmp_path / "a").train())
    b = pq.read_table(make(cfg, resolve_run(cfg, "reinforce", seed=0), arith_rows, tiny_policy_dir, tmp_path / "b").train())
    c = pq.read_table(make(cfg, resolve_run(cfg, "reinforce", seed=5), arith_rows, tiny_policy_dir, tmp_path / "c").train())
    for k in ("loss", "entropy", "reward_mean", "grad_norm"):
        assert a.column(k).to_pylist()[1:] == b.column(k).to_pylist()[1:]
    assert a.column("entropy").to_pylist()[1:] != c.column("entropy").to_pylist()[1:]


def test_nan_stops_run_naming_step_and_quantity(tiny_policy_dir, arith_rows, tmp_path):
    cfg = small_cfg(steps=3, checkpoint_every=1)
    run = resolve_run(cfg, "grpo", seed=0)
    t = make(cfg, run, arith_rows, tiny_policy_dir, tmp_path / "r")

    def poison(step, row):
        if step == 1:
            with torch.no_grad():
                next(t.model.parameters()).fill_(float("nan"))

    t.on_step = poison
    with pytest.raises(NumericalError, match=r"step 2: .* non-finite value\(s\) in (policy weights|loss|advantages|gradients)"):
        t.train()
    assert [s for s, _ in list_checkpoints(tmp_path / "r" / "checkpoints")] == [1]
    assert not (tmp_path / "r" / "metrics.parquet").exists()


def test_greedy_eval_prompts_spread_over_tiers():
    from asymcli.sampling.curves import spread_rows

    rows = [{"difficulty": t, "i": i} for t in ("t1", "t2", "t3", "t4") for i in range(150)]
    picked = spread_rows(rows, 200)
    assert len(picked) == 200
    assert {r["difficulty"] for r in picked} == {"t1", "t2", "t3", "t4"}
    assert spread_rows(rows[:5], 10) == rows[:5]


def test_resume_accepts_settings_added_later_at_their_defaults(tmp_path):
    """A checkpoint written before a run setting existed (train.adam_eps, train.rollout_shards)
    resumes while the setting keeps its default, and refuses once it differs."""
    from asymcli.config import TrainConfig, config_to_dict
    from asymcli.errors import ArtifactError
    from asymcli.training.checkpointing import _check_same_run

    now = {"run": config_to_dict(TrainConfig()), "model": {}, "task": {}}
    saved = {"run": {k: v for k, v in now["run"].items() if k not in ("adam_eps", "rollout_shards")},
             "model": {}, "task": {}}
    _check_same_run(tmp_path, saved, now)
    now["run"]["rollout_shards"] = 2
    with pytest.raises(ArtifactError, match="train.rollout_shards None -> 2"):
        _check_same_run(tmp_path, saved, now)


def test_mini_batches_take_every_rollout_shard_alike(tiny_policy_dir, arith_rows, tmp_path):
    """With 2 rollout chunks on one process, mini-batch m is the m-th slice of each chunk,
    as it is on 2 processes (each rank's slice of its chunk)."""
    cfg = small_cfg(prompts_per_step=4, mini_batch_prompts=2, group_size=2, rollout_shards=2)
    trainer = make(cfg, resolve_run(cfg, "grpo", seed=0), arith_rows, tiny_policy_dir, tmp_path / "run")
    got = [t.tolist() for t in trainer.mini_batches(4)]
    assert got == [[0, 1, 4, 5], [2, 3, 6, 7]]  # prompts {0, 2} then {1, 3}, G = 2 rows each
    cfg1 = small_cfg(prompts_per_step=4, mini_batch_prompts=2, group_size=2)
    plain = make(cfg1, resolve_run(cfg1, "grpo", seed=0), arith_rows, tiny_policy_dir, tmp_path / "plain")
    assert [t.tolist() for t in plain.mini_batches(4)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
