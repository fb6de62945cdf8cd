"""The RL trainer on a tiny random model: wiring, every method on its own advantages, resume,
numerical guards."""

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
from asymcli.algorithm.advantages import ESTIMATORS
from asymcli.training.policy import response_logprobs
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


class FixedGrader:
    """Stand-in reward with known values: the i-th response of the step is correct iff
    ``pattern[i]`` (the rollouts come prompt by prompt, G in a row), so every group's accuracy
    and every advantage is known before the step runs."""

    def __init__(self, pattern):
        self.pattern = [bool(c) for c in pattern]

    def grade_many(self, texts, golds):
        assert len(texts) == len(self.pattern), (len(texts), len(self.pattern))
        return [Verdict(c, "correct" if c else "wrong", t[-3:]) for c, t in zip(self.pattern, texts)]


# The known batch: 6 prompts x G = 4 rollouts, groups with 1, 2, 3, 0, 4 and 1 correct, so each
# channel is seen at p = 1/4, 1/2 and 3/4 and at the ends p = 0 (failed only) and 1 (correct only).
G = 4
KNOWN = [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0]


# Each method's advantage of a rollout with reward r in a group of accuracy p, written from the
# paper's equations here rather than read from asymcli.algorithm.advantages, so that a method
# wired to the wrong estimator or betas fails. 0 ** 0 = 1, as Eq. (5) reads at p in {0, 1}.
def _a_pos(p, b):  # Eq. (5), correct rollouts
    return ((1 - p) / p) ** b


def _a_neg(p, b):  # Eq. (5), failed rollouts
    return -((p / (1 - p)) ** b)


def _asym(bp, bn):  # Eq. (8)
    return lambda r, p: _a_pos(p, bp) if r else _a_neg(p, bn)


def _grpo(r, p):  # Eq. (3): (r - mean) / population std; a group without contrast gets 0
    return 0.0 if p in (0.0, 1.0) else (r - p) / math.sqrt(p * (1 - p))


def _ent_decrease(r, p, b=0.5):
    """App. C: the positive channel reflected, B_pos(p) = A_pos(1 - p), and past (G-1)/G the
    line through its last two grid points; the negative channel unchanged."""
    if not r:
        return _a_neg(p, b)
    last = (G - 1) / G
    return _a_pos(1 - p, b) if p <= last else 2 * _a_pos(1 - last, b) - _a_pos(1 - (G - 2) / G, b)


def _ent_increase(r, p, b=0.5):
    """App. C: the negative channel reflected, B_neg(p) = A_neg(1 - p), and below 1/G the line
    through its first two grid points; the positive channel unchanged."""
    if r:
        return _a_pos(p, b)
    first = 1 / G
    return _a_neg(1 - p, b) if p >= first else 2 * _a_neg(1 - first, b) - _a_neg(1 - 2 / G, b)


EXPECTED = {
    "reinforce": _asym(0.0, 0.0), "reinforce_ent": _asym(0.0, 0.0),  # Eq. (2): 2r - 1
    "grpo": _grpo, "grpo_ent": _grpo, "clip_higher": _grpo,
    "dr_grpo": lambda r, p: r - p,  # Liu et al.: no std division
    "pos_only": _asym(0.5, 0.0), "neg_only": _asym(0.0, 0.5),
    "ent_decrease": _ent_decrease, "ent_increase": _ent_increase,
    "asym": _asym(0.7, 0.3),  # the run's betas below
    "asym_adaptive": None,  # Eq. (8) with the betas the schedule set for this step
}


def test_every_method_has_an_expected_advantage():
    assert set(EXPECTED) == set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_on_its_own_advantages(method, tiny_policy_dir, arith_rows, tmp_path):
    """On the known batch, the advantages the trainer uses are the method's own (EXPECTED, and
    the registry's estimator with the method's betas), and its loss pushes each response's
    log-probs the way its advantage points; then the update runs to a finite loss."""
    cfg = small_cfg(steps=1, prompts_per_step=6, mini_batch_prompts=3, group_size=G, eval_every=0,
                    checkpoint_every=0)
    run = resolve_run(cfg, method, 0.7 if method == "asym" else None, 0.3 if method == "asym" else None, 0)
    trainer = make(cfg, run, arith_rows, tiny_policy_dir, tmp_path / method, grader=FixedGrader(KNOWN))
    if method == "asym_adaptive":  # the schedule's state as a run resumed mid-schedule carries it,
        # away from the run's own (0.5, 0.5): its first step alone would not move the betas
        trainer.schedule = dataclasses.replace(trainer.schedule, beta_pos=0.8, beta_neg=0.2)
    sb, _ = trainer.rollout(1)
    assert sb.rewards.tolist() == KNOWN
    assert sb.group_ids.tolist() == [g for g in range(len(KNOWN) // G) for _ in range(G)]

    # 1. The advantages of the StepBatch the update reads.
    bp, bn = (0.7, 0.3) if method == "asym" else (METHODS[method].get("beta_pos"), METHODS[method].get("beta_neg"))
    formula = EXPECTED[method]
    if method == "asym_adaptive":
        bp, bn = trainer.betas()  # this step's, set by the schedule from this step's rollouts
        assert bp - bn == pytest.approx(0.6), (bp, bn)
        formula = _asym(bp, bn)
    acc = [sum(KNOWN[i - i % G : i - i % G + G]) / G for i in range(len(KNOWN))]
    want = torch.tensor([formula(r, p) for r, p in zip(KNOWN, acc)], dtype=torch.float64)
    A = sb.advantages
    torch.testing.assert_close(A.double(), want, rtol=1e-5, atol=1e-6)
    own = ESTIMATORS[METHODS[method]["estimator"]](sb.rewards, sb.group_ids, beta_pos=bp, beta_neg=bn)
    torch.testing.assert_close(A, own, rtol=0, atol=0)

    # 2. The loss the update minimises, at the rollout policy (ratio 1, nothing clipped): its
    # gradient in each response token's log-prob is -c * A of that response, one c > 0 for the
    # batch, so a descent step raises the log-probs of A > 0 responses and lowers those of A < 0.
    rows = torch.arange(len(KNOWN))
    mask = sb.batch.resp_mask
    logp = sb.old_logp.clone().requires_grad_(True)
    loss, _ = trainer.micro_loss(sb, rows, logp, sb.old_entropy.clone(), mask, trainer.agg_denom(sb, rows))
    loss.backward()
    grad, along = logp.grad * mask, A[:, None] * mask
    c = -float((grad * along).sum() / (along * along).sum())
    assert c > 0, (method, c)
    torch.testing.assert_close(grad, -c * along, rtol=1e-5, atol=1e-9)

    # 3. The update itself runs on them to a finite loss.
    assert math.isfinite(trainer.update(1, sb)["loss"])


@pytest.mark.parametrize("correct", [1, 0], ids=["all-correct", "all-wrong"])
def test_an_update_moves_log_probs_the_way_the_advantages_point(correct, tiny_policy_dir, arith_rows, tmp_path):
    """REINFORCE on a batch where every response is correct (every advantage +1): one update
    raises the log-probs of those responses; every response wrong (every advantage -1): it
    lowers them. Through Trainer.update, the optimizer step included."""
    cfg = small_cfg(steps=1, eval_every=0, checkpoint_every=0)
    n = cfg.train.prompts_per_step * cfg.train.group_size
    trainer = make(cfg, resolve_run(cfg, "reinforce", seed=0), arith_rows, tiny_policy_dir, tmp_path / "r",
                   grader=FixedGrader([correct] * n))
    sb, _ = trainer.rollout(1)
    assert sb.advantages.tolist() == [1.0 if correct else -1.0] * n

    def seq_logp():
        trainer.model.eval()
        with torch.no_grad():
            return response_logprobs(trainer.model, sb.batch)[0].sum(dim=1)

    before = seq_logp()
    trainer.update(1, sb)
    moved = (seq_logp() - before) * (1 if correct else -1)
    assert moved.mean() > 0 and (moved > 0).float().mean() >= 0.75, moved


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
