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


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verl"


def example_overrides() -> list[str]:
    """The Hydra overrides of docs/integrations.md's verl command, checked to be a plain
    ``python -m verl.trainer.main_ppo`` (no environment variable) on examples/verl/config."""
    words = shlex.split(example_block("bash").replace("\\\n", " "))
    assert words[:3] == ["python", "-m", "verl.trainer.main_ppo"], words[:3]
    assert words[3:5] == ["--config-path=$PWD/examples/verl/config", "--config-name=asym_grpo"], words[3:5]
    return words[5:]


def example_config(extra: list[str] | None = None):
    """The docs command's config as verl's Hydra entry composes it: examples/verl/config/asym_grpo.yaml
    on the installed verl's ppo_trainer (search path), then the overrides (plain keys must exist)."""
    pytest.importorskip("hydra")
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(EXAMPLES / "config"), version_base=None):
        return compose(config_name="asym_grpo", overrides=example_overrides() + list(extra or []))


def test_readme_verl_command_runs_through_verls_compute_advantage():
    ray_trainer = pytest.importorskip("verl.trainer.ppo.ray_trainer")  # needs torchdata and peft too
    overrides = example_overrides()
    assert "algorithm.asym_beta_pos=0.9" in overrides and not any(o.startswith("+") for o in overrides)
    # The entry point makes verl import the module whenever verl itself is imported (a fresh
    # interpreter, without VERL_USE_EXTERNAL_MODULES: this one imported it already).
    probe = "import sys, verl; from verl.trainer.ppo.core_algos import get_adv_estimator_fn as f; " \
            "assert 'asymcli.integrations.verl' in sys.modules; print(f('asym_grpo').__name__)"
    env = {k: v for k, v in os.environ.items() if k != "VERL_USE_EXTERNAL_MODULES"}
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.split() == ["compute_asym_grpo_advantage"], run.stderr[-2000:]
    cfg = example_config()
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
                if isinstance(value, torch.Tensor):
                    row[name] = value.unbind(0)[i] if value.is_nested else value[i]
                else:  # a list, or the NonTensorStack of verl's list_of_dict_to_tensordict
                    row[name] = value[i] if isinstance(value, list) else value.tolist()[i]
            if tags is not None:
                self.tags[key] = tags[i]
        # As TransferQueue: the keys' stored tags (is_padding...) come back with them.
        return KVBatchMeta(keys=list(keys), tags=[self.tags.get(k, {}) for k in keys], partition_id=partition_id)

    def kv_batch_get(self, keys, partition_id, select_fields=None):
        from tensordict import TensorDict

        out = {}
        if select_fields is None:  # every field (verl's padding reads its template row so)
            from verl.utils.tensordict_utils import list_of_dict_to_tensordict

            return list_of_dict_to_tensordict([dict(self.rows[k]) for k in keys])
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

    assert "trainer.v1.trainer_mode=asym_sync" in example_overrides()
    # The docs command's config, composed by Hydra as verl's main_ppo does.
    cfg = example_config(["actor_rollout_ref.rollout.n=4", "algorithm.asym_log_prob_gain=true"])
    trainer_cls = v1.get_trainer_cls(cfg.trainer.v1.trainer_mode)  # what verl's TaskRunnerV1 does
    assert issubclass(trainer_cls, integ.AsymMetricsMixin) and issubclass(trainer_cls, v1.get_trainer_cls("sync"))
    trainer = trainer_cls(config=cfg)  # verl's own constructor (workers start later, in init())
    assert trainer.trainer_mode == "sync"  # verl's sync branches apply
    assert type(trainer.replay_buffer).__name__ == "ReplayBuffer"
    # What verl's fit() hands its tracker (Tracking(config=OmegaConf.to_container(self.config,
    # resolve=True))): the asym mode, so a logged run shows that asym_sync ran.
    logged = OmegaConf.to_container(trainer.config, resolve=True)
    assert logged["trainer"]["v1"]["trainer_mode"] == "asym_sync"
    assert logged["trainer"]["v1"]["asym_sync"] == logged["trainer"]["v1"]["sync"]

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


# ---------------------------------------------------------------------------
# Padding rows, near-miss keys, registration (issue 29)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("verl_name", ["ent_decrease", "ent_increase", "asym_grpo", "neg_only"])
def test_verls_padding_rows_get_the_estimators_value(verl_name, monkeypatch):
    """verl's upsample_batch_to_divisible_size pads with rows sharing one uid: one padding row is a
    group of one, which ent_* refused ("needs groups of at least 2 rollouts"). Through verl's own
    padding function and verl's v1 _compute_advantage: no error, 0 on the padding row (its response
    mask is 0), the registry's values on the real rows."""
    v1 = import_verl_v1()
    import transfer_queue
    from transfer_queue import KVBatchMeta
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size

    config_dir = Path(core_algos.__file__).resolve().parents[1] / "config"
    cfg = apply_overrides(OmegaConf.load(config_dir / "_generated_ppo_trainer.yaml"),
                          [f"algorithm.adv_estimator={verl_name}", "actor_rollout_ref.rollout.n=4",
                           "trainer.v1.trainer_mode=asym_sync"])
    trainer = v1.get_trainer_cls("asym_sync")(config=cfg)
    store = FakeTransferQueue()
    monkeypatch.setattr(transfer_queue, "kv_batch_get", store.kv_batch_get)
    monkeypatch.setattr(transfer_queue, "kv_batch_put", store.kv_batch_put)
    # 7 rollouts (prompt b lost one, as to a filter): a batch multiple of 8 needs one padding row.
    scores = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    uids = ["a"] * 4 + ["b"] * 3
    keys = [f"{u}_{i}_0" for i, u in enumerate(uids)]
    for key, uid, score in zip(keys, uids, scores, strict=True):
        rm = torch.zeros(3)
        rm[-1] = score
        store.rows[key] = {"uid": uid, "prompts": torch.tensor([5, 6]), "responses": torch.tensor([7, 8, 2]),
                           "input_ids": torch.tensor([5, 6, 7, 8, 2]), "attention_mask": torch.ones(5, dtype=torch.int64),
                           "position_ids": torch.arange(5), "response_mask": torch.ones(3, dtype=torch.int64),
                           "rm_scores": rm}
    tags = [{"is_padding": False, "prompt_len": 2, "response_len": 3, "seq_len": 5} for _ in keys]
    store.tags.update(zip(keys, tags, strict=True))
    batch = upsample_batch_to_divisible_size(KVBatchMeta(keys=keys, tags=tags, partition_id="train"), 8, 2)
    assert len(batch.keys) == 8 and batch.tags[-1]["is_padding"]
    pad = store.rows[batch.keys[-1]]
    assert pad["uid"].startswith("pad") and float(pad["response_mask"].sum()) == 0

    batch = trainer._compute_advantage(batch, metrics={})
    adv = [store.rows[k]["advantages"] for k in batch.keys]
    assert torch.equal(adv[-1], torch.zeros_like(adv[-1]))
    want = compute_advantages(integ.VERL_ESTIMATORS[verl_name], torch.tensor(scores),
                              torch.tensor([0] * 4 + [1] * 3))
    for got, value in zip(adv[:-1], want, strict=True):
        torch.testing.assert_close(got, torch.full_like(got, float(value)))


def test_a_group_of_one_is_the_uniform_group_at_its_reward():
    """The estimator called directly (verl's registry) on a batch with groups of one: the value the
    registry gives a uniform group at p = 0 or 1 with G = the batch's largest group."""
    from asymcli.algorithm.advantages import channel_values

    rewards = torch.zeros(7, 3)
    scores = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0])  # a group of 4, then three singles
    rewards[:, -1] = scores
    index = np.array(["a"] * 4 + ["s1", "s2", "s3"], dtype=object)
    mask = torch.ones(7, 3)
    for verl_name in integ.VERL_ESTIMATORS:
        betas = BETAS[verl_name]
        adv, _ = core_algos.get_adv_estimator_fn(verl_name)(rewards, mask, index, config={
            "asym_beta_pos": betas[0], "asym_beta_neg": betas[1]})
        table = {k: (pos, neg) for k, _, pos, neg in channel_values(integ.VERL_ESTIMATORS[verl_name], 4, *betas)}
        assert adv[4, 0] == pytest.approx(table[4][0]) and adv[6, 0] == pytest.approx(table[4][0])  # p = 1
        assert adv[5, 0] == pytest.approx(table[0][1])  # p = 0
    # Where the registry accepts groups of one, the value is the registry's own.
    adv, _ = core_algos.get_adv_estimator_fn("asym_grpo")(rewards, mask, index)
    torch.testing.assert_close(adv[:, 0], compute_advantages("asym", scores, torch.tensor([0, 0, 0, 0, 1, 2, 3])))


@pytest.mark.parametrize("key", ["beta_pos", "beta_neg", "asym_betapos", "asym_beta", "betas", "asym_beta_positive"])
def test_near_miss_keys_are_refused(key):
    rewards, mask, index, _, _ = make_batch(2, 4, 0)
    fn = core_algos.get_adv_estimator_fn("asym_grpo")
    with pytest.raises(ValueError, match=rf"^unknown key algorithm\.{key} \(asymcli") as err:
        fn(rewards, mask, index, config=OmegaConf.create({"adv_estimator": "asym_grpo", key: 0.5}))
    assert "\n" not in str(err.value)
    if "pos" in key:
        assert "did you mean algorithm.asym_beta_pos?" in str(err.value)
    # The command line: '+algorithm.beta_pos=0.5' composes, the trainer refuses it.
    cfg = hydra_like(["algorithm.adv_estimator=asym_grpo", f"+algorithm.{key}=0.5"])
    with pytest.raises(ValueError, match=f"algorithm.{key}"):
        integ.check_keys(cfg.algorithm)
    # verl's own algorithm keys pass.
    integ.check_keys(hydra_like(["algorithm.adv_estimator=asym_grpo"]).algorithm)


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True,
                          timeout=600, cwd=Path(__file__).resolve().parents[2])


def test_the_verl_plugins_entry_point_registers_without_the_environment_variable():
    """`import verl` alone (no VERL_USE_EXTERNAL_MODULES) loads asym through the entry point of
    pyproject.toml: estimators and, where verl's v1 trainer imports, the asym_* trainer modes."""
    from importlib.metadata import entry_points

    assert [ep.value for ep in entry_points(group="verl.plugins") if ep.name == "asym"] == ["asymcli.integrations.verl"]
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_USE_EXTERNAL_MODULES", "VERL_USE_EXTERNAL_PLUGINS")}
    probe = ("import sys, verl\n"
             "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY as R\n"
             "print('estimators', all(n in R for n in %r))\n"
             "try:\n"
             "    from verl.trainer.ppo.v1 import get_trainer_cls\n"
             "except Exception as e:\n"
             "    print('no-v1', type(e).__name__)\n"
             "else:\n"
             "    print('trainer', get_trainer_cls('asym_sync').__name__)\n") % (list(integ.VERL_ESTIMATORS),)
    run = _python(probe, env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "estimators True" in run.stdout
    try:
        import hydra  # noqa: F401
        import transfer_queue  # noqa: F401
    except Exception:  # verl's v1 trainer cannot import here: the warning says why
        assert "no-v1" in run.stdout and "verl's v1 trainer did not import" in run.stderr
    else:
        assert "trainer AsymPPOTrainerSync" in run.stdout, run.stdout + run.stderr[-3000:]


def test_a_failing_v1_import_warns_with_its_reason():
    env = {k: v for k, v in os.environ.items() if k != "VERL_USE_EXTERNAL_MODULES"}
    run = _python("import sys; sys.modules['transfer_queue'] = None\n"
                  "import asymcli.integrations.verl as v; print(sorted(v.VERL_ESTIMATORS))", env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RuntimeWarning: asymcli.integrations.verl: verl's v1 trainer did not import (" in run.stderr
    assert "transfer_queue" in run.stderr and "asym_sync" in run.stderr


# ---------------------------------------------------------------------------
# examples/verl
# ---------------------------------------------------------------------------

def script_overrides(path: Path, env: dict[str, str]) -> list[str]:
    """The Hydra overrides of an example script's main_ppo call, its shell variables expanded."""
    text = path.read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if "--config-name=" in ln)
    words = shlex.split(line)
    words = words[words.index(next(w for w in words if w.startswith("--config-name="))) + 1:]
    out = []
    for w in words:
        if w == "$@":
            continue
        for name, value in env.items():
            w = w.replace("${" + name + "}", value).replace("$" + name, value)
        out.append(w)
    return out


def test_gpu_example_composes_in_verls_config_and_passes_verls_checks():
    """run_qwen3-4b_math_asym_grpo.sh's overrides, composed by Hydra with the example's YAML on
    verl's ppo_trainer (the search path finds the installed verl's), pass verl's validate_config:
    every key exists (no '+' for the asym keys) and the paper's batch sizes divide."""
    hydra = pytest.importorskip("hydra")
    from hydra import compose, initialize_config_dir
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    overrides = script_overrides(EXAMPLES / "run_qwen3-4b_math_asym_grpo.sh",
                                 {"HERE": str(EXAMPLES), "DATA": "/data/math", "MODEL": "Qwen/Qwen3-4B", "NGPUS": "4"})
    assert "algorithm.asym_beta_pos=0.9" in overrides and not any(o.startswith("+algorithm") for o in overrides)
    with initialize_config_dir(config_dir=str(EXAMPLES / "config"), version_base=None):
        cfg = compose(config_name="asym_grpo", overrides=overrides)
    assert hydra.__version__
    algo = cfg.algorithm
    assert (algo.adv_estimator, algo.asym_beta_pos, algo.asym_beta_neg) == ("asym_grpo", 0.9, 0.4)
    assert cfg.trainer.v1.trainer_mode == "asym_sync" and algo.use_kl_in_reward is False
    assert (cfg.data.train_batch_size, cfg.actor_rollout_ref.actor.ppo_mini_batch_size,
            cfg.actor_rollout_ref.rollout.n, cfg.data.max_response_length) == (128, 64, 8, 4096)
    assert cfg.actor_rollout_ref.actor.optim.lr == 2e-6 and cfg.actor_rollout_ref.actor.loss_agg_mode == "token-mean"
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    integ.check_keys(cfg.algorithm)


def test_cpu_example_runs_through_verls_main_ppo(tmp_path):
    """examples/verl/run_tiny_asym_grpo_cpu.sh as a user runs it: verl's Hydra entry, the asym_sync
    trainer built by verl, real rollouts of the tiny model graded by asym, verl's padding and
    _compute_advantage. One rollout is dropped so verl pads the batch."""
    pytest.importorskip("hydra")
    env = {**{k: v for k, v in os.environ.items() if k != "VERL_USE_EXTERNAL_MODULES"},
           "OUT": str(tmp_path), "ASYM_CPU_DROP_ROLLOUTS": "1", "PYTHONPATH": str(EXAMPLES.parents[1])}
    run = subprocess.run(["bash", str(EXAMPLES / "run_tiny_asym_grpo_cpu.sh")], env=env, capture_output=True,
                         text=True, timeout=900, cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert (tmp_path / "hydra").is_dir() and not (tmp_path / "outputs").exists()  # Hydra's run dir under OUT
    assert "trainer: asymcli.integrations.verl.AsymPPOTrainerSync (trainer.v1.trainer_mode=asym_sync" in out
    assert "OK: 31 rollouts and 1 padding rows through verl's _compute_advantage" in out
    # The printed advantages are the registry's for the printed rewards.
    lines = [ln for ln in out.splitlines() if ln.startswith("  p") and " advantage " in ln]
    rows = [ln.split() for ln in lines if "(padding)" not in ln]
    assert len(rows) == 31 and len(lines) == 32 and lines[-1].split()[4] == "+0.0000"
    rewards = torch.tensor([float(r[2]) for r in rows])
    groups = torch.tensor([int(r[0].split("_")[0][1:]) for r in rows])
    want = compute_advantages("asym", rewards, groups, beta_pos=0.9, beta_neg=0.4)
    torch.testing.assert_close(torch.tensor([float(r[4]) for r in rows]), want.float(), atol=1e-4, rtol=0)
