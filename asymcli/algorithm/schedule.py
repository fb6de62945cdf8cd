"""The entropy-targeting beta schedule (method ``asym_adaptive``): AsymGRPO whose
(beta_pos, beta_neg) are set at every step from the run's own signals.

What sets what, and why (docs/scan.md, "The adaptive schedule"):

- **The gap d = beta_pos - beta_neg follows the entropy error.** Proposition 1 (Eq. 6) says
  that, relative to REINFORCE, a step's first-order entropy change is
  eta * kappa_B * (beta_pos - beta_neg): only the gap moves entropy, and kappa_B's sign says
  which way. So the gap is an integral controller on the relative entropy error
  e = (H* - H) / H*:  d <- d + gain * sign(kappa) * e, with kappa an exponential moving
  average of the batches' kappa_B (Appendix E averages kappa_B over 20 steps: one batch's
  value is noisy and often of the other sign; the default weight 0.95 remembers about 20
  steps). The sign is used only once it is known: while the moving average lies within two
  standard errors of 0 (its moving variance over the effective number of batches) the gap
  holds, so that the first noisy batches cannot steer the run the wrong way. The sign is all
  the law needs: the step size eta of Eq. 6 is not the optimiser's under AdamW, so kappa's
  magnitude does not calibrate the gain.
- **The level m = (beta_pos + beta_neg) / 2 follows the group-accuracy histogram.** With the
  gap fixed, Proposition 2's peaks sit at 1 - beta_pos and beta_neg; their midpoint,
  (1 - d) / 2, depends on the gap alone, and the placement nearest a batch's accuracies puts
  m at 0.5 whatever the histogram. What the level does change is the update's size: the mean
  |advantage| over the batch's mixed groups. ``level: mass`` picks the m (within the bounds)
  whose mean |advantage| on this step's histogram is closest to GRPO's, so that the schedule
  changes the direction of an update (the gap) and not its size; ``level: fixed`` keeps
  m = 0.5. Per group the mass is (1-p) r^(d/2) (r^(m-1) + r^(-m)) with r = (1-p)/p, smallest
  at m = 0.5 for every histogram; so the level leaves 0.5 only when the gap has taken the
  mass below GRPO's (a positive gap on a batch of mostly-solved groups, a negative one on
  mostly-failed groups), and then just far enough to restore it.
- **The target** is absolute (nats per token) or relative to the entropy of the first
  step's rollouts, which the base policy sampled.
- **Bounds:** both betas stay in [beta_min, beta_max]; the gap is re-read from the clipped
  betas, so the integrator does not wind up past a bound. A step whose integrator asks for
  a gap beyond the bounds is *saturated* (``ScheduleState.saturated``): the run is then the
  fixed pair at the bound, and the target is out of the betas' reach. The trainer logs the
  step where that starts and records it per step (metrics column ``schedule_saturated``), so
  that a run which spent most of its steps at (beta_max, beta_min) cannot pass for a schedule.

Pure: numpy and the standard library. The trainer calls :func:`schedule_step` once per
step, after the rollouts and before the advantages, and logs the betas it returns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["ScheduleSettings", "ScheduleState", "kappa_sign", "mean_abs_advantage", "schedule_step"]


@dataclass(frozen=True)
class ScheduleSettings:
    """The controller's settings: ``train.schedule`` of a config (asymcli/config.py's
    ScheduleConfig holds the defaults and their documentation; this module stays torch- and
    config-free)."""

    target: float  # entropy target: x the base's entropy (relative) or nats/token (absolute)
    target_mode: str  # relative | absolute
    gain: float  # gap change per unit relative entropy error
    beta_min: float
    beta_max: float
    level: str  # mass | fixed
    kappa_ema: float  # weight of the past in kappa's moving average


@dataclass
class ScheduleState:
    """What the controller carries from step to step (saved in checkpoints)."""

    beta_pos: float = 0.5
    beta_neg: float = 0.5
    target: float = math.nan  # absolute target; NaN until the first step fixes a relative one
    kappa: float = math.nan  # moving average of kappa_B; NaN until a batch had a mixed group
    kappa_sq: float = math.nan  # moving average of kappa_B^2
    kappa_n: float = 0.0  # batches averaged so far
    saturated: float = 0.0  # 1.0 when this step's integrator asked for a gap beyond the bounds

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ScheduleState":
        return cls(**{k: float(v) for k, v in d.items()})


def mean_abs_advantage(p_hist: Sequence[float], beta_pos: float, beta_neg: float) -> float:
    """Mean |advantage| per rollout over a batch's mixed groups under the beta family.

    p_hist: [G+1] number of groups with k = 0..G correct rollouts. A group with accuracy p
    contributes p * ((1-p)/p)^beta_pos + (1-p) * (p/(1-p))^beta_neg per rollout (Eq. 8).
    NaN when the histogram has no mixed group."""
    h = np.asarray(p_hist, dtype=np.float64)
    G = len(h) - 1
    if G < 2 or h[1:G].sum() <= 0:
        return math.nan
    p = np.arange(1, G) / G
    per = p * ((1 - p) / p) ** beta_pos + (1 - p) * (p / (1 - p)) ** beta_neg
    return float((h[1:G] * per).sum() / h[1:G].sum())


def _level(settings: ScheduleSettings, gap: float, p_hist: Sequence[float], previous: float) -> float:
    """The level m for a gap: 0.5 (``fixed``), or the m whose mean |advantage| on the
    histogram is nearest GRPO's (``mass``), both within the bounds. The mass match often has
    two solutions (one below 0.5, one above) and is nearly flat between them on a noisy
    histogram, so of the levels within 1% of the best match the one nearest ``previous``
    (the last step's level) is taken: the level moves continuously instead of jumping
    between the solutions from batch to batch."""
    lo = settings.beta_min + abs(gap) / 2  # both betas inside [beta_min, beta_max]
    hi = settings.beta_max - abs(gap) / 2
    if lo > hi:
        return (settings.beta_min + settings.beta_max) / 2
    if settings.level == "fixed":
        return min(max(0.5, lo), hi)
    ref = mean_abs_advantage(p_hist, 0.5, 0.5)
    if not math.isfinite(ref):  # no mixed group: nothing to match
        return min(max(0.5, lo), hi)
    grid = np.linspace(lo, hi, 81)
    cost = np.array([abs(math.log(mean_abs_advantage(p_hist, m + gap / 2, m - gap / 2) / ref)) for m in grid])
    near = grid[cost <= cost.min() + 0.01]
    return float(near[np.argmin(np.abs(near - previous))])


def schedule_step(state: ScheduleState, settings: ScheduleSettings, *, entropy: float,
                  kappa: float, p_hist: Sequence[float]) -> ScheduleState:
    """The betas of this step from its rollouts' signals.

    entropy: mean token entropy of this step's rollouts (before the update);
    kappa: this batch's kappa_B (NaN without a mixed group);
    p_hist: [G+1] groups per number of correct rollouts.
    Returns the new state; its beta_pos / beta_neg are the step's betas.
    """
    target = state.target
    if not math.isfinite(target):  # the first step: fix the absolute target
        target = settings.target if settings.target_mode == "absolute" else settings.target * entropy
    k, k2, n = state.kappa, state.kappa_sq, state.kappa_n
    if math.isfinite(kappa):
        # the plain running mean until it spans the EMA's memory, then the EMA: early
        # batches are averaged equally instead of the first one dominating
        n += 1
        w = max(1 - settings.kappa_ema, 1 / n)
        k = kappa if n == 1 else (1 - w) * k + w * kappa
        k2 = kappa * kappa if n == 1 else (1 - w) * k2 + w * kappa * kappa
    gap = state.beta_pos - state.beta_neg
    sign = kappa_sign(k, k2, n, settings.kappa_ema)
    if math.isfinite(entropy) and target > 0:
        gap += settings.gain * sign * (target - entropy) / target
    width = settings.beta_max - settings.beta_min
    saturated = abs(gap) > width + 1e-12  # the asked-for gap lies past the bounds
    gap = min(max(gap, -width), width)
    m = _level(settings, gap, p_hist, (state.beta_pos + state.beta_neg) / 2)
    bp = min(max(m + gap / 2, settings.beta_min), settings.beta_max)
    bn = min(max(m - gap / 2, settings.beta_min), settings.beta_max)
    return ScheduleState(beta_pos=float(bp), beta_neg=float(bn), target=float(target), kappa=float(k),
                         kappa_sq=float(k2), kappa_n=float(n), saturated=float(saturated))


def kappa_sign(mean: float, mean_sq: float, n: float, ema: float) -> float:
    """+1 / -1 when the moving average of kappa_B is more than two standard errors from 0,
    else 0. The standard error is the moving sd over sqrt of the effective number of
    batches, min(n, (1 + ema) / (1 - ema)) (an EMA of weight ema averages about that many)."""
    if n < 2 or not math.isfinite(mean):
        return 0.0
    n_eff = min(n, (1 + ema) / (1 - ema))
    sd = math.sqrt(max(mean_sq - mean * mean, 0.0) * n_eff / (n_eff - 1))  # Bessel-corrected
    if abs(mean) <= 2 * sd / math.sqrt(n_eff):
        return 0.0
    return math.copysign(1.0, mean)
