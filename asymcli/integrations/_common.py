"""What both framework adapters share: group ids from a framework's prompt index, and the
channel diagnostics of one rollout batch (computed by :mod:`asymcli.algorithm.metrics`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from asymcli.algorithm import metrics as M
from asymcli.algorithm.advantages import compute_advantages

#: Namespace of every diagnostic key, in the frameworks' ``section/name`` style.
PREFIX = "asym/"


def group_ids_from_index(index: Any) -> Tensor:
    """int64 group id per rollout from a framework's prompt index (verl's ``uid`` strings,
    ints, ...): rollouts with equal index values share a group. index: [N] -> [N]."""
    arr = np.asarray(index)
    if arr.ndim != 1:
        raise ValueError(f"index must be one-dimensional, got shape {arr.shape}")
    _, inverse = np.unique(arr, return_inverse=True)
    return torch.from_numpy(inverse.reshape(-1).astype(np.int64))


def group_advantages(name: str, rewards: Tensor, group_ids: Tensor, *, beta_pos: float | None = None,
                     beta_neg: float | None = None, eps: float = 1e-6) -> Tensor:
    """:func:`~asymcli.algorithm.advantages.compute_advantages`, with every group of one rollout
    given the estimator's value at p = its reward (p in {0, 1} on binary rewards).

    The frameworks make such groups: verl's ``upsample_batch_to_divisible_size`` pads a batch
    with rows that share one uid (one padding row is a group of one), a prompt may keep one
    rollout after filtering, and in TRL a group loses the completions no reward function scored.
    The registry's Appendix C flips (``ent_decrease``, ``ent_increase``) extrapolate their
    endpoint from two grid points and refuse a group of one; here it gets the flip's endpoint
    (the value the registry gives a uniform group at p = 0 or 1) for G = the batch's largest
    group (the configured rollouts per prompt; 2 when every group has one rollout). Every other
    estimator gives a group of one that same value already (0 at p in {0, 1} with beta > 0,
    REINFORCE's +-1 with beta = 0, GRPO's 0, ...). rewards: [N]; group_ids: [N] int64. Returns [N].
    """
    _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    single = counts[inverse] == 1
    if not bool(single.any()):
        return compute_advantages(name, rewards, group_ids, beta_pos=beta_pos, beta_neg=beta_neg, eps=eps)
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.get_default_dtype()
    out = torch.zeros(rewards.shape, dtype=out_dtype, device=rewards.device)
    if bool((~single).any()):
        out[~single] = compute_advantages(name, rewards[~single], group_ids[~single],
                                          beta_pos=beta_pos, beta_neg=beta_neg, eps=eps)
    # Each single rollout as a uniform group of G copies of itself (p = its reward): the
    # registry's value there, with its own checks (binary rewards, betas).
    size = max(int(counts.max()), 2)
    r = rewards[single]
    ids = torch.arange(r.numel(), device=r.device).repeat_interleave(size)
    value = compute_advantages(name, r.repeat_interleave(size), ids, beta_pos=beta_pos, beta_neg=beta_neg, eps=eps)
    out[single] = value[::size].to(out)
    return out


def is_binary(rewards: Tensor) -> bool:
    """True when every reward is 0 or 1 (the diagnostics are defined on group accuracy)."""
    return bool(((rewards == 0) | (rewards == 1)).all())


def channel_diagnostics(rewards: Tensor, group_ids: Tensor, seq_logp: Tensor | None = None) -> dict[str, float]:
    """Solved fractions (Fig. 2c) and, given old-policy log-probs, kappa_B (Appendix E).

    rewards: [N] in {0, 1}; group_ids: [N] int64; seq_logp: [N] response-length-normalised
    old-policy log-prob of each rollout (``metrics.seq_mean_logp``), or None.
    Returns ``asym/none_solved_frac``, ``asym/all_solved_frac``, ``asym/mixed_frac`` and,
    with seq_logp, ``asym/kappa_batch`` (NaN when no group is mixed).
    """
    none, full, mixed = M.solved_fractions(rewards, group_ids)
    out = {f"{PREFIX}none_solved_frac": none, f"{PREFIX}all_solved_frac": full, f"{PREFIX}mixed_frac": mixed}
    if seq_logp is not None:
        out[f"{PREFIX}kappa_batch"] = (M.kappa_from_seq_logp(seq_logp, rewards, group_ids)
                                       if rewards.numel() else math.nan)
    return out


def logprob_gain(new_logp: Tensor, old_logp: Tensor, mask: Tensor, correct: Tensor) -> dict[str, float]:
    """Log-prob gain of the correct rollouts through one update (Fig. 2d), per sequence and
    per token. new_logp, old_logp, mask: [B, T]; correct: [B] bool or 0/1."""
    seq, tok = M.logprob_gain_correct(new_logp, old_logp, mask, correct)
    return {f"{PREFIX}logprob_gain_correct": seq, f"{PREFIX}logprob_gain_correct_tok": tok}
