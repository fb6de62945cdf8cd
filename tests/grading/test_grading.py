"""The grader: extraction, equivalence, math-verify pitfalls, time bounds, batching, CLI."""

from __future__ import annotations

import json
import threading
import time

import pytest

from asymcli import grading
from asymcli.grading import Grader, Verdict, extract_answer, grade, last_boxed



@pytest.fixture(autouse=True, scope="module")
def _warm_math_verify() -> None:
    # The first math-verify call loads its parser and sympy (seconds on a loaded machine);
    # done once here so that no test's per-answer time budget pays for it.
    grade(r"\boxed{x^2+2x+1}", "(x+1)^2", timeout_s=120)


# ---------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so the answer is \boxed{42}.", "42"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\frac{\sqrt{3}}{2}} done", r"\frac{\sqrt{3}}{2}"),  # nested braces
        (r"\boxed{3} then \boxed{5}", "5"),  # the last box wins
        (r"\boxed{3} and \boxed{5}", "3, 5"),  # ... or the joined boxes are one set
        (r"\fbox{7}", "7"),
        (r"$\boxed 9$", "9"),  # space form
        (r"\boxed {12}", "12"),
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),  # escaped braces do not count
        (r"\boxed{5} and an empty \boxed{}", "5"),  # empty boxes are skipped
        ("Some reasoning.\nThe final answer is $\\frac{3}{4}$.", r"\frac{3}{4}"),
        ("Work...\nThe answer is 17.", "17"),
        ("Work...\n**Answer:** 12", "12"),
        ("Answer: 3\nwait, redo\nAnswer: 4", "4"),  # the last such line
        ("So the answer is Monday.", "Monday"),  # a word is an answer, a sentence is not
        ("Answer: \\text{(C)}", "\\text{(C)}"),
        ("Answer: there are 7 of them.", "7"),  # in a sentence: its first number
        ("Answer: the area is $12\\sqrt{3}$ square units", "12\\sqrt{3}"),  # or its math
        ("The answer is $3$ and $4$.", "3, 4"),  # joined math spans: a set
        ("no answer at all", None),
        ("", None),
        (r"\boxed{\frac{1}{2}", None),  # unclosed last box: unreadable
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_last_boxed_has_no_fallback() -> None:
    assert last_boxed("The answer is 5") is None
    assert last_boxed(r"so $x = \boxed{\dfrac{1}{2}}$") == r"\dfrac{1}{2}"


def test_extraction_is_bounded_on_huge_inputs() -> None:
    huge = "x" * 1_000_000
    t0 = time.perf_counter()
    assert extract_answer(huge + r"\boxed{5}") == "5"
    assert extract_answer(huge) is None
    assert extract_answer(r"\boxed{" + huge + "}") is None  # box longer than the cap
    assert extract_answer(r"\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}") is None
    assert extract_answer((r"$\boxed{1}" + huge + "$ ") * 3) == "1"  # one environment, far apart: no set
    assert extract_answer(r"\boxed{1}, " * 5000) is None  # a set of more than MAX_SET_BOXES boxes
    assert extract_answer(r"\boxed{1}, " * 5000, "last") == "1"
    assert time.perf_counter() - t0 < 3.0


# ---------------------------------------------------------------------------
# Equivalence
# ---------------------------------------------------------------------------


def box(x: str) -> str:
    return f"Let me think step by step. ... Therefore the result is $\\boxed{{{x}}}$."


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("42", "42"),
        (r"\frac{1}{2}", "0.5"),
        ("0.5", r"\frac{1}{2}"),
        (r"\dfrac{1}{2}", r"\frac12"),
        (r"\sqrt{18}", r"3\sqrt{2}"),
        (r"3\sqrt{2}", r"\sqrt{18}"),  # bare gold must be wrapped to parse at all
        ("[1,2)", "[1,2)"),
        (r"\left[ 1, 2 \right)", "[1,2)"),
        (r"(-\infty, 3]", r"(-\infty,3]"),
        ("(1,2)", "(1, 2)"),
        (r"\{1,2\}", "1,2"),
        (r"\text{Monday}", "Monday"),
        (r"\text{(C)}", "C"),
        ("-3", "-3"),
        ("-3", "-3.0"),
        ("1,000", "1000"),
        ("1{,}000", "1000"),
        (r"1\,000", "1000"),  # math-verify alone reads the thin space as a product
        ("50\\%", "50\\%"),
        (r"90^\circ", "90"),
        ("x^2+2x+1", "(x+1)^2"),
        ("x = 3", "3"),
        (r"\mathrm{e}^{2}", "e^2"),  # Euler's number, not a symbol e
        (r"e^{2}", r"\mathrm{e}^2"),
        ("4 4/9", r"\frac{40}{9}"),  # mixed number
        (r"4\frac{4}{9}", r"\frac{40}{9}"),
        (r"-2\frac{1}{2}", "-2.5"),
        (r"\$5", "5"),
        (r"\pi/2", r"\frac{\pi}{2}"),
        (r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}"),
    ],
)
def test_equivalent_answers_are_correct(pred: str, gold: str) -> None:
    v = grade(box(pred), gold)
    assert v == Verdict(True, "correct", pred), v


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("41", "42"),
        (r"\frac{1}{3}", "0.5"),
        (r"\sqrt{17}", r"3\sqrt{2}"),
        ("[1,2]", "[1,2)"),
        ("(2,1)", "(1,2)"),
        ("3", "-3"),
        (r"\text{Tuesday}", "Monday"),
        ("x^2+1", "(x+1)^2"),
        ("1,000", "100"),
        ("4 4/9", "4"),  # a mixed number is not its integer part
        (r"4\frac{4}{9}", r"\frac{16}{9}"),  # ... nor a product
    ],
)
def test_different_answers_are_wrong(pred: str, gold: str) -> None:
    v = grade(box(pred), gold)
    assert not v.correct and v.reason == "wrong", v


def test_a_draft_box_then_a_correction_is_not_a_set() -> None:
    # math-verify alone parses this output to {3, 5}; prose between boxes ends the answer set.
    for mode in grading.MULTI_BOX_MODES:
        response = r"First I thought \boxed{3}, but correcting the sign, \boxed{5}."
        assert grade(response, "5", multi_box=mode).correct
        v = grade(response, "3", multi_box=mode)
        assert not v.correct and v.extracted == "5"


MV = "huggingface/Math-Verify"
LE = "huggingface/lighteval"


@pytest.mark.parametrize(
    ("response", "gold", "as_set", "as_last", "source"),
    [
        (r"\boxed{1} and \boxed{2} and \boxed{3}", "{1,2,3}", True, False, f"{MV} tests/test_open_thoughts.py:99"),
        (r"\boxed{1},\boxed{2},\boxed{3}", "{1,2,3}", True, False, f"{MV} tests/test_open_thoughts.py:104"),
        (r"$$\boxed{(2, 2)} \quad \text{and} \quad \boxed{(6, 2)}$$", "(2, 2), (6, 2)", True, False,
         f"{MV} tests/test_open_thoughts.py:69"),
        (r"$$\boxed{k = 45} \quad \text{and} \quad \boxed{n = 2}$$", "k = 45, n = 2", True, False,
         f"{MV} tests/test_open_thoughts.py:89"),
        (r"$$\boxed{(3, 3)} \text{ for part (a) and } \boxed{(1, 1)}$$", "(3, 3), (1, 1)", True, False,
         f"{MV} tests/test_open_thoughts.py:79"),  # one math environment: one set
        (r"\[\boxed{(1, 2)}, \boxed{(2, 1)}, \boxed{(-1, -20)}, \boxed{(-20, -1)}\]",
         "(2,1),(1,2),(-1,-20),(-20,-1)", True, False, f"{MV} tests/test_numina_cases.py:69"),
        # A set never equals a single value: boxing several guesses earns nothing.
        (r"\boxed{1} or \boxed{2}", "2", False, True, "ours"),
        (r"\boxed{3} or \boxed{3}", "3", True, True, "ours"),
    ],
)
def test_several_boxes(response: str, gold: str, as_set: bool, as_last: bool, source: str) -> None:
    assert grade(response, gold, multi_box="set").correct is as_set, source
    assert grade(response, gold, multi_box="last").correct is as_last, source
    assert Grader(multi_box="last").grade(response, gold).correct is as_last


@pytest.mark.parametrize(
    ("response", "gold", "expected", "source"),
    [
        # A gold that boxes several answers is the set of its final joined boxes (either mode).
        (r"$\boxed{1,2}$", r"$\boxed{1}\boxed{2}$", True, f"{MV} tests/test_all.py:868"),
        (r"$\boxed{-2,1}$.", r"\(\boxed{1}\) and \(\boxed{-2}\).", True, f"{MV} tests/test_numina_cases.py:74"),
        (r"$\boxed{2,3}$", r"\boxed{1} and and and or thus but \boxed{2} and \boxed{3}", True,
         f"{LE} tests/unit/metrics/test_extractive_match.py:1135"),
        (r"$\boxed{1,2,3}$", r"\boxed{1} and and and or thus but \boxed{2} and \boxed{3}", False,
         f"{LE} tests/unit/metrics/test_extractive_match.py:1140"),
        (r"$\boxed{1,2}$", r"\boxed{1} papers and \boxed{2} bins", True, f"{MV} tests/test_open_thoughts.py:149"),
    ],
)
def test_gold_with_several_boxes(response: str, gold: str, expected: bool, source: str) -> None:
    for mode in grading.MULTI_BOX_MODES:
        assert grade(response, gold, multi_box=mode).correct is expected, source


def test_gold_solution_with_several_boxes_gives_the_set() -> None:
    assert grading.boxed_answer(r"so $x = \boxed{1}$ or $\boxed{-2}$.") == "1, -2"
    assert grading.boxed_answer(r"so $x = \boxed{1}$ or $y = \boxed{-2}$.") == "-2"  # a label ends the set
    assert grading.boxed_answer(r"We get $\boxed{3}$. Checking, the answer is $\boxed{4}$.") == "4"
    assert grading.boxed_answer("no box") is None


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        (r"is $\boxed{32,\! 349}$", r" So the answer is: \[ \boxed{32349} \]"),  # Math-Verify tests/test_all.py:848
        (r"is $\boxed{11,\! 111,\! 111,\! 100}$", r"\boxed{11111111100}"),  # Math-Verify tests/test_all.py:843
        (r"\boxed{32349}", r"32,\! 349"),  # either way round
        (r"\boxed{32,\!349}", "32349"),
        (r"\boxed{\$16,\!386.20}", "16386.2"),
    ],
)
def test_thin_space_thousands_separators(response: str, gold: str) -> None:
    assert grade(response, gold).correct


def test_thin_space_comma_is_not_a_separator_elsewhere() -> None:
    assert not grade(r"\boxed{32,\! 34}", "3234").correct  # not a 3-digit group
    assert not grade(r"\boxed{32,\! 349}", "32").correct


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        # The "final answer is" line after an intermediate box supersedes the box.
        (r"so far $\boxed{12}$. Hmm. Final Answer: The final answer is $13$. I hope it is correct.", "13", True),
        (r"so far $\boxed{12}$. Hmm. Final Answer: The final answer is $13$. I hope it is correct.", "12", False),
        # Math-Verify tests/test_all.py:810: thousands in the final answer line, no box.
        (r"Dr. Zaius has $10,455. Final Answer: The final answer is $10,455$. I hope it is correct.", "10455", True),
        # Math-Verify tests/test_all.py:746.
        ("Final Answer: The largest $n$ is 34.", "34", True),
        # Without a number or math, the statement is no answer: the box stands.
        (r"$\boxed{12}$. The final answer is above.", "12", True),
        # The set written as joined math spans (Math-Verify tests/test_all.py:205).
        (r"$\boxed{12 $ and $13 }. $ Final Answer: The final answer is \"$12 $ and $13 $\". I hope it is correct.",
         r"$\boxed{12\text{ and }13}$", True),
    ],
)
def test_final_answer_line(response: str, gold: str, expected: bool) -> None:
    assert grade(response, gold).correct is expected


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        (r"\boxed{50}", r"50\%", True),
        (r"\boxed{50\%}", "50", True),
        (r"\boxed{50 \%}", r"$50\%$", True),
        (r"\boxed{0.5}", r"50\%", True),  # math-verify reads x% as both x and x/100
        (r"\boxed{51}", r"50\%", False),
        # A gold written as a worked answer with a percentage (Math-Verify tests/test_all.py:195).
        (r"making for a total loss of $\boxed{28\%}$.",
         r"... = 28 \%. Final Answer: The final answer is $28 \%$. I hope it is correct. Note: more text.", True),
        (r"$\boxed{27\%}$.", r"Final Answer: The final answer is $28 \%$. I hope it is correct.", False),
    ],
)
def test_percentages(response: str, gold: str, expected: bool) -> None:
    assert grade(response, gold).correct is expected


def test_bad_multi_box_is_rejected() -> None:
    with pytest.raises(ValueError, match="multi_box"):
        grade(r"\boxed{1}", "1", multi_box="first")
    with pytest.raises(ValueError, match="multi_box"):
        Grader(multi_box="all")


def test_full_stop_inside_math_is_not_truncation() -> None:
    # math-verify alone reads "$2^{10}.$" as 2.
    assert grade(r"$\boxed{2^{10}.}$", "1024").correct
    assert not grade(r"$\boxed{2^{10}.}$", "2").correct
    assert grade("The answer is $2^{10}.$", "1024").correct
    assert not grade("The answer is $2^{10}.$", "2").correct


def test_euler_number_mathrm() -> None:
    assert grade(r"\boxed{\mathrm{e}^{2}}", "e^2").correct
    assert not grade(r"\boxed{\mathrm{e}^{2}}", "e^3").correct
    assert grade(r"\boxed{\mathrm{e}}", r"e").correct


def test_mixed_numbers() -> None:
    assert grade(r"\boxed{4 4/9}", r"\frac{40}{9}").correct
    assert grade(r"\boxed{4\frac{4}{9}}", "40/9").correct
    assert not grade(r"\boxed{4 4/9}", "4").correct
    assert not grade(r"\boxed{4 4/9}", r"\frac{8}{9}").correct


def test_gold_forms() -> None:
    # A gold given with delimiters or as a worked solution reads the same.
    assert grade(r"\boxed{\frac{1}{2}}", r"$\frac{1}{2}$").correct
    assert grade(r"\boxed{7}", r"Adding, we get $\boxed{7}$.").correct


def test_reasons_no_answer_and_unparsable() -> None:
    assert grade("I do not know.", "5") == Verdict(False, "no_answer", None)
    assert grade(r"\boxed{\frac{1}{2}", "5") == Verdict(False, "unparsable", None)
    v = grade(r"\boxed{\frac{1}{2}}", "")
    assert not v.correct


# ---------------------------------------------------------------------------
# Time bounds
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        r"\boxed{9^{9^{9^9}}}",
        r"\boxed{2^{2^{30}}}",
        r"\boxed{(10^{9999})^{9999}}",
        r"\boxed{10^{100000}}",
        r"\boxed{100000!}",
        r"\boxed{" + "9" * 5000 + "}",
        r"\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
        r"\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
        r"\boxed{" + "x" * 1_000_000 + "}",
        r"\boxed{\frac{1}{2}" + " more" * 1000,
        r"\boxed{1}, " * 5000,  # a huge answer set
        "The answer is \\frac{1}{2",  # unbalanced LaTeX in a fallback answer
        "Answer: " + r"\left( \right." * 50,
    ],
)
def test_pathological_answers_are_bounded(response: str) -> None:
    t0 = time.perf_counter()
    v = grade(response, "2", timeout_s=1)
    assert time.perf_counter() - t0 < 3.0
    assert not v.correct
    assert v.reason in ("unparsable", "timeout", "wrong"), v


def test_grade_from_a_thread_does_not_raise() -> None:
    out: list[object] = []

    def work() -> None:
        try:
            out.append(grade(r"\boxed{\sqrt{18}}", r"3\sqrt{2}"))
            out.append(grade(r"\boxed{x^2+1}", r"(x+1)^2"))
            out.append(Grader().grade_many([r"\boxed{0.5}"], [r"\frac12"])[0])
        except BaseException as exc:  # noqa: BLE001
            out.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    assert out == [
        Verdict(True, "correct", r"\sqrt{18}"),
        Verdict(False, "wrong", "x^2+1"),
        Verdict(True, "correct", "0.5"),
    ]


def test_timeout_reason_when_math_verify_overruns(monkeypatch: pytest.MonkeyPatch) -> None:
    from math_verify.errors import TimeoutException

    def slow(*args: object, **kwargs: object) -> object:
        raise TimeoutException("Operation timed out!")

    monkeypatch.setattr("math_verify.verify", slow)
    assert grade(r"\boxed{x^2+1}", "x^2+2") == Verdict(False, "timeout", "x^2+1")


def test_bad_timeout_is_rejected() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        grade(r"\boxed{1}", "1", timeout_s=0)


# ---------------------------------------------------------------------------
# Grader
# ---------------------------------------------------------------------------


def test_grader_caches_by_extracted_and_gold() -> None:
    with Grader() as g:
        responses = [box("1/2"), r"other words \boxed{1/2}", box("3"), "nothing", box("3")]
        golds = ["0.5", "0.5", "3", "3", "4"]
        verdicts = g.grade_many(responses, golds)
        assert [v.reason for v in verdicts] == ["correct", "correct", "correct", "no_answer", "wrong"]
        assert g.stats == (1, 3)  # ("1/2","0.5") computed once, used twice
        assert g.grade_many([box("3")], ["3"])[0].correct
        assert g.stats.hits == 2 and g.stats.misses == 3


def test_grader_cache_is_bounded() -> None:
    g = Grader(cache_size=2)
    g.grade_many([box(str(i)) for i in range(5)], ["1"] * 5)
    assert len(g._cache) == 2


def test_grader_checks_arguments() -> None:
    with pytest.raises(ValueError, match="responses"):
        Grader().grade_many(["a"], [])
    with pytest.raises(ValueError, match="workers"):
        Grader(workers=-1)
    with pytest.raises(ValueError, match="timeout_s"):
        Grader(timeout_s=0)


def _hang_on_marker(extracted: str, gold: str, timeout_s: float, rel_tol: float | None = None) -> Verdict:
    """Pool worker used by the test below: never returns for the answer HANG."""
    if extracted == "HANG":
        time.sleep(120)
    return grading.pool._worker_judge(extracted, gold, timeout_s, rel_tol)


def test_worker_pool_kills_an_overrunning_worker() -> None:
    with Grader(workers=2, timeout_s=2, grace_s=1.0) as g:
        g._worker = _hang_on_marker
        responses = [box("1/2"), r"\boxed{HANG}", box(r"\sqrt{18}"), box("7"), r"\boxed{9^{9^{9^9}}}"]
        golds = ["0.5", "1", r"3\sqrt{2}", "8", "2"]
        t0 = time.perf_counter()
        verdicts = g.grade_many(responses, golds)
        assert time.perf_counter() - t0 < 30
        assert [v.reason for v in verdicts] == ["correct", "timeout", "correct", "wrong", "unparsable"]
        # The pool was replaced: grading goes on, and a timeout is not cached.
        assert g.grade_many([box("2")], ["2"])[0].correct
        assert ("HANG", "1") not in g._cache


def _crash_on_marker(extracted: str, gold: str, timeout_s: float, rel_tol: float | None = None) -> Verdict:
    """Pool worker used by the test below: the process dies on the answer CRASH."""
    if extracted == "CRASH":
        import os

        os._exit(3)
    return grading.pool._worker_judge(extracted, gold, timeout_s, rel_tol)


def test_worker_pool_survives_a_crashing_worker() -> None:
    with Grader(workers=2, timeout_s=5) as g:
        g._worker = _crash_on_marker
        responses = [box(r"\sqrt{8}"), r"\boxed{CRASH}", box(r"x^2+2x+1"), box("3")]
        golds = [r"2\sqrt{2}", "1", "(x+1)^2", "3"]
        verdicts = g.grade_many(responses, golds)
        assert [v.reason for v in verdicts] == ["correct", "unparsable", "correct", "correct"]


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def test_cli_grade_text_and_json() -> None:
    from typer.testing import CliRunner

    from asymcli.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["grade", r"so \boxed{\frac{1}{2}}", "0.5"])
    assert res.exit_code == 0, res.output
    assert "correct" in res.output and r"\frac{1}{2}" in res.output
    res = runner.invoke(app, ["grade", r"\boxed{3}", "4", "--format", "json"])
    assert res.exit_code == 0  # a wrong answer is data, not an error
    assert json.loads(res.output) == {"correct": False, "reason": "wrong", "extracted": "3", "gold": "4"}
    res = runner.invoke(app, ["grade", "nothing", "4", "--format", "json"])
    assert json.loads(res.output)["reason"] == "no_answer"
    res = runner.invoke(app, ["grade", r"\boxed{3}", "4", "--format", "yaml"])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "--format" in res.output
