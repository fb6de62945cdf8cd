"""The PPO-style clipped surrogate of Appendix F (Eq. 12), with the usual switches.

AsymGRPO changes only the advantage; the objective is GRPO's token-level clipped
surrogate. Departures from Eq. (12), each off by default or named:

- ``loss_agg="token-mean"`` (the default) averages over all response tokens of the batch,
  as the paper's experiments do (Appendix G: "token-level loss aggregation", after DAPO);
  Eq. (12) written literally is ``seq-mean-token-mean``; Dr.GRPO's
  ``seq-mean-token-sum-norm`` divides each sequence's token sum by a constant ``max_len``.
- separate ``clip_eps_low`` / ``clip_eps_high`` (DAPO's clip-higher uses 0.28 above);
- optional dual-clip (Ye et al. 2020, verl's ``clip_ratio_c``): for A < 0 the per-token
  loss is capped at -c*A so a huge ratio on a bad token cannot dominate;
- optional entropy bonus and k3 KL to a reference policy (both off by default).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from .metrics import bool_mask, approx_kl, clip_fractions, kl_k3, masked_mean, masked_sum

__all__ = ["LOSS_AGG_MODES", "aggregate", "policy_loss"]

LossAgg = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
LOSS_AGG_MODES: tuple[str, ...] = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")

# exp() of a log-ratio beyond this overflows float32 on garbage positions; real tokens
# with |log ratio| > 20 are clipped by PPO anyway (verl clamps the same way).
_MAX_LOG_RATIO = 20.0


def aggregate(x: Tensor, mask: Tensor, loss_agg: str = "token-mean", *,
              agg_denom: float | None = None, max_len: int | None = None) -> Tensor:
    """Reduce a per-token quantity x [B, T] over mask [B, T] to a scalar.

    token-mean: sum over masked tokens / number of masked tokens.
    seq-mean-token-mean: mean over the B sequences of each one's token mean (a sequence
        with no masked token contributes 0 but still counts in B, as in verl).
    seq-mean-token-sum-norm: mean over the B sequences of token sum / max_len (Dr.GRPO).
    agg_denom replaces the denominator (token count, or B for the seq modes) with the
    mini-batch-wide one, so that micro-batch losses of gradient accumulation sum to the
    mini-batch loss: pass the mini-batch's token count (token-mean) or sequence count.
    """
    if loss_agg == "token-mean":
        denom = bool_mask(mask).sum() if agg_denom is None else agg_denom
        return masked_sum(x, mask) / denom
    if loss_agg == "seq-mean-token-mean":
        n_tok = bool_mask(mask).sum(-1).clamp(min=1)
        per_seq = masked_sum(x, mask, dim=-1) / n_tok
    elif loss_agg == "seq-mean-token-sum-norm":
        if max_len is None or max_len <= 0:
            raise ValueError(f"loss_agg 'seq-mean-token-sum-norm' needs max_len > 0 (the max "
                             f"response length), got {max_len}")
        per_seq = masked_sum(x, mask, dim=-1) / float(max_len)
    else:
        raise ValueError(f"unknown loss_agg '{loss_agg}'; known: {', '.join(LOSS_AGG_MODES)}")
    denom = per_seq.shape[0] if agg_denom is None else agg_denom
    return per_seq.sum() / denom


# Over 80 lines for a reason: a docstring with every shape and metric, then one equation read
# top to bottom (clip, dual clip, entropy bonus, KL, metrics) that would pass the same tensors around if split.
def policy_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, *,
                clip_eps_low: float = 0.2, clip_eps_high: float = 0.2,
                dual_clip_c: float | None = None, loss_agg: str = "token-mean",
                entropy: Tensor | None = None, entropy_coef: float = 0.0,
                ref_logp: Tensor | None = None, kl_coef: float = 0.0,
                agg_denom: float | None = None, max_len: int | None = None,
                ) -> tuple[Tensor, dict[str, float]]:
    """Clipped surrogate loss to minimise (the negative of Eq. 12's objective).

    logp: [B, T] token log-probs under the current policy (with grad).
    old_logp: [B, T] under the policy that sampled the rollouts (no grad needed).
    advantages: [B] (one per rollout, broadcast to tokens) or [B, T].
    mask: [B, T] bool or 0/1, True on response tokens.
    entropy: [B, T] per-token entropy (with grad) for the bonus; ref_logp: [B, T] for KL.
    agg_denom, max_len: see :func:`aggregate`.

    Per token: -min(ratio*A, clip(ratio, 1-eps_low, 1+eps_high)*A), ratio = exp(logp - old);
    with dual-clip c, tokens with A < 0 take min(that, -c*A).
    loss = agg(pg) - entropy_coef*agg(entropy) + kl_coef*agg(k3(ref - logp)).

    Metrics (floats; fractions and means are over this call's masked tokens, pg_loss is the
    aggregated term that enters the loss): pg_loss, clipfrac_low, clipfrac_high,
    clipfrac_dual (if dual_clip_c), approx_kl (k3 of KL(old || new)), ratio_mean,
    ratio_max, n_tokens, entropy (if given), kl (if ref_logp given).
    """
    if logp.shape != old_logp.shape or logp.shape != mask.shape or logp.dim() != 2:
        raise ValueError(f"logp, old_logp and mask must share shape [B, T], got {tuple(logp.shape)}, "
                         f"{tuple(old_logp.shape)}, {tuple(mask.shape)}")
    if advantages.dim() == 1:
        if advantages.shape[0] != logp.shape[0]:
            raise ValueError(f"advantages [B] must have B={logp.shape[0]}, got {tuple(advantages.shape)}")
        adv = advantages[:, None]
    elif advantages.shape == logp.shape:
        adv = advantages
    else:
        raise ValueError(f"advantages must be [B] or [B, T], got {tuple(advantages.shape)}")
    if entropy_coef != 0.0 and entropy is None:
        raise ValueError("entropy_coef != 0 needs the per-token entropy")
    if kl_coef != 0.0 and ref_logp is None:
        raise ValueError("kl_coef != 0 needs ref_logp")
    if dual_clip_c is not None and dual_clip_c <= 1.0:
        raise ValueError(f"dual_clip_c must be > 1, got {dual_clip_c}")
    adv = adv.detach().to(logp.dtype)

    log_ratio = (logp - old_logp.detach()).clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO)
    ratio = torch.exp(log_ratio)
    loss_unclipped = -adv * ratio
    loss_clipped = -adv * ratio.clamp(1.0 - clip_eps_low, 1.0 + clip_eps_high)
    pg = torch.maximum(loss_unclipped, loss_clipped)  # = -min(ratio*A, clip(ratio)*A)
    dual_active = None
    if dual_clip_c is not None:
        cap = -adv * dual_clip_c
        dual_active = (adv < 0) & (pg > cap)
        pg = torch.where(adv < 0, torch.minimum(pg, cap), pg)

    def agg(x: Tensor) -> Tensor:
        return aggregate(x, mask, loss_agg, agg_denom=agg_denom, max_len=max_len)

    pg_loss = agg(pg)
    loss = pg_loss
    metrics: dict[str, float] = {"pg_loss": float(pg_loss.detach())}
    if entropy is not None:
        if entropy.shape != logp.shape:
            raise ValueError(f"entropy must be [B, T] like logp, got {tuple(entropy.shape)}")
        if entropy_coef != 0.0:
            loss = loss - entropy_coef * agg(entropy)
        metrics["entropy"] = float(masked_mean(entropy.detach(), mask))
    if ref_logp is not None:
        if ref_logp.shape != logp.shape:
            raise ValueError(f"ref_logp must be [B, T] like logp, got {tuple(ref_logp.shape)}")
        # k3 of KL(pi || pi_ref) on tokens of pi (GRPO's KL term); clamped like log_ratio.
        kl = kl_k3((ref_logp.detach() - logp).clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO))
        if kl_coef != 0.0:
            loss = loss + kl_coef * agg(kl)
        metrics["kl"] = float(masked_mean(kl.detach(), mask))

    with torch.no_grad():
        low, high = clip_fractions(ratio, adv, mask, clip_eps_low, clip_eps_high)
        metrics["clipfrac_low"] = low
        metrics["clipfrac_high"] = high
        if dual_active is not None:
            metrics["clipfrac_dual"] = float(masked_mean(dual_active.to(ratio.dtype), mask))
        metrics["approx_kl"] = approx_kl(logp, old_logp, mask)
        metrics["ratio_mean"] = float(masked_mean(ratio, mask))
        sel = bool_mask(mask)
        metrics["ratio_max"] = float(ratio[sel].max()) if bool(sel.any()) else float("nan")
        metrics["n_tokens"] = float(sel.sum())
    return loss, metrics
