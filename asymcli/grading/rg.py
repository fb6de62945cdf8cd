"""The reward of a reasoning-gym row: the generator's own ``score_answer``, made binary.

A PROMPTS row from a reasoning-gym generator (``source`` = ``rg/<name>`` with its entry's
``metadata`` as JSON; asymcli/rg_tasks.py) is graded by that generator, not by the math
grader:

1. the final answer is extracted as for every response (:func:`extract_answer`: the final
   boxes, or an answer line);
2. ``score = dataset.score_answer(extracted, entry)``, the entry rebuilt from the row;
3. ``correct = score >= threshold`` (``grading.rg_threshold``, default 1.0). reasoning-gym's
   scores are partial: the default scorer gives ``len(oracle) / len(answer)`` to an answer
   that contains the oracle, and several generators give 0.01-0.1 to a well-formed wrong
   answer. The paper's estimators need a binary reward, so a partial score below the
   threshold is a failure; at 1.0 only an answer the generator counts fully right is a success.

Beside it, where the gold answer is a plain number (integer, decimal or fraction), the math
grader (:func:`grade`) decides the same pair and :class:`RGScorer` counts where the two
disagree (``disagreements``; docs/grading.md reports them on a sample). The math grader never
changes the reward of a reasoning-gym row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .extract import extract_answer
from .verdict import Verdict
from .verify import grade

#: A gold answer the math grader can decide: an integer, a decimal or a fraction.
NUMERIC = re.compile(r"^-?\d+(\.\d+)?(/\d+)?$")
SOURCE_PREFIX = "rg/"


def generator_of(row: Mapping[str, Any]) -> str | None:
    """The generator's name of a reasoning-gym row, None for any other row."""
    source = row.get("source") or ""
    return source[len(SOURCE_PREFIX):] if source.startswith(SOURCE_PREFIX) and row.get("metadata") else None


class RGScorer:
    """Scores reasoning-gym rows with their generators' ``score_answer`` (module doc)."""

    def __init__(self, threshold: float = 1.0, multi_box: str = "set"):
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        self.threshold = threshold
        self.multi_box = multi_box
        self._scorers: dict[str, Any] = {}
        self.checked = 0  # pairs the math grader also decided (numeric golds)
        self.disagreements: list[dict[str, Any]] = []  # those where the two verdicts differ

    def scorer(self, name: str) -> Any:
        if name not in self._scorers:
            import reasoning_gym

            self._scorers[name] = reasoning_gym.get_score_answer_fn(name)
        return self._scorers[name]

    def score(self, response: str, row: Mapping[str, Any]) -> tuple[float, Verdict]:
        """(the generator's score, the binary verdict) of one response to one row."""
        name = generator_of(row)
        if name is None:
            raise ValueError(f"row {row.get('problem_id')!r} is not a reasoning-gym row")
        extracted = extract_answer(response, self.multi_box)
        if extracted is None:
            return 0.0, Verdict(False, "no_answer", None)
        entry = {"question": row["prompt"], "answer": row["answer"], "metadata": json.loads(row["metadata"])}
        try:
            score = float(self.scorer(name)(extracted, entry))
        except Exception:  # a generator's scorer that chokes on a malformed answer: no credit
            score = 0.0
        ok = score >= self.threshold
        verdict = Verdict(ok, "correct" if ok else "wrong", extracted)
        if NUMERIC.match(row["answer"].strip()):
            self.checked += 1
            math_ok = grade(response, row["answer"], multi_box=self.multi_box).correct
            if math_ok != ok:
                self.disagreements.append({"generator": name, "gold": row["answer"], "extracted": extracted,
                                           "score": score, "rg": ok, "math": math_ok})
        return score, verdict

    def grade_rows(self, responses: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[Verdict]:
        return [self.score(r, row)[1] for r, row in zip(responses, rows)]
