"""Decode-and-grade: the one path from rollouts to verdicts (rewards, greedy curve, evaluation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .models import decode_responses


def make_grader(grading: Any) -> Any:
    """The grader of a config's ``grading`` section (``multi_box``, ``rel_tol``), in this process:
    the one way the trainer, the evaluation and the base stage build theirs. ``Grader`` is looked
    up when called, so a test's stand-in set on ``asymcli.grading.Grader`` takes its place."""
    from .. import grading as grading_mod

    return grading_mod.Grader(multi_box=grading.multi_box, rel_tol=grading.rel_tol)


def decode_and_grade(tokenizer: Any, grader: Any, rollouts: Sequence[Any],
                     answers: Sequence[str]) -> tuple[list[str], list[Any]]:
    """``(texts, verdicts)`` of ``rollouts``: each decoded (special tokens dropped) and graded
    against ``answers[rollout.prompt_index]`` by ``grader.grade_many``."""
    texts = decode_responses(tokenizer, [r.token_ids for r in rollouts])
    verdicts = grader.grade_many(texts, [answers[r.prompt_index] for r in rollouts])
    return texts, verdicts
