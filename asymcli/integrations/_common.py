"""What both framework adapters share: group ids from a framework's prompt index, and the
channel diagnostics of one rollout batch (computed by :mod:`asymcli.algorithm.metrics`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from asymcli.algorithm import metrics as M

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
