"""Training and evaluation diagnostics of the paper, as pure functions.

- entropy (Eq. 7) per token and its mean over response tokens;
- kappa_B (Appendix B/E), the reward-confidence alignment whose sign Proposition 1 needs;
- none-/all-solved group fractions and the log-prob gain on correct rollouts (Fig. 2 c,d);
- group-accuracy and advantage-mass histograms per number correct k (Proposition 2);
- the masked reductions, clip fractions and k3 KL that the PPO objective also uses;
- avg@k (the paper's Avg@5 / Avg@10), unbiased pass@k (Chen et al. 2021) and maj@k.

Masks may be bool or 0/1 floats; masked-out positions never enter a result, even when they
hold inf or NaN (reductions select with ``torch.where`` instead of multiplying by the mask).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .advantages import group_stats

__all__ = [
    "advantage_mass_hist",
    "approx_kl",
    "avg_at_k",
    "bool_mask",
    "clip_fractions",
    "group_accuracy_hist",
    "kappa_batch",
    "kappa_from_seq_logp",
    "kappa_hat",
    "kl_k3",
    "logprob_gain_correct",
    "maj_at_k",
    "masked_mean",
    "masked_sum",
    "mean_token_entropy",
    "pass_at_k",
    "seq_mean_logp",
    "solved_fractions",
    "token_entropy",
]

# ---------------------------------------------------------------------------
# Masked reductions (shared with the objective)
# ---------------------------------------------------------------------------


def bool_mask(mask: Tensor) -> Tensor:
    """A mask as bool (accepts bool or 0/1 numbers)."""
    return mask if mask.dtype == torch.bool else mask != 0


def masked_sum(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Sum of ``x`` over ``mask`` (same shape, bool or 0/1), over ``dim`` or everything."""
    vals = torch.where(bool_mask(mask), x, torch.zeros((), dtype=x.dtype, device=x.device))
    return vals.sum() if dim is None else vals.sum(dim)


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``x`` over ``mask``; NaN where the mask selects nothing."""
    n = bool_mask(mask).sum() if dim is None else bool_mask(mask).sum(dim)
    return masked_sum(x, mask, dim) / n


def kl_k3(log_ratio: Tensor) -> Tensor:
    """Schulman's k3 estimator exp(d) - d - 1 >= 0 of KL(p || q), d = log q(y) - log p(y),
    for samples y ~ p: unbiased and never negative. Elementwise, same shape as ``log_ratio``."""
    return torch.expm1(log_ratio) - log_ratio


def approx_kl(logp: Tensor, old_logp: Tensor, mask: Tensor) -> float:
    """KL(pi_old || pi_new) over masked tokens by k3 (tokens were sampled from pi_old):
    mean of ratio - 1 - log ratio. logp, old_logp, mask: [B, T]."""
    with torch.no_grad():
        return float(masked_mean(kl_k3(logp.detach() - old_logp), mask))


def clip_fractions(ratio: Tensor, advantages: Tensor, mask: Tensor, clip_eps_low: float,
                   clip_eps_high: float) -> tuple[float, float]:
    """(low, high): fraction of masked tokens where the PPO clip is active, i.e. the
    gradient is cut: low = A < 0 and ratio < 1 - eps_low; high = A > 0 and ratio > 1 + eps_high.
    ratio, mask: [B, T]; advantages: [B, T] or broadcastable."""
    with torch.no_grad():
        adv = advantages.expand_as(ratio)
        low = (adv < 0) & (ratio < 1.0 - clip_eps_low)
        high = (adv > 0) & (ratio > 1.0 + clip_eps_high)
        return (float(masked_mean(low.to(ratio.dtype), mask)),
                float(masked_mean(high.to(ratio.dtype), mask)))


# ---------------------------------------------------------------------------
# Entropy (Eq. 7)
# ---------------------------------------------------------------------------


def token_entropy(logits: Tensor) -> Tensor:
    """H_t = -sum_v pi(v) log pi(v) (Eq. 7) from logits [..., V] -> [...].

    Computed from log_softmax (no log of a rounded probability); -inf logits (masked
    vocabulary) contribute 0 instead of 0 * -inf = NaN. Half-precision logits are upcast
    to float32.
    """
    x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    logp = torch.log_softmax(x, dim=-1)
    # Replace -inf before multiplying, not after: where() after the product would still
    # backpropagate 0 * (-inf) = NaN into the logits.
    finite_logp = torch.where(torch.isneginf(logp), torch.zeros((), dtype=logp.dtype, device=logp.device), logp)
    return -(logp.exp() * finite_logp).sum(-1)


def mean_token_entropy(entropy: Tensor, mask: Tensor) -> float:
    """Mean entropy over response tokens (token-weighted, as the paper's entropy curves).
    entropy, mask: [B, T]. NaN if the mask is empty."""
    with torch.no_grad():
        return float(masked_mean(entropy.detach(), mask))


# ---------------------------------------------------------------------------
# kappa_B (Appendix B, E)
# ---------------------------------------------------------------------------


def seq_mean_logp(logp: Tensor, mask: Tensor) -> Tensor:
    """Response-length-normalised log-prob per rollout (Appendix E's L_{g,i}).
    logp, mask: [B, T] -> [B]. A rollout with no response tokens gets 0."""
    n = bool_mask(mask).sum(-1).clamp(min=1)
    return masked_sum(logp, mask, dim=-1) / n


def _check_binary(rewards: Tensor, what: str) -> Tensor:
    r = rewards.detach().to(torch.float64)
    bad = (r != 0) & (r != 1)
    if bad.any():
        i = int(torch.nonzero(bad)[0])
        raise ValueError(f"{what} needs binary rewards in {{0, 1}}; got {float(r[i]):g} at index {i}")
    return r


def kappa_from_seq_logp(seq_logp: Tensor, rewards: Tensor, group_ids: Tensor) -> float:
    """kappa_B = mean over mixed groups (0 < p_g < 1) of k_g = w_g delta_g l_g (Appendix E).

    seq_logp: [B] L_{g,i}; rewards: [B] in {0, 1}; group_ids: [B] int64.
    w_g = p(1-p), delta_g = mean L over correct - mean L over failed, l_g = log(p/(1-p)).
    Returns NaN when the batch has no mixed group.
    """
    k = kappa_groups(seq_logp, rewards, group_ids)
    return float(k.mean()) if len(k) else math.nan


def kappa_groups(seq_logp: Tensor, rewards: Tensor, group_ids: Tensor) -> Tensor:
    """The mixed groups' k_g = p(1-p) delta_g log(p/(1-p)) (see :func:`kappa_from_seq_logp`),
    float64 [n_mixed] in sorted-group-id order; empty without a mixed group."""
    r = _check_binary(rewards, "kappa")
    L = seq_logp.detach().to(device=r.device, dtype=torch.float64)
    s = group_stats(r, group_ids)
    n = s.n_groups
    idx = s.index
    n_pos = torch.zeros(n, dtype=torch.float64, device=r.device).index_add_(0, idx, r)
    n_all = torch.zeros(n, dtype=torch.float64, device=r.device).index_add_(0, idx, torch.ones_like(r))
    sum_pos = torch.zeros(n, dtype=torch.float64, device=r.device).index_add_(0, idx, L * r)
    sum_neg = torch.zeros(n, dtype=torch.float64, device=r.device).index_add_(0, idx, L * (1 - r))
    mixed = (n_pos > 0) & (n_pos < n_all)
    p = (n_pos / n_all)[mixed]
    delta = (sum_pos / n_pos.clamp(min=1) - sum_neg / (n_all - n_pos).clamp(min=1))[mixed]
    return p * (1 - p) * delta * torch.log(p / (1 - p))


def kappa_batch(old_logp: Tensor, mask: Tensor, rewards: Tensor, group_ids: Tensor) -> float:
    """kappa_B of one rollout batch from old-policy token log-probs (Appendix E): computed
    once per rollout batch, before any update. old_logp, mask: [B, T]; rewards, group_ids: [B].
    NaN when there is no mixed group."""
    with torch.no_grad():
        return kappa_from_seq_logp(seq_mean_logp(old_logp.detach(), mask), rewards, group_ids)


def kappa_hat(kappas: Sequence[float], T: int) -> float:
    """kappa-hat = mean of the step-level kappa_B over the first T steps (Appendix E, T=20
    in Table 1). Steps whose kappa_B is NaN (no mixed group) are skipped, not counted as
    0; fewer than T steps use what there is. NaN if no step has a value."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    vals = [float(k) for k in list(kappas)[:T] if not math.isnan(float(k))]
    return sum(vals) / len(vals) if vals else math.nan


# ---------------------------------------------------------------------------
# Group-level diagnostics (Fig. 2 c, g; Proposition 2)
# ---------------------------------------------------------------------------


def _group_counts(rewards: Tensor, group_ids: Tensor, what: str) -> tuple[Tensor, Tensor, Tensor]:
    """(k per group, size per group, group index per rollout) for binary rewards."""
    r = _check_binary(rewards, what)
    s = group_stats(r, group_ids)
    k = torch.zeros(s.n_groups, dtype=torch.float64, device=r.device).index_add_(0, s.index, r)
    size = torch.zeros(s.n_groups, dtype=torch.float64, device=r.device).index_add_(0, s.index, torch.ones_like(r))
    return k, size, s.index


def solved_fractions(rewards: Tensor, group_ids: Tensor) -> tuple[float, float, float]:
    """(none_solved_frac, all_solved_frac, mixed_frac) over the prompt groups of a batch.
    rewards: [N] in {0, 1}; group_ids: [N] int64. NaNs for an empty batch."""
    if rewards.numel() == 0:
        return math.nan, math.nan, math.nan
    k, size, _ = _group_counts(rewards, group_ids, "solved_fractions")
    n = float(k.numel())
    none = float((k == 0).sum()) / n
    full = float((k == size).sum()) / n
    return none, full, 1.0 - none - full


def _check_size(size: Tensor, G: int, what: str) -> None:
    if bool((size != G).any()):
        bad = int(size[size != G][0])
        raise ValueError(f"{what}: every group must have G={G} rollouts, found a group of {bad}")


def group_accuracy_hist(rewards: Tensor, group_ids: Tensor, G: int) -> list[int]:
    """Number of groups with k correct rollouts, k = 0..G. rewards: [N] in {0, 1};
    group_ids: [N] int64; every group must have G rollouts."""
    if rewards.numel() == 0:
        return [0] * (G + 1)
    k, size, _ = _group_counts(rewards, group_ids, "group_accuracy_hist")
    _check_size(size, G, "group_accuracy_hist")
    return [int(c) for c in torch.bincount(k.long(), minlength=G + 1)]


def advantage_mass_hist(rewards: Tensor, group_ids: Tensor, advantages: Tensor,
                        G: int, weights: Tensor | None = None) -> tuple[list[float], list[float]]:
    """(pos_mass, neg_mass), each indexed by k = 0..G correct in the group: the sum of the
    positive advantages, and of |negative| advantages, of rollouts in groups with k correct.
    rewards, advantages: [N]; group_ids: [N] int64; groups of size G.

    Divided by G x (number of groups with that k) they are the empirical W_+(k/G) and
    W_-(k/G) of Eqs. (9)-(10) for the beta family.

    weights: [N] per-rollout weights, or None (all 1). The trainer passes response length /
    the batch's mean length: a rollout's relative weight in the token-mean loss, which
    Proposition 2 leaves out (equal lengths give the unweighted mass).
    """
    if rewards.numel() == 0:
        return [0.0] * (G + 1), [0.0] * (G + 1)
    k, size, idx = _group_counts(rewards, group_ids, "advantage_mass_hist")
    _check_size(size, G, "advantage_mass_hist")
    a = advantages.detach().to(device=k.device, dtype=torch.float64).reshape(-1)
    if weights is not None:
        w = weights.detach().to(device=k.device, dtype=torch.float64).reshape(-1)
        if w.shape != a.shape:
            raise ValueError(f"advantage_mass_hist: weights has shape {tuple(w.shape)}, expected {tuple(a.shape)}")
        a = a * w
    kr = k[idx].long()
    pos = torch.zeros(G + 1, dtype=torch.float64, device=k.device).index_add_(0, kr, a.clamp(min=0))
    neg = torch.zeros(G + 1, dtype=torch.float64, device=k.device).index_add_(0, kr, (-a).clamp(min=0))
    return [float(x) for x in pos], [float(x) for x in neg]


def logprob_gain_correct(new_logp: Tensor, old_logp: Tensor, mask: Tensor,
                         correct: Tensor) -> tuple[float, float]:
    """E[log pi_new(y) - log pi_old(y)] over correct rollouts (Fig. 2 d, h).

    new_logp, old_logp, mask: [B, T]; correct: [B] bool or 0/1.
    Returns (seq_sum_mean, per_token_mean): the mean over correct rollouts of the
    sequence log-prob gain, and the gain per token over all their response tokens
    (token-weighted). (NaN, NaN) when no rollout is correct.
    """
    with torch.no_grad():
        c = bool_mask(correct.reshape(-1))
        if not bool(c.any()):
            return math.nan, math.nan
        diff = (new_logp.detach() - old_logp.detach()).to(torch.float64)
        m = bool_mask(mask) & c[:, None]
        per_seq = masked_sum(diff, m, dim=-1)[c]
        n_tok = int(m.sum())
        return float(per_seq.mean()), (float(per_seq.sum()) / n_tok if n_tok else math.nan)


# ---------------------------------------------------------------------------
# Evaluation metrics
# ---------------------------------------------------------------------------


def avg_at_k(correct: Any) -> float:
    """Avg@k: mean correctness over k samples per problem, then over problems (the paper's
    Avg@5 / Avg@10), as a fraction in [0, 1]. correct: [n_problems, k] (nested lists,
    array or tensor; rows may differ in length, each row is averaged on its own)."""
    rows = correct.tolist() if isinstance(correct, (Tensor, np.ndarray)) else correct
    rows = [list(r) for r in rows]
    if not rows:
        return math.nan
    if any(len(r) == 0 for r in rows):
        raise ValueError("avg_at_k: a problem has no samples")
    return float(np.mean([np.mean([float(bool(x)) for x in r]) for r in rows]))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k) from n samples with c correct (Chen et al.
    2021), in the stable product form 1 - prod_{i=n-c+1}^{n} (1 - k/i)."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _blank(a: Any) -> bool:
    return a is None or (isinstance(a, str) and not a.strip())


def maj_at_k(answers: Sequence[Sequence[str | None]], correct: Sequence[Sequence[bool]], k: int) -> float:
    """Maj@k: per problem, majority vote over the first k extracted answers; the problem
    counts as solved if the winning answer is correct. Mean over problems.

    answers[i][j]: extracted answer of sample j of problem i (compared as exact strings:
    normalise first); correct[i][j]: its verdict. Ties go to the answer seen first. A
    None/blank answer (nothing extracted) never wins while another answer exists; if all
    are blank the problem is unsolved. The winner's correctness is that of its first
    occurrence.
    """
    if len(answers) != len(correct):
        raise ValueError(f"maj_at_k: {len(answers)} answer rows but {len(correct)} correctness rows")
    if k < 1:
        raise ValueError(f"maj_at_k: k must be >= 1, got {k}")
    if not answers:
        return math.nan
    solved = 0
    for i, (ans, cor) in enumerate(zip(answers, correct)):
        if len(ans) < k or len(cor) < k:
            raise ValueError(f"maj_at_k: problem {i} has {min(len(ans), len(cor))} samples, fewer than k={k}")
        votes: dict[str, int] = {}
        first: dict[str, int] = {}
        for j in range(k):
            a = ans[j]
            if _blank(a):
                continue
            votes[a] = votes.get(a, 0) + 1  # type: ignore[index]
            first.setdefault(a, j)  # type: ignore[arg-type]
        if not votes:
            continue
        # dicts keep insertion order = first occurrence, and max() keeps the first maximum.
        winner = max(votes, key=lambda a: votes[a])
        solved += bool(cor[first[winner]])
    return solved / len(answers)
