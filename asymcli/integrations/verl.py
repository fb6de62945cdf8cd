"""AsymGRPO and its ablations as verl advantage estimators.

Importing this module registers, through verl's own ``register_adv_est`` (so verl's
``get_adv_estimator_fn`` and its trainer find them by ``algorithm.adv_estimator``):

- ``asym_grpo``: the registry's ``asym`` (Eq. 8), betas free, default (0.9, 0.4);
- ``pos_only`` / ``neg_only``: Sec. 3.1's ablations, betas fixed at (0.5, 0) / (0, 0.5);
- ``ent_decrease`` / ``ent_increase``: Sec. 3.2 with Appendix C's extrapolation, betas
  free, default (0.5, 0.5).

The betas are read from verl's ``algorithm`` section as ``asym_beta_pos`` /
``asym_beta_neg`` (method-prefixed flat keys, as verl names ``gdpo_reward_keys``); they
are not in verl's schema, so Hydra needs ``+algorithm.asym_beta_pos=0.9``. Absent keys
mean the estimator's own defaults; a fixed-beta estimator rejects a different value.

How verl gets this module: ``VERL_USE_EXTERNAL_MODULES=asymcli.integrations.verl`` (verl
imports it whenever ``verl`` is imported, so also in its Ray task runner, which computes
the advantages), or an ``import asymcli.integrations.verl`` in your own entry script.

Departures from verl's ``grpo`` (``compute_grpo_outcome_advantage``), the estimator this
one replaces:

- the outcome reward of a response is the sum of its token-level rewards (as in verl's
  grpo) and must be 0 or 1: the beta family is defined on group accuracy. Keep
  ``algorithm.use_kl_in_reward=False`` (use the actor's KL loss) or rewards stop being 0/1;
- ``norm_adv_by_std_in_grpo`` and ``epsilon`` are not used (no std division);
- a group of one rollout follows the estimator (``asym``: p in {0, 1}, advantage 0 with
  beta > 0), where verl's grpo gives score / (1 + eps).

Diagnostics: :func:`batch_metrics` computes the solved fractions, kappa_B and, given the
updated policy's log-probs, the log-prob gain of a verl batch; :class:`AsymMetricsMixin`
logs them through verl's own tracker by riding on the actor-update metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from verl.trainer.ppo.core_algos import register_adv_est

from asymcli.algorithm import metrics as M
from asymcli.algorithm.advantages import compute_advantages, get_estimator, resolve_betas

from ._common import channel_diagnostics, group_ids_from_index, is_binary, logprob_gain

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
        given = (_config_get(config, BETA_POS_KEY), _config_get(config, BETA_NEG_KEY))
        try:
            beta_pos, beta_neg = resolve_betas(est.name, *given)
            with torch.no_grad():
                scores = token_level_rewards.sum(dim=-1)
                adv = compute_advantages(est.name, scores, group_ids_from_index(index).to(scores.device),
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


class AsymMetricsMixin:
    """Logs :func:`batch_metrics` through verl's own tracker.

    Mix into verl's trainer: ``class Trainer(AsymMetricsMixin, RayPPOTrainer): pass``.
    It overrides one method, ``_update_actor(batch)``: verl calls it with the batch that
    holds rewards, ``uid``, ``old_log_probs`` and advantages, and logs the metrics of its
    output's ``meta_info["metrics"]`` at the step, where these are added.
    ``algorithm.asym_log_prob_gain=true`` also recomputes the batch's log-probs under the
    updated policy (verl's ``_compute_old_log_prob``: one more forward pass per step).
    """

    def _update_actor(self, batch: Any) -> Any:
        output = super()._update_actor(batch)  # type: ignore[misc]
        new_log_probs = None
        if _config_get(self.config.algorithm, LOG_PROB_GAIN_KEY):  # type: ignore[attr-defined]
            recomputed, _ = self._compute_old_log_prob(batch)  # type: ignore[attr-defined]
            new_log_probs = recomputed.batch["old_log_probs"]
        output.meta_info.setdefault("metrics", {}).update(batch_metrics(batch, new_log_probs))
        return output
