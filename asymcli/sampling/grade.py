"""Decode-and-grade: the one path from rollouts to verdicts (rewards, greedy curve, evaluation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .models import decode_responses


def decode_and_grade(tokenizer: Any, grader: Any, rollouts: Sequence[Any],
                     answers: Sequence[str]) -> tuple[list[str], list[Any]]:
    """``(texts, verdicts)`` of ``rollouts``: each decoded (special tokens dropped) and graded
    against ``answers[rollout.prompt_index]`` by ``grader.grade_many``."""
    texts = decode_responses(tokenizer, [r.token_ids for r in rollouts])
    verdicts = grader.grade_many(texts, [answers[r.prompt_index] for r in rollouts])
    return texts, verdicts
