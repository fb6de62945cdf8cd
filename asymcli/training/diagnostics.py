"""What one RL step produced (StepBatch) and its diagnostics, summed over every rank's share:
entropy, kappa_B (Appendix E), solved fractions, log-prob gain, the advantage mass histograms."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from ..algorithm import metrics as M
from . import distributed as dist
from .policy import PackedBatch


@dataclasses.dataclass
class StepBatch:
    """Everything one RL step produced before the update (N = prompts * G rollouts)."""

    prompt_rows: list[int]  # index into the training table, per prompt
    group_ids: torch.Tensor  # [N] long
    rewards: torch.Tensor  # [N] float
    batch: PackedBatch
    old_logp: torch.Tensor  # [N, T]
    old_entropy: torch.Tensor  # [N, T]
    ref_logp: torch.Tensor | None
    advantages: torch.Tensor  # [N]
    finish: list[str]


def schedule_signals(sb: StepBatch, group_size: int) -> dict[str, Any]:
    """What the beta schedule reads before a step's advantages (asymcli/algorithm/schedule.py),
    over the whole batch like :func:`step_diagnostics`: ``entropy`` (token-weighted mean of
    the rollouts' token entropies), ``kappa`` (kappa_B, NaN without a mixed group) and
    ``p_hist`` ([G+1] groups per number correct). Every rank gets the same values, so every
    rank computes the same betas."""
    G, mask = group_size, sb.batch.resp_mask
    hist = M.group_accuracy_hist(sb.rewards, sb.group_ids, G)
    n_mixed = float(len(sb.prompt_rows)) - hist[0] - hist[G]
    kappa = M.kappa_batch(sb.old_logp, mask, sb.rewards, sb.group_ids)
    sums = {"entropy": float(M.masked_sum(sb.old_entropy, mask)), "tokens": float(mask.sum()),
            "kappa": kappa * n_mixed if n_mixed else 0.0, "mixed": n_mixed}
    sums.update({f"p_hist/{k}": float(hist[k]) for k in range(G + 1)})
    t = dist.all_reduce_sum(sums)
    return {"entropy": t["entropy"] / t["tokens"] if t["tokens"] else float("nan"),
            "kappa": t["kappa"] / t["mixed"] if t["mixed"] else float("nan"),
            "p_hist": [t[f"p_hist/{k}"] for k in range(G + 1)]}


def step_diagnostics(sb: StepBatch, new_logp: torch.Tensor | None, group_size: int) -> dict[str, Any]:
    """The step's rollout diagnostics over the WHOLE batch, every rank's share included.

    Each rank contributes sums and counts (tokens, groups, mixed groups, correct
    rollouts), all-reduced before dividing: entropy is token-weighted over all response
    tokens, kappa_B the mean over all mixed groups of the batch (Appendix E), the
    solved fractions and histograms cover all prompts, and the log-prob gain all correct
    rollouts. A rank's groups are whole (prompts are sharded, not rollouts), so group
    statistics need no communication before the sums. ``new_logp``: [N, T] after the update,
    or None on a step that does not measure the log-prob gain (its columns are NaN).
    """
    G = group_size
    mask = sb.batch.resp_mask
    correct = sb.rewards > 0.5
    n_groups = float(len(sb.prompt_rows))
    hist = M.group_accuracy_hist(sb.rewards, sb.group_ids, G)  # groups per number correct k
    n_mixed = n_groups - hist[0] - hist[G]
    kappa = M.kappa_batch(sb.old_logp, mask, sb.rewards, sb.group_ids)  # mean over this rank's mixed groups
    gain_seq, gain_tok = (M.logprob_gain_correct(new_logp, sb.old_logp, mask, correct) if new_logp is not None
                          else (float("nan"), float("nan")))
    n_correct = float(correct.sum())
    tok_correct = float(mask[correct].sum())
    tokens = float(mask.sum())
    sums = {  # mean x count = sum; a NaN mean has a zero count
        "seqs": float(len(sb.rewards)), "reward": float(sb.rewards.sum()), "tokens": tokens,
        "entropy": float(M.masked_sum(sb.old_entropy, mask)),
        "groups": n_groups, "none": float(hist[0]), "all": float(hist[G]), "mixed": n_mixed,
        "kappa": kappa * n_mixed if n_mixed else 0.0,
        "correct": n_correct, "tok_correct": tok_correct,
        "gain_seq": gain_seq * n_correct if n_correct and new_logp is not None else 0.0,
        "gain_tok": gain_tok * tok_correct if tok_correct and new_logp is not None else 0.0,
        "adv_pos": float(sb.advantages.clamp(min=0).sum()), "adv_neg": float((-sb.advantages).clamp(min=0).sum()),
    }
    w_pos, w_neg = M.advantage_mass_hist(sb.rewards, sb.group_ids, sb.advantages, G)
    # Claim 6's token-weighted mass: each advantage x its rollout's length, summed here and
    # divided by the whole batch's mean length after the all-reduce.
    w_pos_len, w_neg_len = M.advantage_mass_hist(sb.rewards, sb.group_ids, sb.advantages, G,
                                                 weights=mask.sum(1).to(torch.float64))
    for k in range(G + 1):
        sums[f"p_hist/{k}"], sums[f"w_pos/{k}"], sums[f"w_neg/{k}"] = float(hist[k]), w_pos[k], w_neg[k]
        sums[f"w_pos_len/{k}"], sums[f"w_neg_len/{k}"] = w_pos_len[k], w_neg_len[k]
    t = dist.all_reduce_sum(sums)
    mean_len = t["tokens"] / t["seqs"] if t["tokens"] and t["seqs"] else 1.0

    def ratio(a: str, b: str) -> float:
        return t[a] / t[b] if t[b] else float("nan")

    return {
        "reward_mean": ratio("reward", "seqs"),
        "entropy": ratio("entropy", "tokens"),
        "kappa": ratio("kappa", "mixed"),
        "none_solved_frac": ratio("none", "groups"),
        "all_solved_frac": ratio("all", "groups"),
        "mixed_frac": ratio("mixed", "groups"),
        "logprob_gain_correct": ratio("gain_seq", "correct") if new_logp is not None else float("nan"),
        "logprob_gain_correct_tok": ratio("gain_tok", "tok_correct") if new_logp is not None else float("nan"),
        "adv_pos_mass": t["adv_pos"],
        "adv_neg_mass": t["adv_neg"],
        "response_len_mean": ratio("tokens", "seqs"),
        "p_hist": [int(round(t[f"p_hist/{k}"])) for k in range(G + 1)],
        "w_pos_hist": [t[f"w_pos/{k}"] for k in range(G + 1)],
        "w_neg_hist": [t[f"w_neg/{k}"] for k in range(G + 1)],
        "w_pos_tok_hist": [t[f"w_pos_len/{k}"] / mean_len for k in range(G + 1)],
        "w_neg_tok_hist": [t[f"w_neg_len/{k}"] / mean_len for k in range(G + 1)],
        "_tokens": t["tokens"],
    }


class UpdateStats:
    """The update's loss, clip fractions, approx KL (token-weighted) and grad norm, as means
    over its optimizer steps; sums over this rank's micro-batches, all-reduced per mini-batch."""

    KEYS = ("clipfrac_low", "clipfrac_high", "approx_kl")

    def __init__(self) -> None:
        self.stats: dict[str, list[float]] = {k: [] for k in ("loss", *self.KEYS, "grad_norm")}
        self.sums: dict[str, float] = {}

    def start_mini_batch(self) -> None:
        self.sums = {"loss": 0.0, "tokens": 0.0, **{k: 0.0 for k in self.KEYS}}

    def add_micro_batch(self, loss: torch.Tensor, mstats: dict[str, Any], n_tok: float) -> None:
        self.sums["loss"] += float(loss.detach())  # the losses of micro-batches and ranks add up
        self.sums["tokens"] += n_tok
        for k in self.KEYS:
            v = float(mstats.get(k, 0.0))
            self.sums[k] += n_tok * v if n_tok else 0.0  # token-weighted, NaN of an empty micro-batch skipped

    def end_mini_batch(self, grad_norm: float) -> None:
        sums = dist.all_reduce_sum(self.sums)
        tokens = sums.pop("tokens")
        self.stats["loss"].append(sums.pop("loss"))
        for k, v in sums.items():
            self.stats[k].append(v / tokens if tokens else float("nan"))
        self.stats["grad_norm"].append(float(grad_norm))

    def result(self, lr: float) -> dict[str, Any]:
        out = {k: float(np.mean(v)) if v else float("nan") for k, v in self.stats.items()}
        out["lr"] = lr
        return out
