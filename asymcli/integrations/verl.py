"""AsymGRPO and its ablations as verl advantage estimators.

Importing this module registers, through verl's own ``register_adv_est`` (so verl's
``get_adv_estimator_fn`` and its trainer find them by ``algorithm.adv_estimator``):

- ``asym_grpo``: the registry's ``asym`` (Eq. 8), betas free, default (0.9, 0.4);
- ``pos_only`` / ``neg_only``: Sec. 3.1's ablations, betas fixed at (0.5, 0) / (0, 0.5);
- ``ent_decrease`` / ``ent_increase``: Sec. 3.2 with Appendix C's extrapolation, betas
  free, default (0.5, 0.5).

The betas are read from verl's ``algorithm`` section as ``asym_beta_pos`` /
``asym_beta_neg`` (method-prefixed flat keys, as verl names ``gdpo_reward_keys``). verl's
``ppo_trainer.yaml`` lacks them (``+algorithm.asym_beta_pos=0.9`` there);
``examples/verl/config/asym_grpo.yaml`` declares them. Absent keys mean the estimator's own
defaults; a fixed-beta estimator rejects a different value; near misses (``beta_pos``,
``asym_betapos``...) are refused (:func:`check_keys`).

How verl gets this module: asym's ``verl.plugins`` entry point (pyproject.toml), which verl
loads whenever ``verl`` is imported, in the driver and in its Ray workers (the task runner
computes the advantages); no environment variable. Where verl's v1 trainer cannot be imported
the estimators still register and a RuntimeWarning names the reason.

Departures from verl's ``grpo`` (``compute_grpo_outcome_advantage``), the estimator this
one replaces:

- the outcome reward of a response is the sum of its token-level rewards (as in verl's
  grpo) and must be 0 or 1: the beta family is defined on group accuracy. Keep
  ``algorithm.use_kl_in_reward=False`` (use the actor's KL loss) or rewards stop being 0/1;
- ``norm_adv_by_std_in_grpo`` and ``epsilon`` are not used (no std division);
- a group of one rollout (one of verl's padding rows, which share a uid) gets the estimator's
  value at p in {0, 1} (``asym``: 0 with beta > 0; the ``ent_*`` flips: their endpoint for the
  batch's largest group size), where verl's grpo gives score / (1 + eps).

Diagnostics: :func:`batch_metrics` computes the solved fractions, kappa_B and, given the
updated policy's log-probs, the log-prob gain of a verl batch; :class:`AsymMetricsMixin`
logs them through verl's own tracker by riding on the actor-update metrics.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from verl.trainer.ppo.core_algos import register_adv_est

from asymcli.algorithm import metrics as M
from asymcli.algorithm.advantages import get_estimator, resolve_betas

from ._common import channel_diagnostics, group_advantages, group_ids_from_index, is_binary, logprob_gain

__all__ = [
    "BETA_NEG_KEY",
    "BETA_POS_KEY",
    "LOG_PROB_GAIN_KEY",
    "VERL_ESTIMATORS",
    "AsymMetricsMixin",
    "batch_metrics",
    "make_estimator",
    "register",
]

#: verl ``adv_estimator`` name -> registry name (``asymcli.algorithm.ESTIMATORS``).
VERL_ESTIMATORS: dict[str, str] = {
    "asym_grpo": "asym",
    "pos_only": "pos_only",
    "neg_only": "neg_only",
    "ent_decrease": "ent_decrease",
    "ent_increase": "ent_increase",
}
BETA_POS_KEY = "asym_beta_pos"
BETA_NEG_KEY = "asym_beta_neg"
#: ``algorithm.asym_log_prob_gain=true``: AsymMetricsMixin recomputes the batch's
#: log-probs after the update (one extra forward pass) to log the log-prob gain.
LOG_PROB_GAIN_KEY = "asym_log_prob_gain"


def _config_get(config: Any, key: str) -> Any:
    # verl passes its ``algorithm`` section: an OmegaConf DictConfig from the trainer, an
    # AlgoConfig (dict-like BaseConfig) elsewhere; tests and scripts may pass a dict.
    return None if config is None else config.get(key, None)


def make_estimator(verl_name: str, registry_name: str) -> Callable[..., tuple[Tensor, Tensor]]:
    """A verl advantage estimator computing the registry's ``registry_name``."""
    est = get_estimator(registry_name)

    def estimator(token_level_rewards: Tensor, response_mask: Tensor, index: np.ndarray,
                  config: Any = None, **kwargs: Any) -> tuple[Tensor, Tensor]:
        """Outcome advantages of one verl batch.

        token_level_rewards: (bs, response_length), the response's 0/1 outcome summed over
            tokens; response_mask: (bs, response_length); index: (bs,) prompt uid per
            response (rollouts of one prompt share it); config: verl's ``algorithm``
            section (``asym_beta_pos`` / ``asym_beta_neg``). Other keyword arguments that
            verl passes to every estimator (``reward_baselines``...) are not used.
        Returns (advantages, returns), both (bs, response_length): the rollout's advantage
        on every response token, 0 on padding; returns = advantages, as verl's grpo.
        """
        check_keys(config)
        given = (_config_get(config, BETA_POS_KEY), _config_get(config, BETA_NEG_KEY))
        try:
            beta_pos, beta_neg = resolve_betas(est.name, *given)
            with torch.no_grad():
                scores = token_level_rewards.sum(dim=-1)
                adv = group_advantages(est.name, scores, group_ids_from_index(index).to(scores.device),
                                       beta_pos=beta_pos, beta_neg=beta_neg)
        except ValueError as e:
            raise ValueError(f"verl algorithm.adv_estimator={verl_name} (algorithm.{BETA_POS_KEY}="
                             f"{given[0]}, algorithm.{BETA_NEG_KEY}={given[1]}): {e}") from None
        adv = adv.unsqueeze(-1) * response_mask
        return adv, adv

    estimator.__name__ = f"compute_{verl_name}_advantage"
    estimator.__qualname__ = estimator.__name__
    return estimator


#: The functions registered in verl, kept so that registering twice is a no-op.
_FUNCTIONS: dict[str, Callable[..., tuple[Tensor, Tensor]]] = {
    verl_name: make_estimator(verl_name, name) for verl_name, name in VERL_ESTIMATORS.items()
}


def register() -> list[str]:
    """Register every estimator of ``VERL_ESTIMATORS`` in verl's registry (idempotent:
    verl accepts re-registering the same function). Another function under one of these
    names is an error, raised by verl. Returns the verl names."""
    for verl_name, fn in _FUNCTIONS.items():
        register_adv_est(verl_name)(fn)
    return list(_FUNCTIONS)


register()


# ---------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------


def batch_metrics(batch: Any, new_log_probs: Tensor | None = None) -> dict[str, float]:
    """The channel diagnostics of one verl ``DataProto`` after its advantages are computed.

    Reads ``token_level_scores`` (the reward before any KL penalty; else
    ``token_level_rewards``), ``response_mask`` and, when present, ``old_log_probs``
    (bs, response_length) from ``batch.batch`` and ``uid`` from ``batch.non_tensor_batch``.
    new_log_probs: (bs, response_length) log-probs under the updated policy, or None.
    Returns ``asym/none_solved_frac``, ``asym/all_solved_frac``, ``asym/mixed_frac``,
    ``asym/kappa_batch`` (with old_log_probs) and ``asym/logprob_gain_correct[_tok]``
    (with new_log_probs); {} when the outcome rewards are not 0/1.
    """
    tensors = batch.batch
    key = "token_level_scores" if "token_level_scores" in tensors.keys() else "token_level_rewards"
    rewards = tensors[key].sum(dim=-1).detach().to(torch.float64).cpu()
    if not is_binary(rewards):
        return {}
    mask = tensors["response_mask"].cpu()
    groups = group_ids_from_index(batch.non_tensor_batch["uid"])
    old = tensors["old_log_probs"].detach().cpu() if "old_log_probs" in tensors.keys() else None
    seq_logp = M.seq_mean_logp(old, mask) if old is not None else None
    out = channel_diagnostics(rewards, groups, seq_logp)
    if new_log_probs is not None and old is not None:
        out.update(logprob_gain(new_log_probs.detach().cpu(), old, mask, rewards > 0.5))
    return {k: v for k, v in out.items() if not math.isnan(v)}  # verl's reducers do not skip NaN



# ---------------------------------------------------------------------------
# Config keys
# ---------------------------------------------------------------------------

#: Every ``algorithm.asym_*`` key this module reads. Any other key of verl's ``algorithm`` section
#: that starts with ``asym`` or names a beta is an error: ``+algorithm.asym_beta_postive=0.9`` and
#: ``+algorithm.beta_pos=0.5`` compose in Hydra and would silently leave the default betas.
KNOWN_KEYS = (BETA_POS_KEY, BETA_NEG_KEY, LOG_PROB_GAIN_KEY)


def _near_miss(key: str) -> bool:
    k = key.lower()
    return k not in KNOWN_KEYS and (k.startswith("asym") or "beta" in k)


def check_keys(config: Any) -> None:
    """Raise ValueError, in one line naming it, on a key of verl's ``algorithm`` section that
    starts with ``asym`` or contains ``beta`` and is not one of :data:`KNOWN_KEYS` (``beta_pos``,
    ``beta_neg``, ``asym_betapos``...). config: DictConfig, dict, dataclass or None."""
    if config is None:
        return
    keys = config.keys() if hasattr(config, "keys") else vars(config).keys()
    unknown = sorted(str(k) for k in keys if _near_miss(str(k)))
    if unknown:
        key = unknown[0]
        guess = BETA_POS_KEY if "pos" in key.lower() else BETA_NEG_KEY if "neg" in key.lower() else None
        hint = f"; did you mean algorithm.{guess}?" if guess else ""
        raise ValueError(f"unknown key algorithm.{key} (asymcli.integrations.verl reads "
                         f"algorithm.{', algorithm.'.join(KNOWN_KEYS)}{hint})")


# ---------------------------------------------------------------------------
# Multi-output agent-loop sessions (verl's v1 trainer)
# ---------------------------------------------------------------------------


def session_final_advantage(data: Any, batch_keys: list[str], adv_estimator: Any, gamma: float = 1.0,
                            lam: float = 1.0, num_repeat: int = 1, norm_adv_by_std_in_grpo: bool = True,
                            config: Any = None) -> Any:
    """verl v1's ``compute_advantage_for_multi_trajectories`` with the GRPO rule for an asym
    estimator: an agent-loop session may return several outputs (keys ``{uid}_{session}_{i}``);
    only each session's final output (largest i) is scored, in its uid group, and that advantage
    is broadcast to every output of the session (times its response mask). With one output per
    session this is the plain estimator. Same arguments and result as verl's function."""
    from verl.trainer.ppo.ray_trainer import compute_advantage

    final: dict[str, tuple[int, int]] = {}  # session key -> (output index, row)
    row_session = []
    for row, key in enumerate(batch_keys):
        fields = key.rsplit("_", 2)
        if len(fields) != 3:
            raise ValueError(f"verl batch key {key!r} is not '{{uid}}_{{session}}_{{index}}'")
        session = f"{fields[0]}_{fields[1]}"
        row_session.append(session)
        if session not in final or final[session][0] < int(fields[2]):
            final[session] = (int(fields[2]), row)
    sessions = list(final)
    local = {session: i for i, session in enumerate(sessions)}
    final_data = compute_advantage(data.select_idxs([final[s][1] for s in sessions]), adv_estimator=adv_estimator,
                                   gamma=gamma, lam=lam, num_repeat=num_repeat,
                                   norm_adv_by_std_in_grpo=norm_adv_by_std_in_grpo, config=config)
    # Our estimators write one value on every response token: read it where the mask is 1.
    first = final_data.batch["response_mask"].argmax(dim=1)
    per_session = final_data.batch["advantages"][torch.arange(len(sessions)), first]
    adv = per_session[[local[s] for s in row_session]].unsqueeze(-1) * data.batch["response_mask"]
    data.batch["advantages"] = adv
    data.batch["returns"] = adv
    return data


# ---------------------------------------------------------------------------
# Diagnostics in verl's trainers
# ---------------------------------------------------------------------------


class AsymMetricsMixin:
    """Logs :func:`batch_metrics` through verl's own tracker, with verl's v1 trainer (the
    default of verl 0.9.1, ``trainer.use_v1=true``) and with the legacy ``RayPPOTrainer``.

    v1: importing this module registers ``asym_sync``, ``asym_colocate_async`` and
    ``asym_separate_async`` through verl's ``register_trainer``: select one with
    ``trainer.v1.trainer_mode=asym_sync``. Each is verl's trainer of that mode with this mixin.
    The config keeps ``trainer_mode: asym_sync`` (so verl's tracker records it), while the
    trainer's ``trainer_mode`` attribute, on which every mode-dependent branch of verl reads
    (replay buffer, ``trainer.v1.sync.*`` settings), is the base mode; ``trainer.v1.asym_sync``
    is set to the base mode's section for code that looks settings up by the config's name.
    ``_update_actor(batch, metrics)`` runs verl's update, then reads the step's rows from the
    TransferQueue and adds the metrics to the step's ``metrics`` (padding rows left out;
    with multi-output agent loops, each session's final output).

    Legacy: ``class Trainer(AsymMetricsMixin, RayPPOTrainer)`` in your own entry script (verl's
    ``main_ppo_v0`` constructs ``RayPPOTrainer`` itself); ``_update_actor(batch)`` adds them to
    the actor output's ``meta_info["metrics"]``.

    ``algorithm.asym_log_prob_gain=true`` also computes the batch's log-probs under the
    updated policy (one more forward pass per step) for the log-prob gain.
    """

    _asym_base_mode: str = ""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        check_keys(config.algorithm)
        v1 = config.trainer.get("v1", None) if hasattr(config.trainer, "get") else None
        mode = v1.get("trainer_mode") if v1 is not None else None
        if self._asym_base_mode and mode and mode != self._asym_base_mode and mode not in v1:
            # The config keeps trainer_mode=asym_<mode> (what verl's tracker records); settings looked
            # up by the mode's name (trainer.v1.<mode>.*) are the base mode's.
            from omegaconf import open_dict

            with open_dict(v1):
                v1[mode] = v1.get(self._asym_base_mode, {})
        super().__init__(config, *args, **kwargs)  # type: ignore[call-arg]

    @property
    def trainer_mode(self) -> Any:
        """verl's trainer mode, as verl's own code branches on it (replay buffer, ``!= "sync"``):
        the base mode for an ``asym_<mode>`` trainer, whatever the config's name of it."""
        return self._asym_base_mode or self.__dict__.get("_asym_trainer_mode")

    @trainer_mode.setter
    def trainer_mode(self, value: Any) -> None:  # verl's __init__: self.trainer_mode = config's name
        self.__dict__["_asym_trainer_mode"] = value

    def _update_actor(self, batch: Any, metrics: dict | None = None) -> Any:
        if metrics is None:  # legacy RayPPOTrainer: DataProto in, actor output out
            output = super()._update_actor(batch)  # type: ignore[misc]
            new_log_probs = None
            if _config_get(self.config.algorithm, LOG_PROB_GAIN_KEY):  # type: ignore[attr-defined]
                recomputed, _ = self._compute_old_log_prob(batch)  # type: ignore[attr-defined]
                new_log_probs = recomputed.batch["old_log_probs"]
            output.meta_info.setdefault("metrics", {}).update(batch_metrics(batch, new_log_probs))
            return output
        batch = super()._update_actor(batch, metrics=metrics)  # type: ignore[misc]
        metrics.update(self._asym_v1_metrics(batch))
        return batch

    def _asym_v1_metrics(self, batch: Any) -> dict[str, float]:
        import transfer_queue as tq
        from verl import DataProto

        rows = [i for i, tag in enumerate(batch.tags) if not tag.get("is_padding", False)]
        final: dict[str, tuple[int, int]] = {}  # session -> (output index, row): verl's GRPO rule
        for row in rows:
            uid, session, index = batch.keys[row].rsplit("_", 2)
            if f"{uid}_{session}" not in final or final[f"{uid}_{session}"][0] < int(index):
                final[f"{uid}_{session}"] = (int(index), row)
        keys = [batch.keys[row] for _, row in final.values()]
        if not keys:
            return {}
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id,
                               select_fields=["uid", "response_mask", "rm_scores", "old_log_probs"])
        uid = np.array(data.pop("uid").tolist(), dtype=object)
        proto = DataProto(batch=data.to_padded_tensor(), non_tensor_batch={"uid": uid})
        proto.batch["token_level_scores"] = proto.batch.pop("rm_scores")
        new_log_probs = None
        if _config_get(self.config.algorithm, LOG_PROB_GAIN_KEY):  # type: ignore[attr-defined]
            new_log_probs = self._asym_new_log_probs(batch, keys)
        return batch_metrics(proto, new_log_probs)

    def _asym_new_log_probs(self, batch: Any, keys: list[str]) -> Tensor:
        """Log-probs (rows of ``keys``, padded response length) under the updated policy: verl's
        ``compute_log_prob`` on the step's batch, as ``_compute_old_log_prob`` calls it."""
        import transfer_queue as tq
        from verl.workers.utils.padding import response_from_nested

        batch.extra_info.update({"calculate_entropy": False, "compute_loss": False,
                                 "temperature": self.config.actor_rollout_ref.rollout.temperature})  # type: ignore[attr-defined]
        self.actor_rollout_wg.compute_log_prob(batch)  # type: ignore[attr-defined]
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=["log_probs", "response_mask"])
        return response_from_nested(data["log_probs"], data["response_mask"]).to_padded_tensor(0.0)


#: verl v1 trainer mode -> the AsymMetricsMixin trainer registered as ``asym_<mode>``.
V1_TRAINERS: dict[str, type] = {}


def register_trainers() -> list[str]:
    """Register ``asym_<mode>`` for each of verl's v1 trainer modes (``register_trainer``), and
    route verl v1's multi-output advantage step through :func:`session_final_advantage` for this
    module's estimators (verl applies its final-output rule to ``grpo`` only, by name; other
    estimators are left to verl's function unchanged). Idempotent. Raises ImportError where
    verl's v1 trainer cannot be imported (it needs TransferQueue, Ray, ...)."""
    from verl.trainer.ppo.v1 import trainer_base
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY, register_trainer

    for mode in ("sync", "colocate_async", "separate_async"):
        base = TRAINER_REGISTRY.get(mode)
        if base is None:
            continue
        if mode not in V1_TRAINERS:
            V1_TRAINERS[mode] = type(f"Asym{base.__name__}", (AsymMetricsMixin, base),
                                     {"_asym_base_mode": mode, "__module__": __name__})
        register_trainer(f"asym_{mode}")(V1_TRAINERS[mode])

    original = trainer_base.compute_advantage_for_multi_trajectories
    if not getattr(original, "_asym", False):
        def compute_advantage_for_multi_trajectories(data: Any, batch_keys: list[str], adv_estimator: Any,
                                                     **kwargs: Any) -> Any:
            if str(getattr(adv_estimator, "value", adv_estimator)) in VERL_ESTIMATORS:
                check_keys(kwargs.get("config"))
                return session_final_advantage(data, batch_keys, adv_estimator, **kwargs)
            return original(data, batch_keys=batch_keys, adv_estimator=adv_estimator, **kwargs)

        compute_advantage_for_multi_trajectories._asym = True  # type: ignore[attr-defined]
        compute_advantage_for_multi_trajectories.__wrapped__ = original  # type: ignore[attr-defined]
        trainer_base.compute_advantage_for_multi_trajectories = compute_advantage_for_multi_trajectories
    return [f"asym_{mode}" for mode in V1_TRAINERS]


try:
    register_trainers()
except Exception as _e:  # e.g. no TransferQueue, or hydra-core against math-verify's antlr4 4.13
    # The estimators are registered; only the trainer modes are missing. Say why, once.
    warnings.warn(f"asymcli.integrations.verl: verl's v1 trainer did not import ({type(_e).__name__}: {_e}), "
                  f"so trainer.v1.trainer_mode=asym_sync/asym_colocate_async/asym_separate_async are not "
                  f"registered (the advantage estimators are); see docs/integrations.md, 'Install'",
                  RuntimeWarning, stacklevel=2)
