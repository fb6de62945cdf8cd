"""The pure algorithm library: advantage estimators, the PPO-style objective, diagnostics.

Imports only torch, numpy and the standard library, so the trainer, the report and the
tests can all use it without a model.
"""

from .advantages import (
    ESTIMATORS,
    Estimator,
    a_neg,
    a_pos,
    channel_values,
    closed_form_channels,
    compute_advantages,
    estimator_names,
    flipped_a_neg,
    flipped_a_pos,
    get_estimator,
    lin_interp,
    resolve_betas,
    w_neg,
    w_pos,
)
from .objective import LOSS_AGG_MODES, aggregate, policy_loss

__all__ = [
    "ESTIMATORS",
    "Estimator",
    "LOSS_AGG_MODES",
    "a_neg",
    "a_pos",
    "aggregate",
    "channel_values",
    "closed_form_channels",
    "compute_advantages",
    "estimator_names",
    "flipped_a_neg",
    "flipped_a_pos",
    "get_estimator",
    "lin_interp",
    "policy_loss",
    "resolve_betas",
    "w_neg",
    "w_pos",
]
