"""verl custom reward function: asym's grader as the 0/1 outcome reward.

``reward.custom_reward_function.path=examples/verl/reward.py`` (verl's default name,
``compute_score``). The grader reads the response's final ``\\boxed{}`` answer and judges it with
math-verify plus the guards documented in docs/grading.md: the same reward an ``asym`` run gets,
for any data source (verl's MATH parquet, the tiny arithmetic task of prepare_tiny_data.py).
"""

from __future__ import annotations

from typing import Any

from asymcli.grading import grade


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None,
                  **kwargs: Any) -> float:
    """1.0 when the response's final answer equals ``ground_truth``, else 0.0."""
    return float(grade(solution_str, str(ground_truth)).correct)
