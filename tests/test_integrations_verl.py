"""The verl estimators against the real verl: through its registry, its config and its trainer's
``compute_advantage``, equal to ``asymcli.algorithm`` on the same rewards."""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import sys
import types
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
from tests._readme import example_block  # noqa: E402

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
    literal name; enough for the keys the example sets), then the command-line overrides:
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
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg, overrides: list[str]):
    """Hydra's command-line overrides on a composed config: a plain ``key=value`` must name an
    existing key, ``+key=value`` adds one."""
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
    words = shlex.split(example_block("bash").replace("\\\n", " "))
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



def test_unknown_asym_key_fails_naming_it():
    rewards, mask, index, _, _ = make_batch(2, 4, 0)
    fn = core_algos.get_adv_estimator_fn("asym_grpo")
    misspelt = OmegaConf.create({"adv_estimator": "asym_grpo", "asym_beta_postive": 0.9})
    with pytest.raises(ValueError, match=r"^unknown key algorithm\.asym_beta_postive \(asymcli") as err:
        fn(rewards, mask, index, config=misspelt)
    assert "\n" not in str(err.value)
    integ.check_keys({"asym_beta_pos": 1, "asym_beta_neg": 0, "asym_log_prob_gain": True, "gamma": 1.0})
    # The Hydra command line composes it (a '+' key), so the trainer is where it must fail.
    cfg = hydra_like(["algorithm.adv_estimator=asym_grpo", "+algorithm.asym_beta_postive=0.9"])
    with pytest.raises(ValueError, match="algorithm.asym_beta_postive"):
        integ.check_keys(cfg.algorithm)


def session_batch():
    """verl v1 agent-loop rows of one prompt (uid u), 4 sessions, keys ``{uid}_{session}_{i}``.
    Session 0 succeeds at its final output (index 1) after a failed intermediate one (index 0);
    sessions 1-3 fail. The issue's case: verl's grpo gives the intermediate output +1.5."""
    keys = ["u_0_0", "u_0_1", "u_1_0", "u_2_0", "u_3_0"]
    scores = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0])
    lengths = torch.tensor([3, 5, 4, 2, 5])
    mask = (torch.arange(5)[None, :] < lengths[:, None]).float()
    rewards = torch.zeros(5, 5)
    rewards[torch.arange(5), lengths - 1] = scores
    uid = np.array(["u"] * 5, dtype=object)
    return keys, rewards, mask, uid


def test_multi_output_sessions_are_scored_by_their_final_output():
    ray_trainer = pytest.importorskip("verl.trainer.ppo.ray_trainer")
    keys, rewards, mask, uid = session_batch()

    def data():
        return DataProto.from_dict(tensors={"token_level_rewards": rewards.clone(), "response_mask": mask},
                                   non_tensors={"uid": uid})

    config = OmegaConf.create({"adv_estimator": "asym_grpo", "asym_beta_pos": 0.9, "asym_beta_neg": 0.4})
    # What verl v1 did for a non-grpo estimator: every output scored, the intermediate one as a failure.
    flat = ray_trainer.compute_advantage(data(), adv_estimator="asym_grpo", config=config).batch["advantages"]
    assert flat[0, 0] < 0
    got = integ.session_final_advantage(data(), keys, "asym_grpo", config=config).batch["advantages"]
    finals = compute_advantages("asym", torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.zeros(4, dtype=torch.int64),
                                beta_pos=0.9, beta_neg=0.4)  # sessions 0..3, p = 1/4
    per_row = finals[[0, 0, 1, 2, 3]]
    torch.testing.assert_close(got, per_row[:, None] * mask)
    assert got[0, 0] > 0 and got[0, 0] == got[1, 0]  # the intermediate output shares the success
    # verl's own rule, on its grpo, gives the same signs on every row (+1.5 on the intermediate output).
    import_verl_v1()
    from verl.trainer.ppo.v1 import utils as v1_utils
    verl_multi = getattr(v1_utils.compute_advantage_for_multi_trajectories, "__wrapped__",
                         v1_utils.compute_advantage_for_multi_trajectories)
    grpo = verl_multi(data(), batch_keys=keys, adv_estimator="grpo", num_repeat=4).batch["advantages"]
    assert grpo[0, 0] == pytest.approx(1.5, rel=1e-5)
    assert torch.equal(torch.sign(grpo), torch.sign(got))
    # One output per session: the plain estimator.
    single = integ.session_final_advantage(data(), ["u_0_0", "u_9_1", "u_1_0", "u_2_0", "u_3_0"], "asym_grpo",
                                           config=config).batch["advantages"]
    torch.testing.assert_close(single, flat)


def import_verl_v1():
    """verl's v1 trainer package (``verl.trainer.ppo.v1``), with the asym trainer modes registered.

    Skips without TransferQueue (which the v1 trainer needs). verl's agent-loop module imports
    ``hydra`` at its top and uses it only when it builds agent loops; hydra-core needs antlr4 4.9,
    math-verify (asym's grader) 4.13, so where hydra does not import an empty module stands in
    for that import and is removed again."""
    pytest.importorskip("transfer_queue")
    if "verl.trainer.ppo.v1.trainer_base" not in sys.modules:
        try:
            import hydra  # noqa: F401
            stub = False
        except Exception:  # not installed, or hydra-core against antlr4 4.13
            for name in [m for m in sys.modules if m == "hydra" or m.startswith("hydra.")]:
                del sys.modules[name]
            sys.modules["hydra"] = types.ModuleType("hydra")
            stub = True
        try:
            v1 = pytest.importorskip("verl.trainer.ppo.v1")
        finally:
            if stub:
                del sys.modules["hydra"]
    import verl.trainer.ppo.v1 as v1

    assert integ.register_trainers() == ["asym_sync", "asym_colocate_async", "asym_separate_async"]
    return v1


class FakeTransferQueue:
    """TransferQueue's KV interface (``kv_batch_get`` / ``kv_batch_put``) in memory: the Ray
    controller and storage actors it starts do not fit a CI machine. Values are stored per key and
    field; response-level fields come back as jagged nested tensors, as from TransferQueue."""

    def __init__(self):
        self.rows: dict[str, dict] = {}
        self.tags: dict[str, dict] = {}

    def kv_batch_put(self, keys, partition_id, fields=None, tags=None):
        from transfer_queue import KVBatchMeta

        for i, key in enumerate(keys):
            row = self.rows.setdefault(key, {})
            for name in fields.keys():
                value = fields[name]
                row[name] = value[i] if isinstance(value, list) else value.unbind(0)[i] if value.is_nested else value[i]
            if tags is not None:
                self.tags[key] = tags[i]
        # As TransferQueue: the keys' stored tags (is_padding...) come back with them.
        return KVBatchMeta(keys=list(keys), tags=[self.tags.get(k, {}) for k in keys], partition_id=partition_id)

    def kv_batch_get(self, keys, partition_id, select_fields=None):
        from tensordict import TensorDict

        out = {}
        for name in select_fields:
            values = [self.rows[k][name] for k in keys if name in self.rows[k]]
            if len(values) < len(keys):
                continue  # a field the rows do not have (e.g. values without a critic)
            out[name] = values if isinstance(values[0], str) else torch.nested.as_nested_tensor(
                values, layout=torch.jagged)
        return TensorDict(out, batch_size=len(keys))


class FakeActorWorkerGroup:
    """The actor's Ray worker group: verl's ``update_actor`` output, metrics per micro-batch."""

    def __init__(self, store: FakeTransferQueue, new_log_probs: dict[str, torch.Tensor]):
        self.store, self.new_log_probs, self.calls = store, new_log_probs, []

    def update_actor(self, batch):
        self.calls.append(("update_actor", dict(batch.extra_info)))
        # The update reads the advantages verl wrote into the TransferQueue.
        self.advantages = self.store.kv_batch_get(batch.keys, batch.partition_id, ["advantages"])
        return {"metrics": {"pg_loss": [0.1, 0.3], "mfu": [0.5]}}

    def compute_log_prob(self, batch):
        self.calls.append(("compute_log_prob", dict(batch.extra_info)))
        for key in batch.keys:  # over prompt (2 tokens) + response, shifted left by one, as the worker writes them
            resp = self.new_log_probs[key]
            self.store.rows[key]["log_probs"] = torch.cat([torch.zeros(1), resp, torch.zeros(1)])
        return batch


def test_v1_trainer_mode_logs_diagnostics_through_verls_own_step(monkeypatch):
    v1 = import_verl_v1()
    import transfer_queue

    words = shlex.split(example_block("bash").replace("\\\n", " "))
    overrides = words[words.index("verl.trainer.main_ppo") + 1:]
    assert "trainer.v1.trainer_mode=asym_sync" in overrides
    # verl's fully composed ppo_trainer (the file verl generates from its Hydra defaults).
    config_dir = Path(core_algos.__file__).resolve().parents[1] / "config"
    cfg = apply_overrides(OmegaConf.load(config_dir / "_generated_ppo_trainer.yaml"),
                          overrides + ["actor_rollout_ref.rollout.n=4", "+algorithm.asym_log_prob_gain=true"])
    trainer_cls = v1.get_trainer_cls(cfg.trainer.v1.trainer_mode)  # what verl's TaskRunnerV1 does
    assert issubclass(trainer_cls, integ.AsymMetricsMixin) and issubclass(trainer_cls, v1.get_trainer_cls("sync"))
    trainer = trainer_cls(config=cfg)  # verl's own constructor (workers start later, in init())
    assert trainer.trainer_mode == cfg.trainer.v1.trainer_mode == "sync"  # verl's sync branches apply
    assert type(trainer.replay_buffer).__name__ == "ReplayBuffer"

    # Two prompts: 'a' is the multi-output case of session_batch, 'b' four one-output sessions.
    keys_a, rewards_a, mask_a, _ = session_batch()
    keys = keys_a + ["b_0_0", "b_1_0", "b_2_0", "b_3_0", "pad0_0_0"]
    keys = [k.replace("u_", "a_", 1) for k in keys]
    scores = torch.cat([rewards_a.sum(1), torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0])])
    lengths = torch.tensor([3, 5, 4, 2, 5, 4, 4, 3, 5, 1])
    g = torch.Generator().manual_seed(0)
    store = FakeTransferQueue()
    new_lp = {}
    for key, score, n in zip(keys, scores, lengths.tolist(), strict=True):
        rm = torch.zeros(n)
        rm[-1] = score
        old = -torch.rand(n, generator=g)
        store.rows[key] = {"uid": key.split("_")[0], "response_mask": torch.ones(n) if key[0] != "p" else torch.zeros(n),
                           "rm_scores": rm, "old_log_probs": old}
        new_lp[key] = old + 0.25
    tags = [{"is_padding": key.startswith("pad")} for key in keys]
    store.tags.update(zip(keys, tags, strict=True))
    from transfer_queue import KVBatchMeta
    batch = KVBatchMeta(keys=keys, tags=tags, partition_id="train")
    monkeypatch.setattr(transfer_queue, "kv_batch_get", store.kv_batch_get)
    monkeypatch.setattr(transfer_queue, "kv_batch_put", store.kv_batch_put)
    trainer.actor_rollout_wg = wg = FakeActorWorkerGroup(store, new_lp)

    # Steps 7 and 9 of verl's PPOTrainer._step_once, verl's code.
    metrics: dict = {}
    batch = trainer._compute_advantage(batch, metrics=metrics)
    batch = trainer._update_actor(batch, metrics=metrics)

    # The advantages verl stored: each session's final output, broadcast (prompt a's intermediate
    # output shares its session's success).
    adv = [store.rows[k]["advantages"] for k in keys]
    finals = {"a": compute_advantages("asym", torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.zeros(4, dtype=torch.int64)),
              "b": compute_advantages("asym", torch.tensor([1.0, 1.0, 0.0, 1.0]), torch.zeros(4, dtype=torch.int64))}
    want = [finals["a"][0], finals["a"][0], finals["a"][1], finals["a"][2], finals["a"][3], *finals["b"], 0.0]
    for key, got, value in zip(keys, adv, want, strict=True):
        torch.testing.assert_close(got, torch.full_like(got, float(value)) * store.rows[key]["response_mask"],
                                   msg=key)
    assert adv[0][0] > 0

    # verl's actor metrics and ours, in the step's metrics dict (what fit() logs).
    assert [c[0] for c in wg.calls] == ["update_actor", "compute_log_prob"]
    assert metrics["actor/pg_loss"] == pytest.approx(0.2) and metrics["perf/mfu/actor"] == pytest.approx(0.5)
    final_rows = [1, 2, 3, 4, 5, 6, 7, 8]  # sessions' final outputs, padding left out
    s = scores[final_rows]
    ids = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    none, full, mixed = M.solved_fractions(s, ids)
    assert metrics["asym/none_solved_frac"] == pytest.approx(none) and metrics["asym/mixed_frac"] == pytest.approx(mixed)
    assert metrics["asym/all_solved_frac"] == pytest.approx(full) == 0.0
    old = torch.nested.as_nested_tensor([store.rows[keys[i]]["old_log_probs"] for i in final_rows],
                                        layout=torch.jagged).to_padded_tensor(0.0)
    pad_mask = torch.nested.as_nested_tensor([store.rows[keys[i]]["response_mask"] for i in final_rows],
                                             layout=torch.jagged).to_padded_tensor(0.0)
    assert metrics["asym/kappa_batch"] == pytest.approx(M.kappa_batch(old, pad_mask, s, ids))
    assert metrics["asym/logprob_gain_correct_tok"] == pytest.approx(0.25)
    assert all(isinstance(v, float) and math.isfinite(v) for k, v in metrics.items() if k.startswith("asym/"))
