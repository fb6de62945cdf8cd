"""The paper's methods and the names of runs.

A run is (method, beta_pos, beta_neg, seed). ``METHODS`` maps each named method of the paper
to the training-config fields it sets (``asymcli.config.resolve_run`` applies one to a
config); ``run_id`` names a run's folder and ``parse_run_id`` inverts it. Apart from the
config's dataclasses so that adding a method touches one short file; ``asymcli.config``
re-exports every name here.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import ConfigError

#: Each named method = the train-config fields it sets. ``asym`` takes its betas from the run.
METHODS: dict[str, dict[str, Any]] = {
    "reinforce": {"estimator": "reinforce", "beta_pos": 0.0, "beta_neg": 0.0},  # Eq. (2)
    "reinforce_ent": {"estimator": "reinforce", "beta_pos": 0.0, "beta_neg": 0.0, "entropy_coef": 0.002},  # Sec 3.1
    "grpo": {"estimator": "grpo", "beta_pos": 0.5, "beta_neg": 0.5},  # Eq. (3)
    "grpo_ent": {"estimator": "grpo", "beta_pos": 0.5, "beta_neg": 0.5, "entropy_coef": 0.001},  # Table 2
    "clip_higher": {"estimator": "grpo", "beta_pos": 0.5, "beta_neg": 0.5, "clip_eps_high": 0.28},  # DAPO
    "dr_grpo": {"estimator": "dr_grpo", "beta_pos": float("nan"), "beta_neg": float("nan"),
                "loss_agg": "seq-mean-token-sum-norm"},  # Liu et al. 2025
    "pos_only": {"estimator": "pos_only", "beta_pos": 0.5, "beta_neg": 0.0},  # Sec 3.1
    "neg_only": {"estimator": "neg_only", "beta_pos": 0.0, "beta_neg": 0.5},  # Sec 3.1
    "ent_decrease": {"estimator": "ent_decrease", "beta_pos": 0.5, "beta_neg": 0.5},  # Sec 3.2, App. C
    "ent_increase": {"estimator": "ent_increase", "beta_pos": 0.5, "beta_neg": 0.5},  # Sec 3.2, App. C
    "asym": {"estimator": "asym"},  # Eq. (8); betas from the run
    # Eq. (8) with betas set every step from entropy, kappa_B and the accuracy histogram
    # (asymcli/algorithm/schedule.py); starts at GRPO's (0.5, 0.5)
    "asym_adaptive": {"estimator": "asym", "beta_pos": 0.5, "beta_neg": 0.5, "beta_schedule": "entropy"},
}

#: Display names, in the row order of the paper's Table 2.
METHOD_LABELS: dict[str, str] = {
    "base": "Base model",
    "reinforce": "REINFORCE",
    "reinforce_ent": "REINFORCE w/ Entro. Reg.",
    "grpo": "GRPO",
    "grpo_ent": "GRPO w/ Entro. Regularization",
    "clip_higher": "GRPO w/ Clip-higher",
    "dr_grpo": "Dr.GRPO",
    "pos_only": "Pos-Only Modulation",
    "neg_only": "Neg-Only Modulation",
    "ent_decrease": "EntDecrease",
    "ent_increase": "EntIncrease",
    "asym": "AsymGRPO",
    "asym_adaptive": "AsymGRPO-Adaptive",
}


def check_method(name: str) -> str:
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}'; known methods: {', '.join(METHODS)}")
    return name


def check_beta(value: Any, what: str) -> float:
    """A beta must be a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{what} must be a number >= 0, got {value!r}") from None
    value = float(value)
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ConfigError(f"{what} must be a finite number >= 0, got {value}")
    return value


def is_target(value: Any) -> bool:
    """Whether ``value`` can be an asym_adaptive entropy target: a finite number > 0."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def fmt_beta(x: float) -> str:
    """Short stable text for a beta in names: 0.9 -> '0.9', 1.0 -> '1'."""
    return f"{x:g}"


def run_id(method: str, beta_pos: float | None, beta_neg: float | None, seed: int) -> str:
    """Folder name of a run: ``asym_bp0.9_bn0.4_s0`` for AsymGRPO, ``grpo_s0`` otherwise.

    ``asym_adaptive`` with a target of its own (``grid.adaptive_targets``) carries it in the
    second field and its id, ``asym_adaptive_t0.9_s0``: runs of two targets are two groups
    of one results folder, paired by seed like any other method (issue 28)."""
    if method == "asym":
        return f"asym_bp{fmt_beta(beta_pos)}_bn{fmt_beta(beta_neg)}_s{seed}"
    if method == "asym_adaptive" and beta_pos is not None:
        return f"asym_adaptive_t{fmt_beta(beta_pos)}_s{seed}"
    return f"{method}_s{seed}"


def is_base_run(rid: str) -> bool:
    """Whether ``rid`` names a base model's evaluation: ``base``, or ``base_b{k}`` (grid.bases)."""
    return rid == "base" or re.fullmatch(r"base_b[0-9]+", rid) is not None


def parse_run_id(rid: str) -> tuple[str, float | None, float | None, int]:
    """Inverse of :func:`run_id`."""
    try:
        head, seed_s = rid.rsplit("_s", 1)
        seed = int(seed_s)
        if head.startswith("asym_bp"):
            bp_s, bn_s = head[len("asym_bp"):].split("_bn")
            return "asym", float(bp_s), float(bn_s), seed
        if head.startswith("asym_adaptive_t"):  # (method, target, None, seed): see run_id
            target = float(head[len("asym_adaptive_t"):])
            if not is_target(target):
                raise ValueError(head)
            return "asym_adaptive", target, None, seed
        check_method(head)
        return head, None, None, seed
    except (ValueError, ConfigError):
        raise ConfigError(f"'{rid}' is not a run id (expected e.g. asym_bp0.9_bn0.4_s0, asym_adaptive_t0.9_s0 or grpo_s0)") from None


def parse_run_ids(text: str) -> list[str]:
    """The run ids of a ``--runs a,b,...`` option (train and eval bundles), each checked by
    :func:`parse_run_id` (a ConfigError naming the bad id), so a typo fails before any work."""
    ids = [r.strip() for r in text.split(",") if r.strip()]
    if not ids:
        raise ConfigError("--runs is empty: give comma-separated run ids, e.g. grpo_s0,reinforce_s0")
    for rid in ids:
        parse_run_id(rid)
    return ids
