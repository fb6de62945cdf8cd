"""Decode-and-grade: the one path from rollouts to verdicts (rewards, greedy curve, evaluation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .models import decode_responses


def make_grader(grading: Any) -> Any:
    """The grader of a config's ``grading`` section (``multi_box``, ``rel_tol``, ``rg_threshold``), in this process:
    the one way the trainer, the evaluation and the base stage build theirs. ``Grader`` is looked
    up when called, so a test's stand-in set on ``asymcli.grading.Grader`` takes its place."""
    from .. import grading as grading_mod

    return grading_mod.Grader(multi_box=grading.multi_box, rel_tol=grading.rel_tol,
                              rg_threshold=grading.rg_threshold)


def decode_and_grade(tokenizer: Any, grader: Any, rollouts: Sequence[Any],
                     rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[Any]]:
    """``(texts, verdicts)`` of ``rollouts``: each decoded (special tokens dropped) and graded
    against its PROMPTS row ``rows[rollout.prompt_index]`` by :func:`asymcli.grading.grade_rows`
    (the row's ``answer``; a reasoning-gym row by its generator's ``score_answer``)."""
    from ..grading import grade_rows  # lazy: math-verify

    texts = decode_responses(tokenizer, [r.token_ids for r in rollouts])
    verdicts = grade_rows(grader, texts, [rows[r.prompt_index] for r in rollouts])
    return texts, verdicts
