"""What every part of the grader shares: the verdict and its reasons, the size limits, the option checks."""

from __future__ import annotations

from dataclasses import dataclass


REASONS = ("correct", "wrong", "no_answer", "unparsable", "timeout")
#: How several boxes in one response are read: "set" (math-verify, lighteval: the final
#: run of joined boxes is one answer set) or "last" (verl: only the last box counts).
MULTI_BOX_MODES = ("set", "last")

# --- size guards (documented in the module docstring) -------------------------------------
MAX_ANSWER_CHARS = 1000  # longer extracted answers are unparsable (MATH answers are short)
MAX_NESTING = 50  # deeper {[( nesting is unparsable
MAX_BOX_CANDIDATES = 100  # how many \boxed occurrences we look back through (empty/malformed ones)
# An answer set of more boxes is unparsable. Below MAX_BOX_CANDIDATES, so that a run cut
# short by the scan budget is never read as a whole set; the joined set also stays under
# MAX_ANSWER_CHARS, and sympy compares a 50-element set with another in about 0.1 s.
MAX_SET_BOXES = 50
FALLBACK_TAIL_CHARS = 4000  # the "Answer: X" fallback looks only at the end of a response
MAX_DIGITS = 10_000  # a number (literal, power, tower) with more decimal digits is unparsable
MAX_FACTORIAL = 5_000  # n! with a literal n above this is unparsable
MAX_POWERS = 100  # more "^" than this in one answer is unparsable


def _check_multi_box(multi_box: str) -> str:
    if multi_box not in MULTI_BOX_MODES:
        raise ValueError(f"multi_box must be one of {', '.join(MULTI_BOX_MODES)}, got {multi_box!r}")
    return multi_box


@dataclass(frozen=True)
class Verdict:
    """The grade of one response: ``correct`` is the reward; ``reason`` one of REASONS."""

    correct: bool
    reason: str
    extracted: str | None


def _check_rel_tol(rel_tol: float | None) -> float | None:
    if rel_tol is None:
        return None
    if isinstance(rel_tol, bool) or not isinstance(rel_tol, (int, float)) or not 0 < rel_tol < 1:
        raise ValueError(f"rel_tol must be None or a number in (0, 1), got {rel_tol!r}")
    return float(rel_tol)
