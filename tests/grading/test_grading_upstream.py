"""The grader against math-verify's and lighteval's own test tables.

tests/data/grader_upstream_cases.jsonl holds every (gold, prediction, expected verdict) entry of
those suites' parametrised tables that grades a math answer, one row per entry, cited by
repository, file and line (``source``; ``also`` when lighteval repeats a math-verify entry), with
the options the upstream test passes. bench/collect_grader_cases.py rebuilds the file from the
two repositories; bench/grader_agreement.py reports the agreement figure (docs/grading.md).

Each row is one test case: our verdict must equal the suite's, except for the departures listed
below, each with its reason, where it must differ (so a departure that disappears is noticed).
Rows whose prediction is free prose without a box or an answer line (``form: free_text``) are
never accepted: the grader reads no number out of prose, by design.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from asymcli.grading import grade

CASES_FILE = Path(__file__).resolve().parents[1] / "data" / "grader_upstream_cases.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]

_DECIMAL_COMMA = "a comma in a boxed answer separates items; decimal commas are not read (MATH writes decimal points)"
_PRECISION = "the upstream test passes precision=2; the grader compares at math-verify's default precision"

#: source -> why our verdict differs from the suite's on purpose.
DEPARTURES = {
    "huggingface/Math-Verify tests/test_all.py:70": _DECIMAL_COMMA,  # 1000.99 vs \boxed{1000,99}
    "huggingface/Math-Verify tests/test_all.py:71": _DECIMAL_COMMA,  # gold 1,22 vs \boxed{1.22}
    "huggingface/Math-Verify tests/test_all.py:586": _PRECISION,  # pmatrix 1/3 vs 0.33
    "huggingface/Math-Verify tests/test_all.py:605": _PRECISION,  # (3/5, 8/3] vs (0.6, 2.6667]
    "huggingface/Math-Verify tests/test_numina_cases.py:121":
        "the gold's box is never closed, and W(n) is not W(x)",
    "huggingface/Math-Verify tests/test_open_thoughts.py:134":
        "labels outside the boxes ('y_1 = \\boxed{...}') are not read, so the two boxes cannot match a labelled gold",
    "huggingface/Math-Verify tests/test_yujianll.py:28":
        "the suite expects 1 - 1/e to equal 1 + 1/e; that is a false accept, refused",
    "huggingface/lighteval tests/unit/metrics/test_extractive_match.py:1105":
        "pairs split by ';' against pairs joined by \\text{and}: math-verify's defaults reject it too",
}


def test_every_departure_names_a_collected_case() -> None:
    sources = {c["source"] for c in CASES}
    assert set(DEPARTURES) <= sources
    assert len(CASES) >= 150


@pytest.fixture(autouse=True, scope="module")
def _quiet_and_warm_math_verify():
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    # The first math-verify call loads its parser and sympy: not inside a case's time budget.
    grade(r"\boxed{x^2+2x+1}", "(x+1)^2", timeout_s=120)
    yield


@pytest.mark.parametrize("case", CASES, ids=[c["source"].split(" ", 1)[1] for c in CASES])
def test_upstream_case(case: dict) -> None:
    verdict = grade(case["response"], case["gold"], timeout_s=30)  # verdicts, not time bounds, are tested here
    expected = bool(case["expected"])
    if case["form"] == "free_text":
        assert not verdict.correct, verdict
    elif case["source"] in DEPARTURES:
        assert verdict.correct != expected, (DEPARTURES[case["source"]], verdict)
    else:
        assert verdict.correct == expected, (case["source"], verdict)
