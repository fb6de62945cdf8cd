"""Group-relative advantage estimators: one registry, pure tensor functions.

Every estimator of the paper (arXiv 2604.04894) maps the rewards of a batch of rollouts,
grouped by prompt, to one advantage per rollout; the trainer broadcasts it to the tokens
(Eq. 8 "computed at the rollout level and broadcast"). All of them are found through
``ESTIMATORS`` / :func:`compute_advantages` by name, so the trainer, ``asym curves`` and
the tests share one source of truth.

The beta family (Eq. 5 / Eq. 8) is written as two *channel functions* of the group
accuracy p: ``a_pos(p, beta)`` for correct rollouts and ``a_neg(p, beta)`` for failed ones.
The beta-family estimators are built from those functions; GRPO, its Bessel variant and
Dr.GRPO are computed from the reward statistics (so they also take real-valued rewards)
and their closed forms (:func:`closed_form_channels`) are tested to agree.

Choices where the paper leaves room (also in docs/estimators.md):

- p in {0, 1}: the formula is followed literally with 0^0 = 1 (torch.pow convention). A
  channel with beta = 0 keeps REINFORCE's +1/-1 on uniform groups; with beta > 0 a uniform
  group gets 0^beta = 0, as GRPO's zero-std convention does.
- ``grpo`` uses the population std (Eq. 3/4 closed form) and gives 0 to zero-std groups
  instead of dividing by eps. ``grpo_unbiased`` is the verl/TRL/OpenRLHF variant with the
  Bessel-corrected std plus eps; std_bessel = std_pop * sqrt(G/(G-1)), so its advantages
  are sqrt((G-1)/G) times GRPO's (up to eps).
- ``ent_decrease`` / ``ent_increase`` (Sec. 3.2) reflect one channel, A~(p) = A(1-p), and
  extrapolate linearly at the one undefined grid point (Appendix C), using the group's
  own size G. On a uniform all-failed group ``ent_increase`` therefore gives every rollout
  the extrapolated V_neg_end (non-zero), as Appendix C prescribes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ESTIMATORS",
    "Estimator",
    "GroupStats",
    "a_neg",
    "a_pos",
    "channel_values",
    "closed_form_channels",
    "compute_advantages",
    "estimator_names",
    "flipped_a_neg",
    "flipped_a_pos",
    "get_estimator",
    "group_stats",
    "lin_interp",
    "register_estimator",
    "resolve_betas",
    "w_neg",
    "w_pos",
]

# ---------------------------------------------------------------------------
# Channel functions of the group accuracy p (scalars, numpy arrays or tensors)
# ---------------------------------------------------------------------------


def _as_tensor(x: Any) -> tuple[Tensor, str]:
    """float64 tensor of ``x`` and how to give the result back (same kind as the input)."""
    if isinstance(x, Tensor):
        return x.to(torch.float64), "tensor"
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.asarray(x, dtype=np.float64)), "numpy"
    return torch.tensor(float(x), dtype=torch.float64), "float"


def _back(t: Tensor, kind: str, like: Any) -> Any:
    t = t + 0.0  # turns -0.0 into 0.0 (e.g. -(0^beta)), so printed tables read 0
    if kind == "tensor":
        return t.to(like.dtype) if like.is_floating_point() else t
    if kind == "numpy":
        return t.numpy()
    return float(t)


def _channel(fn: Callable[..., Tensor]) -> Callable[..., Any]:
    """Let a float64-tensor channel function take and return floats, arrays or tensors."""

    def wrapper(p: Any, *args: Any) -> Any:
        t, kind = _as_tensor(p)
        targs = [a.to(torch.float64) if isinstance(a, Tensor) else a for a in args]
        return _back(fn(t, *targs), kind, p)

    wrapper.__name__ = fn.__name__
    wrapper.__qualname__ = fn.__qualname__
    wrapper.__doc__ = fn.__doc__
    wrapper.raw = fn  # type: ignore[attr-defined]  # the tensor version, used internally
    return wrapper


def _pow(base: Tensor, beta: float | Tensor) -> Tensor:
    # torch.pow gives 0^0 = 1 and inf^0 = 1: the literal reading of Eq. (5) at p in {0, 1}.
    return torch.pow(base, beta)


def _a_pos(p: Tensor, beta: float) -> Tensor:
    """Eq. (5): A_pos^(beta)(p) = ((1-p)/p)^beta, p = group accuracy. 0 at p=1 if beta>0, 1 if beta=0."""
    return _pow((1.0 - p) / p, beta)


def _a_neg(p: Tensor, beta: float) -> Tensor:
    """Eq. (5): A_neg^(beta)(p) = -(p/(1-p))^beta. 0 at p=0 if beta>0, -1 if beta=0."""
    return -_pow(p / (1.0 - p), beta)


def _w_pos(p: Tensor, beta: float) -> Tensor:
    """Eq. (9): W_+(p; beta) = p * A_pos(p) = p^(1-beta) (1-p)^beta (0 at p=0)."""
    return torch.where(p == 0, torch.zeros_like(p), p * _a_pos(p, beta))


def _w_neg(p: Tensor, beta: float) -> Tensor:
    """Eq. (10): W_-(p; beta) = (1-p) |A_neg(p)| = p^beta (1-p)^(1-beta) (0 at p=1)."""
    return torch.where(p == 1, torch.zeros_like(p), (1.0 - p) * _a_neg(p, beta).abs())


def _lin_interp(p: Tensor, a: Any, b: Any, u: Any, v: Any) -> Tensor:
    """Appendix C: Lin(p; a, b; u, v) = u + (p-a)/(b-a) (v-u), the line through (a,u), (b,v)."""
    return u + (p - a) / (b - a) * (v - u)


def _b_pos(p: Tensor, beta: float) -> Tensor:
    # Appendix C: B_pos(p) = A_pos(1-p) = (p/(1-p))^beta, the reflected positive curve.
    return _a_pos(1.0 - p, beta)


def _b_neg(p: Tensor, beta: float) -> Tensor:
    # Appendix C: B_neg(p) = A_neg(1-p) = -((1-p)/p)^beta, the reflected negative curve.
    return _a_neg(1.0 - p, beta)


def _flipped_a_pos(p: Tensor, beta: float, group_size: Any) -> Tensor:
    """EntDecrease's positive channel (Appendix C): B_pos(p) for 0 < p <= (G-1)/G, else
    Lin(p; (G-1)/G, 1; B_pos((G-1)/G), V_pos_end) with
    V_pos_end = B_pos((G-1)/G) + [B_pos((G-1)/G) - B_pos((G-2)/G)]. Needs G >= 2."""
    g = torch.as_tensor(group_size, dtype=torch.float64)
    last = (g - 1.0) / g  # the last feasible grid point; p = 1 is the only one above it
    b_last = _b_pos(last, beta)
    v_end = b_last + (b_last - _b_pos((g - 2.0) / g, beta))
    # Outside the branch the reflected curve would be evaluated at p=1 (inf): clamp first.
    inner = _b_pos(torch.minimum(p, last), beta)
    return torch.where(p > last, _lin_interp(p, last, 1.0, b_last, v_end), inner)


def _flipped_a_neg(p: Tensor, beta: float, group_size: Any) -> Tensor:
    """EntIncrease's negative channel (Appendix C): B_neg(p) for 1/G <= p < 1, else
    Lin(p; 0, 1/G; V_neg_end, B_neg(1/G)) with
    V_neg_end = B_neg(1/G) - [B_neg(2/G) - B_neg(1/G)]. Needs G >= 2."""
    g = torch.as_tensor(group_size, dtype=torch.float64)
    first = 1.0 / g
    b_first = _b_neg(first, beta)
    v_end = b_first - (_b_neg(2.0 / g, beta) - b_first)
    inner = _b_neg(torch.maximum(p, first), beta)
    return torch.where(p < first, _lin_interp(p, 0.0, first, v_end, b_first), inner)


a_pos = _channel(_a_pos)
a_neg = _channel(_a_neg)
w_pos = _channel(_w_pos)
w_neg = _channel(_w_neg)
lin_interp = _channel(_lin_interp)
flipped_a_pos = _channel(_flipped_a_pos)
flipped_a_neg = _channel(_flipped_a_neg)


# ---------------------------------------------------------------------------
# Group statistics
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupStats:
    """Per-rollout view of each rollout's group. All tensors have shape [N]."""

    index: Tensor  # int64, the group's position in sorted unique ids (0..n_groups-1)
    size: Tensor  # float64, G of the rollout's group (groups may differ in size)
    mean: Tensor  # float64, the group's mean reward; the group accuracy p for binary rewards
    centered: Tensor  # float64, r - mean; exactly 0 in uniform groups (no rounding residue)
    std: Tensor  # float64, population std of the group's rewards
    uniform: Tensor  # bool, all rewards of the group are equal (zero std)
    n_groups: int


def group_stats(rewards: Tensor, group_ids: Tensor) -> GroupStats:
    """Statistics of each rollout's group.

    rewards: [N] float; group_ids: [N] int64, any ids, not necessarily sorted or contiguous.
    """
    r = rewards.to(torch.float64)
    index, inverse = torch.unique(group_ids.to(r.device), return_inverse=True)
    n = int(index.numel())

    def per_group(values: Tensor, reduce: str = "sum", init: float = 0.0) -> Tensor:
        out = torch.full((n,), init, dtype=torch.float64, device=r.device)
        return out.index_add_(0, inverse, values) if reduce == "sum" else out.scatter_reduce(0, inverse, values, reduce)

    counts = per_group(torch.ones_like(r))
    mean_g = per_group(r) / counts
    # Uniform groups via min == max: exact, whereas a computed std can be 1e-17 instead of 0
    # when the group mean rounds (e.g. three rewards of 0.1), which would blow up r/std.
    uniform_g = per_group(r, "amin", math.inf) == per_group(r, "amax", -math.inf)
    centered = torch.where(uniform_g[inverse], torch.zeros_like(r), r - mean_g[inverse])
    var_g = per_group(centered * centered) / counts
    return GroupStats(
        index=inverse,
        size=counts[inverse],
        mean=mean_g[inverse],
        centered=centered,
        std=var_g.sqrt()[inverse],
        uniform=uniform_g[inverse],
        n_groups=n,
    )


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

BetaMode = Literal["free", "fixed", "none"]
# fn(rewards float64 [N], stats, beta_pos, beta_neg, eps) -> float64 [N]
EstimatorFn = Callable[[Tensor, GroupStats, "float | None", "float | None", float], Tensor]
# channels(p float64 [...], G, beta_pos, beta_neg, eps) -> (a_pos [...], a_neg [...])
ChannelFn = Callable[[Tensor, Any, "float | None", "float | None", float], "tuple[Tensor, Tensor]"]


@dataclass(frozen=True)
class Estimator:
    """One advantage estimator of the registry.

    beta_mode: ``free`` takes beta_pos/beta_neg (defaults ``default_betas``); ``fixed`` has
    the betas ``default_betas`` and rejects others; ``none`` has no betas and ignores them.
    binary_only: rewards must be in {0, 1} (the beta family is defined on group accuracy).
    prop2_channels: which channels follow Eq. (5) unflipped, so Proposition 2's peaks apply.
    """

    name: str
    fn: EstimatorFn
    channels: ChannelFn
    summary: str
    equation: str
    beta_mode: BetaMode
    default_betas: tuple[float | None, float | None]
    binary_only: bool
    prop2_channels: tuple[bool, bool]

    def __call__(self, rewards: Tensor, group_ids: Tensor, *, beta_pos: float | None = None,
                 beta_neg: float | None = None, eps: float = 1e-6) -> Tensor:
        return compute_advantages(self.name, rewards, group_ids, beta_pos=beta_pos,
                                  beta_neg=beta_neg, eps=eps)


#: name -> Estimator (callable like ``compute_advantages`` with the name bound).
ESTIMATORS: dict[str, Estimator] = {}


def register_estimator(name: str, *, channels: ChannelFn, summary: str, equation: str,
                       beta_mode: BetaMode, default_betas: tuple[float | None, float | None],
                       binary_only: bool, prop2_channels: tuple[bool, bool] = (False, False),
                       ) -> Callable[[EstimatorFn], EstimatorFn]:
    """Decorator adding an estimator function to ``ESTIMATORS``; a taken name is an error."""

    def deco(fn: EstimatorFn) -> EstimatorFn:
        if name in ESTIMATORS:
            raise ValueError(f"estimator '{name}' is already registered")
        ESTIMATORS[name] = Estimator(name, fn, channels, summary, equation, beta_mode,
                                     default_betas, binary_only, prop2_channels)
        return fn

    return deco


def estimator_names() -> list[str]:
    return list(ESTIMATORS)


def get_estimator(name: str) -> Estimator:
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator '{name}'; known estimators: {', '.join(ESTIMATORS)}") from None


def _given(beta: float | None) -> bool:
    # None and NaN both mean "not given" (the config writes NaN for Dr.GRPO's betas).
    return beta is not None and not (isinstance(beta, float) and math.isnan(beta))


def resolve_betas(name: str, beta_pos: float | None = None,
                  beta_neg: float | None = None) -> tuple[float | None, float | None]:
    """The (beta_pos, beta_neg) an estimator runs with. Raises ValueError naming the problem.

    free: None -> the estimator's default; a given beta must be finite and >= 0.
    fixed: None/NaN or the fixed value -> the fixed value; another value is an error (it
    would silently not be used). none: (None, None), whatever was given.
    """
    est = get_estimator(name)
    if est.beta_mode == "none":
        return None, None
    out: list[float | None] = []
    for key, given, default in (("beta_pos", beta_pos, est.default_betas[0]),
                                ("beta_neg", beta_neg, est.default_betas[1])):
        if est.beta_mode == "fixed":
            if _given(given) and float(given) != default:  # type: ignore[arg-type]
                raise ValueError(f"estimator '{name}' fixes {key}={default:g}, got {given}; "
                                 f"use 'asym' for other betas")
            out.append(default)
            continue
        if given is None:
            out.append(default)
            continue
        if isinstance(given, bool) or not isinstance(given, (int, float)):
            raise ValueError(f"{key} must be a number >= 0, got {given!r}")
        if not math.isfinite(float(given)) or given < 0:
            raise ValueError(f"{key} must be a finite number >= 0, got {given}")
        out.append(float(given))
    return out[0], out[1]


def compute_advantages(name: str, rewards: Tensor, group_ids: Tensor, *,
                       beta_pos: float | None = None, beta_neg: float | None = None,
                       eps: float = 1e-6) -> Tensor:
    """One advantage per rollout.

    name: a key of ``ESTIMATORS``.
    rewards: [N] verifiable rewards (bool/int/float); {0, 1} for the beta family.
    group_ids: [N] int64 prompt-group id of each rollout; groups may differ in size and
        ids need not be sorted or contiguous.
    beta_pos, beta_neg: see :func:`resolve_betas` (None = the estimator's own).
    eps: only ``grpo_unbiased`` uses it (std + eps, as verl/TRL do).
    Returns: [N] advantages, float dtype of ``rewards`` (the default float dtype for
    integer/bool rewards). Broadcast to tokens by the caller.
    """
    est = get_estimator(name)
    bp, bn = resolve_betas(name, beta_pos, beta_neg)
    if rewards.dim() != 1 or group_ids.shape != rewards.shape:
        raise ValueError(f"rewards and group_ids must both have shape [N], got "
                         f"{tuple(rewards.shape)} and {tuple(group_ids.shape)}")
    if group_ids.dtype != torch.int64:
        raise ValueError(f"group_ids must be int64, got {group_ids.dtype}")
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.get_default_dtype()
    if rewards.numel() == 0:
        return torch.zeros(0, dtype=out_dtype, device=rewards.device)
    r = rewards.detach().to(torch.float64)
    if not torch.isfinite(r).all():
        bad = int(torch.nonzero(~torch.isfinite(r))[0])
        raise ValueError(f"reward at index {bad} is not finite: {float(r[bad])}")
    if est.binary_only:
        nonbin = (r != 0) & (r != 1)
        if nonbin.any():
            bad = int(torch.nonzero(nonbin)[0])
            raise ValueError(f"estimator '{name}' needs binary rewards in {{0, 1}}; "
                             f"got {float(r[bad]):g} at index {bad}")
    stats = group_stats(r, group_ids)
    # + 0.0 turns -0.0 (from -(0^beta)) into 0.0, so printed advantages read 0.
    return (est.fn(r, stats, bp, bn, eps) + 0.0).to(out_dtype)


def closed_form_channels(name: str, p: Any, group_size: int, beta_pos: float | None = None,
                         beta_neg: float | None = None, eps: float = 1e-6) -> tuple[Any, Any]:
    """(a_pos(p), a_neg(p)) of an estimator as functions of the group accuracy p, for any p
    in [0, 1] (between grid points too: what Figure 1 plots). Same kind as ``p``.

    At p = 0 a_pos and at p = 1 a_neg are the formula's value although no rollout gets it.
    Tested to equal :func:`channel_values` on the grid p = k/G.
    """
    est = get_estimator(name)
    bp, bn = resolve_betas(name, beta_pos, beta_neg)
    t, kind = _as_tensor(p)
    pos, neg = est.channels(t, group_size, bp, bn, eps)
    return _back(pos, kind, p), _back(neg, kind, p)


def channel_values(name: str, group_size: int, beta_pos: float | None = None,
                   beta_neg: float | None = None, eps: float = 1e-6,
                   ) -> list[tuple[int, float, float | None, float | None]]:
    """(k, p, a_pos, a_neg) for p = k/G, k = 0..G, read off :func:`compute_advantages`
    on synthetic groups of k ones and G-k zeros (one source of truth). A channel with no
    rollouts at that p (a_pos at k=0, a_neg at k=G) is None."""
    g = int(group_size)
    if g < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    rewards = torch.tensor([1.0 if i < k else 0.0 for k in range(g + 1) for i in range(g)],
                           dtype=torch.float64)
    ids = torch.arange(g + 1, dtype=torch.int64).repeat_interleave(g)
    adv = compute_advantages(name, rewards, ids, beta_pos=beta_pos, beta_neg=beta_neg, eps=eps)
    rows = []
    for k in range(g + 1):
        block = adv[k * g:(k + 1) * g]
        pos = float(block[0]) + 0.0 if k > 0 else None
        neg = float(block[-1]) + 0.0 if k < g else None
        rows.append((k, k / g, pos, neg))
    return rows


# ---------------------------------------------------------------------------
# The estimators
# ---------------------------------------------------------------------------


def _beta_family(pos: Callable[[Tensor, float, Tensor], Tensor],
                 neg: Callable[[Tensor, float, Tensor], Tensor]) -> tuple[EstimatorFn, ChannelFn]:
    """Estimator + closed form from two channel functions (p, beta, G) -> advantage."""

    def fn(r: Tensor, s: GroupStats, bp: float | None, bn: float | None, eps: float) -> Tensor:
        # Both channels are evaluated everywhere (the unused one may be inf), then selected.
        return torch.where(r == 1, pos(s.mean, bp, s.size), neg(s.mean, bn, s.size))  # type: ignore[arg-type]

    def channels(p: Tensor, g: Any, bp: float | None, bn: float | None, eps: float) -> tuple[Tensor, Tensor]:
        gt = torch.as_tensor(float(g), dtype=torch.float64)
        return pos(p, bp, gt), neg(p, bn, gt)  # type: ignore[arg-type]

    return fn, channels


def _plain_pos(p: Tensor, beta: float, g: Tensor) -> Tensor:
    return _a_pos(p, beta)


def _plain_neg(p: Tensor, beta: float, g: Tensor) -> Tensor:
    return _a_neg(p, beta)


def _register_beta(name: str, pos: Any, neg: Any, **kw: Any) -> None:
    fn, channels = _beta_family(pos, neg)
    register_estimator(name, channels=channels, binary_only=True, **kw)(fn)


_register_beta("asym", _plain_pos, _plain_neg,
               summary="AsymGRPO: ((1-p)/p)^beta_pos for correct, -(p/(1-p))^beta_neg for failed",
               equation="8", beta_mode="free", default_betas=(0.9, 0.4), prop2_channels=(True, True))
_register_beta("reinforce", _plain_pos, _plain_neg,
               summary="REINFORCE with baseline 0.5: 2r - 1 = asym(0, 0)",
               equation="2", beta_mode="fixed", default_betas=(0.0, 0.0), prop2_channels=(True, True))


def _check_min_size(name: str, s: GroupStats) -> None:
    if bool((s.size < 2).any()):
        raise ValueError(f"estimator '{name}' needs groups of at least 2 rollouts "
                         f"(Appendix C extrapolates from two grid points); got a group of 1")


def _ent_decrease(r: Tensor, s: GroupStats, bp: float | None, bn: float | None, eps: float) -> Tensor:
    _check_min_size("ent_decrease", s)
    return torch.where(r == 1, _flipped_a_pos(s.mean, bp, s.size), _a_neg(s.mean, bn))  # type: ignore[arg-type]


def _ent_decrease_channels(p: Tensor, g: Any, bp: float | None, bn: float | None, eps: float) -> tuple[Tensor, Tensor]:
    return _flipped_a_pos(p, bp, g), _a_neg(p, bn)  # type: ignore[arg-type]


def _ent_increase(r: Tensor, s: GroupStats, bp: float | None, bn: float | None, eps: float) -> Tensor:
    _check_min_size("ent_increase", s)
    return torch.where(r == 1, _a_pos(s.mean, bp), _flipped_a_neg(s.mean, bn, s.size))  # type: ignore[arg-type]


def _ent_increase_channels(p: Tensor, g: Any, bp: float | None, bn: float | None, eps: float) -> tuple[Tensor, Tensor]:
    return _a_pos(p, bp), _flipped_a_neg(p, bn, g)  # type: ignore[arg-type]


def _grpo_channels(p: Tensor, g: Any, bp: float | None, bn: float | None, eps: float) -> tuple[Tensor, Tensor]:
    # Eq. (4); at p in {0, 1} both give 0^0.5 = 0, matching the zero-std convention.
    return _a_pos(p, 0.5), _a_neg(p, 0.5)


@register_estimator("grpo", channels=_grpo_channels, binary_only=False, beta_mode="fixed",
                    default_betas=(0.5, 0.5), equation="3",
                    summary="GRPO: (r - mean) / std_pop per group; zero-std groups get 0",
                    prop2_channels=(True, True))
def _grpo(r: Tensor, s: GroupStats, bp: float | None, bn: float | None, eps: float) -> Tensor:
    # Population std, as in Eq. (3)-(4) (std = sqrt(p(1-p))), so grpo == asym(0.5, 0.5).
    # A zero-std group has no contrast: 0 rather than 0/eps noise.
    return torch.where(s.uniform, torch.zeros_like(r), s.centered / torch.where(s.uniform, 1.0, s.std))


def _grpo_unbiased_channels(p: Tensor, g: Any, bp: float | None, bn: float | None, eps: float) -> tuple[Tensor, Tensor]:
    gt = torch.as_tensor(float(g), dtype=torch.float64)
    std_b = torch.sqrt(p * (1.0 - p) * gt / (gt - 1.0))
    return (1.0 - p) / (std_b + eps), -p / (std_b + eps)


@register_estimator("grpo_unbiased", channels=_grpo_unbiased_channels, binary_only=False,
                    beta_mode="none", default_betas=(None, None), equation="3 (Bessel std)",
                    summary="verl/TRL/OpenRLHF GRPO: (r - mean) / (std_bessel + eps) = "
                            "sqrt((G-1)/G) x grpo up to eps")
def _grpo_unbiased(r: Tensor, s: GroupStats, bp: float | None, bn: float | None, eps: float) -> Tensor:
    # torch.std's default (Bessel, divide by G-1), which is what verl/TRL/OpenRLHF use.
    # A group of one has no Bessel std; its centered reward is 0, so its advantage is 0.
    bessel = torch.where(s.size > 1, s.size / (s.size - 1.0).clamp(min=1.0), 1.0)
    return s.centered / (s.std * bessel.sqrt() + eps)


def _dr_grpo_channels(p: Tensor, g: Any, bp: float | None, bn: float | None, eps: float) -> tuple[Tensor, Tensor]:
    return 1.0 - p, -p


@register_estimator("dr_grpo", channels=_dr_grpo_channels, binary_only=False, beta_mode="none",
                    default_betas=(None, None), equation="- (Liu et al. 2025)",
                    summary="Dr.GRPO: r - mean, no std division (pair with seq-mean-token-sum-norm)")
def _dr_grpo(r: Tensor, s: GroupStats, bp: float | None, bn: float | None, eps: float) -> Tensor:
    return s.centered


_register_beta("pos_only", _plain_pos, _plain_neg,
               summary="Pos-Only modulation: asym(0.5, 0)", equation="5 (Sec. 3.1)",
               beta_mode="fixed", default_betas=(0.5, 0.0), prop2_channels=(True, True))
_register_beta("neg_only", _plain_pos, _plain_neg,
               summary="Neg-Only modulation: asym(0, 0.5)", equation="5 (Sec. 3.1)",
               beta_mode="fixed", default_betas=(0.0, 0.5), prop2_channels=(True, True))
register_estimator("ent_decrease", channels=_ent_decrease_channels, binary_only=True,
                   beta_mode="free", default_betas=(0.5, 0.5), equation="Sec. 3.2, App. C",
                   summary="EntDecrease: positive channel reflected A~_pos(p) = A_pos(1-p), "
                           "negative unchanged", prop2_channels=(False, True))(_ent_decrease)
register_estimator("ent_increase", channels=_ent_increase_channels, binary_only=True,
                   beta_mode="free", default_betas=(0.5, 0.5), equation="Sec. 3.2, App. C",
                   summary="EntIncrease: negative channel reflected A~_neg(p) = A_neg(1-p), "
                           "positive unchanged", prop2_channels=(True, False))(_ent_increase)
