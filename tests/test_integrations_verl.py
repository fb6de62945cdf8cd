"""The verl estimators against the real verl: through its registry, its config and its trainer's
``compute_advantage``, equal to ``asymcli.algorithm`` on the same rewards."""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")
from omegaconf import OmegaConf, open_dict  # noqa: E402  (a verl dependency)
from verl import DataProto  # noqa: E402

from asymcli.algorithm import metrics as M  # noqa: E402
from asymcli.algorithm.advantages import compute_advantages  # noqa: E402
from asymcli.integrations import verl as integ  # noqa: E402
from tests._readme import readme_block  # noqa: E402

BETAS = {"asym_grpo": (0.9, 0.4), "pos_only": (None, None), "neg_only": (None, None),
         "ent_decrease": (0.3, 0.7), "ent_increase": (0.7, 0.3)}


def make_batch(n_groups: int, group_size: int, seed: int, length: int = 6):
    """verl-shaped outcome rewards: token_level_rewards (bs, T) with the 0/1 reward on the last
    response token, response_mask (bs, T) of varying lengths, uid strings in shuffled order.
    Returns (token_level_rewards, response_mask, index, scores [bs], group_ids [bs])."""
    g = torch.Generator().manual_seed(seed)
    bs = n_groups * group_size
    group_ids = torch.randperm(bs, generator=g) % n_groups  # groups interleaved, as after balancing
    # Per-group accuracy spread over [0, 1] so that uniform groups (p = 0, 1) occur too.
    p_group = torch.rand(n_groups, generator=g).round(decimals=1)
    scores = (torch.rand(bs, generator=g) < p_group[group_ids]).float()
    lengths = torch.randint(1, length + 1, (bs,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).float()
    rewards = torch.zeros(bs, length)
    rewards[torch.arange(bs), lengths - 1] = scores
    index = np.array([f"uid-{int(i) * 7919 % 1000:03d}" for i in group_ids], dtype=object)
    return rewards, mask, index, scores, group_ids


GRID = [(1, 2, 0), (3, 4, 1), (8, 8, 2), (5, 16, 3)]


@pytest.mark.parametrize("verl_name", list(integ.VERL_ESTIMATORS))
@pytest.mark.parametrize("n_groups,group_size,seed", GRID)
def test_registered_estimator_equals_the_registry(verl_name, n_groups, group_size, seed):
    rewards, mask, index, scores, group_ids = make_batch(n_groups, group_size, seed)
    beta_pos, beta_neg = BETAS[verl_name]
    config = OmegaConf.create({"adv_estimator": verl_name, "asym_beta_pos": beta_pos, "asym_beta_neg": beta_neg})
    fn = core_algos.get_adv_estimator_fn(verl_name)
    adv, returns = fn(token_level_rewards=rewards, response_mask=mask, index=index, config=config)
    expected = compute_advantages(integ.VERL_ESTIMATORS[verl_name], scores, group_ids,
                                  beta_pos=beta_pos, beta_neg=beta_neg)
    assert adv.shape == returns.shape == rewards.shape and adv.dtype == rewards.dtype
    torch.testing.assert_close(adv, expected[:, None] * mask)
    torch.testing.assert_close(returns, adv)


@pytest.mark.parametrize("n_groups,group_size,seed", GRID)
def test_verl_grpo_equals_grpo_unbiased(n_groups, group_size, seed):
    rewards, mask, index, scores, group_ids = make_batch(n_groups, group_size, seed)
    ours = compute_advantages("grpo_unbiased", scores, group_ids, eps=1e-6)
    for name in ("grpo", "grpo_vectorized"):
        adv, _ = core_algos.get_adv_estimator_fn(name)(token_level_rewards=rewards, response_mask=mask, index=index)
        torch.testing.assert_close(adv, ours[:, None] * mask, msg=f"verl {name}")


def test_betas_come_from_the_algorithm_section():
    rewards, mask, index, scores, group_ids = make_batch(4, 8, 0)
    fn = core_algos.get_adv_estimator_fn("asym_grpo")
    default, _ = fn(rewards, mask, index, config=None)  # no config: the paper's (0.9, 0.4)
    torch.testing.assert_close(default, compute_advantages("asym", scores, group_ids)[:, None] * mask)
    reinforce, _ = fn(rewards, mask, index, config={"asym_beta_pos": 0, "asym_beta_neg": 0.0})
    torch.testing.assert_close(reinforce, (2 * scores - 1)[:, None] * mask)
    with pytest.raises(ValueError, match=r"adv_estimator=pos_only \(algorithm.asym_beta_pos=0.9.*fixes beta_pos=0.5"):
        core_algos.get_adv_estimator_fn("pos_only")(rewards, mask, index, config={"asym_beta_pos": 0.9})
    with pytest.raises(ValueError, match="adv_estimator=asym_grpo.*needs binary rewards"):
        fn(rewards * 0.5, mask, index)


def test_registration_is_verls_and_idempotent():
    assert integ.register() == list(integ.VERL_ESTIMATORS)  # again: the same functions, accepted
    for name in integ.VERL_ESTIMATORS:
        assert core_algos.ADV_ESTIMATOR_REGISTRY[name] is core_algos.get_adv_estimator_fn(name)
    with pytest.raises(ValueError, match="asym_grpo has already been registered"):
        core_algos.register_adv_est("asym_grpo")(lambda **kw: None)


def hydra_like(overrides: list[str]):
    """verl's ppo_trainer.yaml composed as Hydra would (its ``group@path: name`` defaults with a
    literal name; enough for the keys the README sets), then the command-line overrides:
    a plain ``key=value`` must name an existing key, ``+key=value`` adds one."""
    config_dir = Path(core_algos.__file__).resolve().parents[1] / "config"
    cfg = OmegaConf.load(config_dir / "ppo_trainer.yaml")
    for entry in OmegaConf.to_container(cfg.pop("defaults"), resolve=False):
        if not isinstance(entry, dict):
            continue  # a plain config name such as _self_
        ((spec, name),) = entry.items()
        if "@" not in spec or "$" in name:
            continue
        group, path = spec.split("@")
        sub = OmegaConf.load(config_dir / group / f"{name}.yaml")
        sub.pop("defaults", None)
        OmegaConf.update(cfg, path, OmegaConf.merge(sub, OmegaConf.select(cfg, path) or {}), force_add=True)
    OmegaConf.set_struct(cfg, True)
    for item in overrides:
        key, value = item.split("=", 1)
        value = OmegaConf.from_dotlist([f"v={value}"]).v
        if key.startswith("+"):
            with open_dict(cfg):
                OmegaConf.update(cfg, key[1:], value, force_add=True)
        else:
            OmegaConf.update(cfg, key, value)  # raises if absent, as Hydra does without '+'
    return cfg


def test_readme_verl_command_runs_through_verls_compute_advantage():
    ray_trainer = pytest.importorskip("verl.trainer.ppo.ray_trainer")  # needs torchdata and peft too
    words = shlex.split(readme_block("bash").replace("\\\n", " "))
    env = dict(w.split("=", 1) for w in words[:words.index("python")])
    assert words[words.index("python"):][:3] == ["python", "-m", "verl.trainer.main_ppo"]
    overrides = words[words.index("verl.trainer.main_ppo") + 1:]
    # The variable makes verl import the module whenever verl itself is imported (a fresh
    # interpreter: this one imported it already).
    probe = "import sys, verl; from verl.trainer.ppo.core_algos import get_adv_estimator_fn as f; " \
            "assert 'asymcli.integrations.verl' in sys.modules; print(f('asym_grpo').__name__)"
    run = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **env}, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.split() == ["compute_asym_grpo_advantage"], run.stderr[-2000:]
    cfg = hydra_like(overrides)
    algorithm = cfg.algorithm
    assert algorithm.adv_estimator == "asym_grpo" and algorithm.use_kl_in_reward is False

    group_size = cfg.actor_rollout_ref.rollout.n
    rewards, mask, index, scores, group_ids = make_batch(6, group_size, 3)
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask},
                               non_tensors={"uid": index})
    out = ray_trainer.compute_advantage(data, adv_estimator=algorithm.adv_estimator, config=algorithm,
                                        num_repeat=group_size)
    expected = compute_advantages("asym", scores, group_ids, beta_pos=algorithm.asym_beta_pos,
                                  beta_neg=algorithm.asym_beta_neg)
    assert (algorithm.asym_beta_pos, algorithm.asym_beta_neg) == (0.9, 0.4)
    torch.testing.assert_close(out.batch["advantages"], expected[:, None] * mask)


def diagnostics_batch(seed: int = 0):
    rewards, mask, index, scores, group_ids = make_batch(6, 4, seed)
    g = torch.Generator().manual_seed(seed + 100)
    old = -torch.rand(rewards.shape, generator=g) * 3
    data = DataProto.from_dict(tensors={"token_level_scores": rewards, "token_level_rewards": rewards,
                                        "response_mask": mask, "old_log_probs": old},
                               non_tensors={"uid": index})
    return data, scores, group_ids, mask, old


def test_batch_metrics_reuse_the_metric_functions():
    data, scores, group_ids, mask, old = diagnostics_batch()
    new = old + 0.1 * torch.randn(old.shape, generator=torch.Generator().manual_seed(5))
    got = integ.batch_metrics(data, new_log_probs=new)
    none, full, mixed = M.solved_fractions(scores, group_ids)
    want = {"asym/none_solved_frac": none, "asym/all_solved_frac": full, "asym/mixed_frac": mixed,
            "asym/kappa_batch": M.kappa_batch(old, mask, scores, group_ids)}
    seq, tok = M.logprob_gain_correct(new, old, mask, scores > 0.5)
    want.update({"asym/logprob_gain_correct": seq, "asym/logprob_gain_correct_tok": tok})
    assert got.keys() == want.keys() and all(math.isfinite(v) for v in got.values())
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key
    # Non-binary outcomes (e.g. a KL penalty in the reward): no diagnostics rather than wrong ones.
    data.batch["token_level_scores"] = data.batch["token_level_scores"] * 0.5
    assert integ.batch_metrics(data) == {}


def test_mixin_adds_the_metrics_to_verls_actor_output(monkeypatch):
    ray_trainer = pytest.importorskip("verl.trainer.ppo.ray_trainer")
    RayPPOTrainer = ray_trainer.RayPPOTrainer
    data, scores, group_ids, _, old = diagnostics_batch(1)
    new = old + 0.05
    calls = []

    # The actor update and log-prob recomputation run on Ray workers: stand in for them here.
    def update_actor(self, batch):
        calls.append("update")
        return DataProto.from_single_dict(data={}, meta_info={"metrics": {"actor/pg_loss": 0.1}})

    def compute_old_log_prob(self, batch):
        calls.append("recompute")
        return DataProto.from_dict(tensors={"old_log_probs": new}), 0.0

    monkeypatch.setattr(RayPPOTrainer, "_update_actor", update_actor)
    monkeypatch.setattr(RayPPOTrainer, "_compute_old_log_prob", compute_old_log_prob)

    class Trainer(integ.AsymMetricsMixin, RayPPOTrainer):
        pass

    trainer = Trainer.__new__(Trainer)  # verl's __init__ starts worker groups
    trainer.config = OmegaConf.create({"algorithm": {"adv_estimator": "asym_grpo"}})
    metrics = trainer._update_actor(data).meta_info["metrics"]
    assert calls == ["update"] and metrics["actor/pg_loss"] == 0.1
    assert metrics["asym/mixed_frac"] == pytest.approx(M.solved_fractions(scores, group_ids)[2])
    assert "asym/logprob_gain_correct" not in metrics
    trainer.config = OmegaConf.create({"algorithm": {"adv_estimator": "asym_grpo", "asym_log_prob_gain": True}})
    metrics = trainer._update_actor(data).meta_info["metrics"]
    assert calls == ["update", "update", "recompute"]
    assert metrics["asym/logprob_gain_correct_tok"] == pytest.approx(0.05)
    # verl's fit() reduces these with reduce_metrics before its tracker logs them.
    from verl.utils.metric import reduce_metrics
    assert reduce_metrics(metrics)["asym/kappa_batch"] == pytest.approx(metrics["asym/kappa_batch"])

