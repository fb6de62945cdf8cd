"""The paper's two propositions as computable quantities (used by tests and `asym curves`).

- Proposition 1 (Appendix B): to first order, an advantage assignment A changes a group's
  entropy by -eta * Cov_g(L, A), L = length-normalised log-prob; so the difference between
  two estimators is -eta * Cov_g(L, A - A'). :func:`entropy_shift` evaluates it (eta = 1)
  averaged over mixed groups, the average kappa_B is defined on.
- Proposition 2 (Appendix D): for beta in (0, 1), W_+ peaks at p = 1 - beta_pos and W_- at
  p = beta_neg (:func:`peak_pos`, :func:`peak_neg`; None outside (0, 1), where the
  maximum sits on the boundary or W is flat).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .advantages import group_stats

__all__ = ["entropy_shift", "group_cov", "peak_neg", "peak_pos"]


def peak_pos(beta_pos: float | None) -> float | None:
    """argmax_p W_+(p; beta_pos) = 1 - beta_pos for beta_pos in (0, 1), else None."""
    # Rounded so that 1 - 0.9 prints as 0.1, not 0.09999999999999998.
    return round(1.0 - beta_pos, 12) if beta_pos is not None and 0.0 < beta_pos < 1.0 else None


def peak_neg(beta_neg: float | None) -> float | None:
    """argmax_p W_-(p; beta_neg) = beta_neg for beta_neg in (0, 1), else None."""
    return beta_neg if beta_neg is not None and 0.0 < beta_neg < 1.0 else None


def group_cov(x: Tensor, y: Tensor, group_ids: Tensor) -> Tensor:
    """Empirical (population, 1/G) covariance of x and y within each group.
    x, y: [N]; group_ids: [N] int64 -> [n_groups], in sorted-unique-id order."""
    xs = group_stats(x.to(torch.float64), group_ids)
    ys = group_stats(y.to(device=x.device, dtype=torch.float64), group_ids)
    prod = torch.zeros(xs.n_groups, dtype=torch.float64, device=x.device)
    prod.index_add_(0, xs.index, xs.centered * ys.centered)
    size = torch.zeros_like(prod).index_add_(0, xs.index, torch.ones_like(xs.size))
    return prod / size


def entropy_shift(seq_logp: Tensor, adv: Tensor, adv_ref: Tensor, rewards: Tensor,
                  group_ids: Tensor) -> float:
    """First-order entropy change of ``adv`` relative to ``adv_ref`` per unit step size:
    E_g[-Cov_g(L, adv - adv_ref)] over mixed groups (0 < p_g < 1), as in Appendix B.

    seq_logp: [N] L; adv, adv_ref: [N]; rewards: [N] in {0, 1}; group_ids: [N] int64.
    NaN when there is no mixed group.
    """
    cov = group_cov(seq_logp, adv.to(torch.float64) - adv_ref.to(torch.float64), group_ids)
    s = group_stats(rewards.to(torch.float64), group_ids)
    mixed = torch.zeros(s.n_groups, dtype=torch.bool, device=s.index.device)
    mixed.index_fill_(0, s.index[~s.uniform], True)
    if not bool(mixed.any()):
        return float("nan")
    return float(-cov[mixed].mean())
