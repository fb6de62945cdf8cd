"""AsymGRPO in TRL: ``GRPOTrainer`` with its group normalisation replaced by a registry estimator.

``AsymGRPOConfig`` is TRL's ``GRPOConfig`` plus ``advantage_estimator`` (any name of
``asymcli.algorithm.ESTIMATORS``: ``asym``, ``pos_only``, ``ent_decrease``, ``grpo``...),
``beta_pos`` / ``beta_neg`` and ``asym_diagnostics``. ``AsymGRPOTrainer`` is TRL's
``GRPOTrainer`` with the advantages of each generation batch recomputed by
:func:`asymcli.algorithm.advantages.compute_advantages`; sampling, the loss (``loss_type``,
clipping, KL) and logging stay TRL's.

The surface used: TRL has no advantage hook, so the subclass overrides the one method that
computes them, ``_generate_and_score_completions``: it lets TRL generate and score, then
replaces ``advantages`` in its output (and in the completions log) with the registry's for
the same rewards. ``_calculate_rewards`` is wrapped only to keep its return value, the
rewards of every process's completions, [N, n_reward_funcs]. Both are private TRL methods:
the integration is tested against TRL 1.16 and may need care on a TRL upgrade.

How it departs from TRL's own advantages:

- the reward of a completion is the weighted sum of its reward functions (TRL's
  ``sum_then_normalize``), 0/1 for the beta family. The GRPOConfig settings of TRL's
  advantage step that the estimator replaces are refused rather than ignored:
  ``scale_rewards`` (default here ``"none"``; ``"group"``/``"batch"``/True are errors: TRL's
  ``"group"`` is ``advantage_estimator="grpo_unbiased"``, computed with TRL's eps 1e-4) and
  ``multi_objective_aggregation="normalize_then_sum"`` (it normalises before the estimator
  could). ``reward_weights``, ``num_generations`` and everything past the advantages
  (``loss_type``, clipping, KL, ``mask_truncated_completions``...) are TRL's, honoured;
- a completion for which every reward function returned None is left out of its group
  (the group is smaller) and gets advantage 0, as TRL does;
- groups are TRL's: ``num_generations`` consecutive completions of one prompt.

Diagnostics (``asym_diagnostics=True``, training only, binary rewards), logged through
TRL's own metrics (``trainer.state.log_history`` and every ``report_to`` backend):
``asym/none_solved_frac``, ``asym/all_solved_frac``, ``asym/mixed_frac``,
``asym/kappa_batch`` (old-policy log-probs: TRL's when it computed them, else one no-grad
forward pass) and ``asym/logprob_gain_correct[_tok]``, the gain of the previous generation
batch's correct completions through its whole update (one more forward pass, at the next
generation; the last batch's gain is never logged). Text-only models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from trl import GRPOConfig, GRPOTrainer

from asymcli.algorithm import metrics as M
from asymcli.algorithm.advantages import estimator_names, get_estimator, resolve_betas

from ._common import channel_diagnostics, group_advantages, is_binary, logprob_gain

__all__ = ["TRL_EPS", "AsymGRPOConfig", "AsymGRPOTrainer"]

#: TRL 1.16's GRPO divides by (Bessel std + 1e-4); ``grpo_unbiased`` gets the same eps here, so
#: ``advantage_estimator="grpo_unbiased"`` is TRL's default ``scale_rewards="group"`` advantage.
TRL_EPS = 1e-4


@dataclass
class AsymGRPOConfig(GRPOConfig):
    """TRL's ``GRPOConfig`` plus the advantage estimator of arXiv 2604.04894 and its betas."""

    advantage_estimator: str = field(
        default="asym",
        metadata={"help": "Advantage estimator, a name of asymcli.algorithm.ESTIMATORS: 'asym' is "
                          "AsymGRPO (Eq. 8); 'pos_only', 'neg_only', 'ent_decrease', 'ent_increase' its "
                          "ablations; 'grpo', 'grpo_unbiased', 'dr_grpo', 'reinforce' the baselines. "
                          "Replaces TRL's group normalisation (scale_rewards is then unused)."},
    )
    beta_pos: float | None = field(
        default=None,
        metadata={"help": "Exponent of the positive channel ((1-p)/p)^beta_pos (Eq. 5); None = the "
                          "estimator's default (0.9 for 'asym', the paper's choice)."},
    )
    beta_neg: float | None = field(
        default=None,
        metadata={"help": "Exponent of the negative channel -(p/(1-p))^beta_neg (Eq. 5); None = the "
                          "estimator's default (0.4 for 'asym')."},
    )
    scale_rewards: str = field(
        default="none",
        metadata={"help": "TRL's reward scaling, not used by AsymGRPOTrainer (advantage_estimator replaces it); "
                          "only 'none' is accepted. TRL's default 'group' is advantage_estimator='grpo_unbiased'."},
    )
    asym_diagnostics: bool = field(
        default=False,
        metadata={"help": "Log asym/none_solved_frac, asym/all_solved_frac, asym/mixed_frac, "
                          "asym/kappa_batch and asym/logprob_gain_correct (Fig. 2, Appendix E); costs "
                          "up to two no-grad forward passes per generation batch."},
    )

    def __post_init__(self) -> None:
        # Ours first: a misspelt estimator is reported before TRL's own checks.
        try:
            est = get_estimator(self.advantage_estimator)
            resolve_betas(self.advantage_estimator, self.beta_pos, self.beta_neg)
        except ValueError as e:
            raise ValueError(f"AsymGRPOConfig: {e}") from None
        given = [f"{k}={v}" for k, v in (("beta_pos", self.beta_pos), ("beta_neg", self.beta_neg))
                 if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if est.beta_mode == "none" and given:
            raise ValueError(
                f"AsymGRPOConfig: advantage_estimator={self.advantage_estimator!r} has no betas, so "
                f"{', '.join(given)} would not be used; drop it, or use advantage_estimator='asym'")
        if self.scale_rewards not in ("none", False):
            raise ValueError(
                f"AsymGRPOConfig: scale_rewards={self.scale_rewards!r} would not be used: advantage_estimator "
                f"replaces TRL's reward scaling (for TRL's group-std scaling use advantage_estimator="
                f"'grpo_unbiased'); leave scale_rewards='none'")
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                f"AsymGRPOConfig: multi_objective_aggregation={self.multi_objective_aggregation!r} normalises "
                f"rewards before the estimator; use 'sum_then_normalize' (the estimator gets the weighted sum)")
        super().__post_init__()


class AsymGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose advantages come from ``args.advantage_estimator`` (see module doc).

    Takes GRPOTrainer's arguments; ``args`` must be an :class:`AsymGRPOConfig`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, AsymGRPOConfig):
            raise TypeError(f"AsymGRPOTrainer needs args=AsymGRPOConfig(...), got {type(self.args).__name__}; "
                            f"estimators: {', '.join(estimator_names())}")
        self._asym_rewards_per_func: Tensor | None = None
        self._asym_previous: dict[str, Tensor] | None = None  # last batch, for the log-prob gain

    def _calculate_rewards(self, inputs: list[dict[str, Any]], prompts: list, completions: list,
                           completion_ids_list: list) -> Tensor:
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._asym_rewards_per_func = rewards_per_func  # [N, n_funcs], gathered over processes
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        mode = "train" if self.model.training else "eval"
        diagnostics = self.args.asym_diagnostics and mode == "train"
        if diagnostics and self._asym_previous is not None:
            # The model has now been through every update on the previous generation batch.
            self._log_asym(mode, self._logprob_gain_of_previous())
        output = super()._generate_and_score_completions(inputs)
        rewards_per_func, self._asym_rewards_per_func = self._asym_rewards_per_func, None
        if rewards_per_func is None:
            raise RuntimeError("AsymGRPOTrainer: TRL scored the batch without _calculate_rewards; "
                               "this TRL version is not supported")
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        rewards, scored = self._rewards(rewards_per_func)
        group_ids = torch.arange(rewards.numel(), device=rewards.device) // group_size
        advantages = self._advantages(rewards, group_ids, scored)

        n_local = output["advantages"].size(0)
        start = self.accelerator.process_index * n_local
        output["advantages"] = advantages[start:start + n_local].to(output["advantages"])
        self._replace_logged_advantages(advantages)
        if diagnostics:
            self._diagnose(mode, output, rewards, group_ids, scored)
        return output

    # ------------------------------------------------------------------ advantages

    def _rewards(self, rewards_per_func: Tensor) -> tuple[Tensor, Tensor]:
        """(reward [N], scored [N] bool): the weighted sum of the reward functions, as TRL's
        sum_then_normalize, and whether any reward function scored the completion."""
        weights = self.reward_weights.to(rewards_per_func.device)
        rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
        return rewards, ~torch.isnan(rewards_per_func).all(dim=1)

    def _advantages(self, rewards: Tensor, group_ids: Tensor, scored: Tensor) -> Tensor:
        """Registry advantages [N] of the scored completions; 0 for unscored ones."""
        out = torch.zeros_like(rewards)
        try:
            out[scored] = group_advantages(self.args.advantage_estimator, rewards[scored], group_ids[scored],
                                           beta_pos=self.args.beta_pos, beta_neg=self.args.beta_neg, eps=TRL_EPS)
        except ValueError as e:
            raise ValueError(f"AsymGRPOTrainer (advantage_estimator={self.args.advantage_estimator!r}): {e}; "
                             f"the reward is the weighted sum of the reward functions") from None
        return out

    def _replace_logged_advantages(self, advantages: Tensor) -> None:
        # TRL has just appended its own advantages of this batch to the completions log
        # (printed and written to output_dir/completions/*.parquet with log_completions).
        logged = self._logs["advantages"]
        for _ in range(min(len(logged), advantages.numel())):
            logged.pop()
        logged.extend(advantages.tolist())

    # ------------------------------------------------------------------ diagnostics

    def _log_asym(self, mode: str, values: dict[str, float]) -> None:
        for key, value in values.items():
            self._metrics[mode][key].append(value)  # averaged and logged by GRPOTrainer.log

    def _policy_logps(self, output: dict[str, Any]) -> Tensor:
        """Per-token log-probs [B, T] of this process's completions under the current model."""
        ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        with torch.no_grad():
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model, ids, mask, output["completion_ids"].size(1),
                batch_size=self.args.per_device_train_batch_size)
        return logps

    def _diagnose(self, mode: str, output: dict[str, Any], rewards: Tensor, group_ids: Tensor,
                  scored: Tensor) -> None:
        if not is_binary(rewards[scored]):
            return  # the diagnostics are defined on group accuracy
        old = output.get("old_per_token_logps")
        if old is None:  # TRL skips them when sampling and training policies coincide
            old = self._policy_logps(output)
        mask = output["completion_mask"]
        seq_logp = self.accelerator.gather(M.seq_mean_logp(old, mask))  # [N], every process's rollouts
        self._log_asym(mode, channel_diagnostics(rewards[scored].cpu(), group_ids[scored].cpu(),
                                                 seq_logp[scored].cpu()))
        n_local = mask.size(0)
        start = self.accelerator.process_index * n_local
        local_correct = (rewards[start:start + n_local] == 1) & scored[start:start + n_local]
        self._asym_previous = {"output": {k: output[k] for k in
                                          ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")},
                               "old": old.detach(), "correct": local_correct}

    def _logprob_gain_of_previous(self) -> dict[str, float]:
        prev, self._asym_previous = self._asym_previous, None
        assert prev is not None
        new = self._policy_logps(prev["output"])
        gain = logprob_gain(new, prev["old"], prev["output"]["completion_mask"], prev["correct"])
        # Mean over processes of each process's value (exact with one process); NaN-aware.
        values = torch.tensor(list(gain.values()), dtype=torch.float64, device=new.device)
        gathered = self.accelerator.gather(values.unsqueeze(0)).reshape(-1, len(gain))
        means = [float(col[~torch.isnan(col)].mean()) if (~torch.isnan(col)).any() else math.nan
                 for col in gathered.T]
        return dict(zip(gain, means, strict=True))
