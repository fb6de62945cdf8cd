"""The problem sets of the trainer's greedy test-accuracy curve (built by
:func:`asymcli.evaluation.evaluate.curve_sets` from the eval benchmarks, or by the trainer from
the held-out split)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


def spread_rows(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` rows evenly spaced over ``rows``, in order.

    Held-out rows come grouped by tier; the first ``n`` would measure the easy tiers only.
    """
    if n >= len(rows):
        return rows
    idx = sorted(set(np.linspace(0, len(rows) - 1, n).round().astype(int).tolist()))
    return [rows[i] for i in idx]


@dataclasses.dataclass
class CurveSet:
    """One benchmark of the trainer's greedy test-accuracy curve (Appendix G: T = 0 every
    ``train.eval_every`` steps). ``rows`` are PROMPTS rows (``prompt``, ``answer``)."""

    name: str
    rows: list[dict[str, Any]]
    max_new_tokens: int
