"""Answer forms from the outside check of the grader (issue 21, item 7); conventions: docs/grading.md."""

from __future__ import annotations

import pytest

from asymcli import grading
from asymcli.grading import Grader, Verdict, grade


@pytest.fixture(autouse=True, scope="module")
def _warm_math_verify() -> None:
    # The first math-verify call loads its parser and sympy; done once outside any test's budget.
    grade(r"\boxed{x^2+2x+1}", "(x+1)^2", timeout_s=120)


# ---------------------------------------------------------------------------
# Junk inside a box: an item that does not parse is never dropped from the set
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        r"\boxed{?? or 0}",  # math-verify parses this to 0: the junk item is dropped
        r"\boxed{@@ or 0}",
        r"\boxed{x+ or 0}",
        r"\boxed{\frac{1}{} or 0}",
        r"\boxed{) or 0}",
        r"\boxed{??}, \boxed{0}",  # the same set written as two boxes
    ],
)
def test_junk_item_plus_the_right_value_is_unparsable(response: str) -> None:
    v = grade(response, "0")
    assert not v.correct and v.reason == "unparsable", v


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        (r"\boxed{\text{junk} or 0}", "0"),  # \text{junk} reads as a symbol: the set {junk, 0}
        (r"\boxed{junk or 0}", "0"),
        (r"\boxed{5 or 7}", "5"),  # several guesses earn nothing
        (r"\boxed{5 or 7}", "7"),
        (r"\boxed{??, 1, 2}", "1, 2"),
        (r"\boxed{\pm 1 or ??}", "1, -1"),
    ],
)
def test_a_set_with_junk_or_guesses_is_not_correct(response: str, gold: str) -> None:
    assert not grade(response, gold).correct


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        (r"\boxed{1 or 2}", "1, 2"),
        (r"\boxed{1}, \boxed{2}", "1, 2"),
        (r"\boxed{\pm 1}", "1, -1"),
        (r"\boxed{x = 1 \text{ or } x = 2}", "1, 2"),
        (r"\boxed{\{1, 2\}}", "1,2"),
    ],
)
def test_sets_of_parsable_items_still_match(response: str, gold: str) -> None:
    assert grade(response, gold) == Verdict(True, "correct", grading.extract_answer(response))


# ---------------------------------------------------------------------------
# Indexed roots without braces
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        (r"\boxed{\sqrt[3]2}", "2^{1/3}", True),
        (r"\boxed{\sqrt[3] 2}", r"\sqrt[3]{2}", True),
        (r"\boxed{\sqrt[4]x}", "x^{1/4}", True),
        (r"\boxed{\sqrt[3]\pi}", r"\pi^{1/3}", True),
        (r"\boxed{\sqrt[3]2}", r"\sqrt{2}", False),
    ],
)
def test_indexed_root_without_braces(response: str, gold: str, expected: bool) -> None:
    v = grade(response, gold)
    assert v.correct is expected and v.reason == ("correct" if expected else "wrong"), v


# ---------------------------------------------------------------------------
# value = var reads as var = value
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        (r"\boxed{2}", "x = 2", True),
        (r"\boxed{2}", "2 = x", True),
        (r"\boxed{2}", "2 = y", True),
        (r"\boxed{2}", "2 = y_1", True),
        (r"\boxed{2}", r"2 = \theta", True),
        (r"\boxed{2 = x}", "2", True),
        (r"\boxed{x = 2}", "2 = x", True),
        (r"\boxed{3}", "2 = x", False),
    ],
)
def test_value_equals_variable_is_symmetric(response: str, gold: str, expected: bool) -> None:
    assert grade(response, gold).correct is expected


# ---------------------------------------------------------------------------
# Percentages: X% equals X and X/100 (math-verify's convention, for any X)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        (r"\boxed{\frac{1}{2}\%}", "0.005", True),
        (r"\boxed{0.005}", r"\frac{1}{2}\%", True),
        (r"\boxed{\frac{1}{2}\%}", r"\frac{1}{2}", True),  # x% also equals x, as 50\% equals 50
        (r"\boxed{1/2\%}", "0.005", True),  # (1/2)%, not 1/(2%)
        (r"\boxed{12.5\%}", r"\frac{1}{8}", True),
        (r"\boxed{50 percent}", "0.5", True),
        (r"\boxed{50 \text{ percent}}", "0.5", True),
        (r"\boxed{50 \text{percent}}", "50", True),
        (r"\boxed{50\text{\%}}", "0.5", True),
        (r"\boxed{50%}", "0.5", True),
        (r"\boxed{50\%}", "50 percent", True),
        (r"\boxed{50\%}", "0.5", True),
        (r"\boxed{50\%}", "50", True),
        (r"\boxed{50 percent}", "51", False),
        (r"\boxed{\frac{1}{2}\%}", "0.5", True),  # = 1/2 (the x reading)
        (r"\boxed{\frac{1}{2}\%}", "0.05", False),
        (r"\boxed{50\%}", r"0.5\%", False),  # two percentages compare their numbers: 50% is not 0.5%
    ],
)
def test_percent_forms(response: str, gold: str, expected: bool) -> None:
    assert grade(response, gold).correct is expected


# ---------------------------------------------------------------------------
# Plain-text functions and Python powers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        (r"\boxed{-1 + sqrt(3)}", r"\sqrt{3} - 1", True),  # math-verify alone reads this as -1
        (r"\boxed{-1+\sqrt(3)}", r"\sqrt{3}-1", True),
        (r"\boxed{sqrt(2)/2}", r"\frac{\sqrt{2}}{2}", True),
        (r"\boxed{2*sqrt(3)}", r"2\sqrt{3}", True),
        (r"\boxed{sqrt(x+1)}", r"\sqrt{x+1}", True),
        (r"\boxed{log(8)}", r"3\log 2", True),
        (r"\boxed{sin(x)}", r"\sin x", True),
        (r"\boxed{-1 + sqrt(3)}", r"\sqrt{3} + 1", False),
    ],
)
def test_plain_text_functions(response: str, gold: str, expected: bool) -> None:
    assert grade(response, gold).correct is expected


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        (r"\boxed{\sqrt{\sqrt{2}}}", "2**(1/4)", True),  # a Python-syntax gold
        (r"\boxed{2^{1/4}}", "2**(1/4)", True),
        (r"\boxed{2**(1/4)}", r"\sqrt{\sqrt{2}}", True),
        (r"\boxed{2**10}", "1024", True),  # not 2^1 then 0
        (r"\boxed{2**-1}", "0.5", True),
        (r"\boxed{x**2 + 1}", "x^2+1", True),
        (r"\boxed{\sqrt{2}}", "2**(1/4)", False),
    ],
)
def test_python_powers(response: str, gold: str, expected: bool) -> None:
    assert grade(response, gold).correct is expected


def test_python_powers_pass_the_size_guards() -> None:
    assert grade(r"\boxed{10**100000}", "1") == Verdict(False, "unparsable", "10**100000")


# ---------------------------------------------------------------------------
# Matrices: bmatrix, pmatrix, Bmatrix, matrix are one matrix; vmatrix is a determinant
# ---------------------------------------------------------------------------

PMAT = r"\begin{pmatrix} x+1 \\ 2 \end{pmatrix}"


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        # "\\ " (a row break, then a space) was read as "\" + the spacing "\ ": the matrix broke.
        (r"\boxed{\begin{bmatrix} x+1 \\ 2 \end{bmatrix}}", PMAT, True),
        (r"\boxed{\begin{Bmatrix} x+1 \\ 2 \end{Bmatrix}}", PMAT, True),
        (r"\boxed{\begin{matrix} x+1 \\ 2 \end{matrix}}", PMAT, True),
        (r"\boxed{\begin{pmatrix} x+1 \\ 2 \end{pmatrix}}", r"\begin{bmatrix} x+1 \\ 2 \end{bmatrix}", True),
        (r"\boxed{\begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}}", r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", True),
        (r"\boxed{\begin{bmatrix} x+1 \\ 3 \end{bmatrix}}", PMAT, False),
        (r"\boxed{\begin{smallmatrix} x+1 \\ 2 \end{smallmatrix}}", PMAT, True),
        (r"\boxed{\begin{Bmatrix} 1 \\ 2 \end{Bmatrix}}", "2", False),  # latex2sympy alone: its last row, 2
        (r"\boxed{\begin{vmatrix}1&2\\3&4\end{vmatrix}}", "-2", True),  # the determinant
        (r"\boxed{\begin{vmatrix}1&2\\3&4\end{vmatrix}}", r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", False),
    ],
)
def test_matrix_environments(response: str, gold: str, expected: bool) -> None:
    assert grade(response, gold).correct is expected


# ---------------------------------------------------------------------------
# Answer sets of more than 20 boxes
# ---------------------------------------------------------------------------


def _boxes(n: int) -> str:
    return ", ".join(rf"\boxed{{{i}}}" for i in range(n))


def test_sets_of_more_than_20_boxes_are_graded() -> None:
    gold = ", ".join(str(i) for i in reversed(range(25)))
    assert grade(_boxes(25), gold).correct
    assert not grade(_boxes(24), gold).correct
    n = grading.MAX_SET_BOXES
    assert grade(_boxes(n), ", ".join(str(i) for i in range(n)), timeout_s=30).correct


def test_a_set_over_the_cap_is_unparsable() -> None:
    n = grading.MAX_SET_BOXES
    assert n < grading.MAX_BOX_CANDIDATES  # a run cut short by the scan budget is over the cap
    assert grade(_boxes(n + 1), "1") == Verdict(False, "unparsable", None)
    assert grade(_boxes(n + 1), str(n), multi_box="last").correct  # the last box alone


# ---------------------------------------------------------------------------
# Relative tolerance (off by default)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold", "off", "on"),
    [
        (r"\boxed{100001}", "100000", False, True),  # integers
        (r"\boxed{0.33333}", r"\frac{1}{3}", False, True),
        (r"\boxed{3.14159}", r"\pi", False, True),  # any two answers that evaluate to numbers
        (r"\boxed{1.414}", r"\sqrt{2}", False, False),  # 1.6e-4 apart: outside 1e-4
        (r"\boxed{(1.00001, 2)}", "(1, 2)", False, True),
        (r"\boxed{1.0002}", "1", False, False),
        (r"\boxed{0.0001}", "0", False, False),  # relative: nothing is close to 0 but 0
        (r"\boxed{x + 1.00001}", "x + 1", False, False),  # symbolic answers are not evaluated
        (r"\boxed{2}", "2", True, True),
    ],
)
def test_rel_tol(response: str, gold: str, off: bool, on: bool) -> None:
    assert grade(response, gold).correct is off
    assert grade(response, gold, rel_tol=1e-4).correct is on
    assert Grader(rel_tol=1e-4).grade(response, gold).correct is on


def test_rel_tol_reaches_the_workers() -> None:
    with Grader(workers=1, timeout_s=10, rel_tol=1e-4) as g:
        verdicts = g.grade_many([r"\boxed{3.14159}", r"\boxed{3.15}"], [r"\pi", r"\pi"])
    assert [v.reason for v in verdicts] == ["correct", "wrong"]


@pytest.mark.parametrize("bad", [0, -1e-4, 1, 2.0, True, "1e-4"])
def test_bad_rel_tol_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="rel_tol"):
        grade(r"\boxed{1}", "1", rel_tol=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rel_tol"):
        Grader(rel_tol=bad)  # type: ignore[arg-type]


def test_cli_grade_rel_tol() -> None:
    import json

    from typer.testing import CliRunner

    from asymcli.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["grade", r"\boxed{3.14159}", r"\pi", "--format", "json"])
    assert res.exit_code == 0 and json.loads(res.output)["correct"] is False
    res = runner.invoke(app, ["grade", r"\boxed{3.14159}", r"\pi", "--rel-tol", "1e-4", "--format", "json"])
    assert res.exit_code == 0 and json.loads(res.output)["correct"] is True, res.output
    res = runner.invoke(app, ["grade", r"\boxed{1}", "1", "--rel-tol", "2"])
    assert res.exit_code == 2 and "--rel-tol" in res.output


def test_config_rel_tol_reaches_the_pipeline_graders(tmp_path):
    """grading.rel_tol is a config key (validated at load) that the trainer, eval and base
    probe pass to their Grader."""
    import re as _re
    from pathlib import Path as _Path

    from asymcli.config import load_config
    from asymcli.errors import ConfigError

    root = _Path(__file__).resolve().parents[2]
    (tmp_path / "c.yaml").write_text("grading:\n  rel_tol: 1.0e-4\n")
    assert load_config(tmp_path / "c.yaml").grading.rel_tol == 1e-4
    (tmp_path / "bad.yaml").write_text("grading:\n  rel_tol: 2\n")
    with pytest.raises(ConfigError, match="grading.rel_tol"):
        load_config(tmp_path / "bad.yaml")
    # One place builds every pipeline grader (asymcli/sampling/grade.py), from the config's section...
    from asymcli.sampling.grade import make_grader

    cfg = load_config(tmp_path / "c.yaml")
    grader = make_grader(cfg.grading)
    assert grader.grade_many([r"\boxed{3.14159}"], [r"\pi"])[0].correct  # within 1e-4 of pi
    assert not make_grader(load_config(None).grading).grade_many([r"\boxed{3.14159}"], [r"\pi"])[0].correct
    # ...and the trainer, the evaluation and the base probe build theirs only through it.
    for f in ("asymcli/training/trainer.py", "asymcli/evaluation/evaluate.py", "stages/base.py"):
        text = (root / f).read_text()
        assert "make_grader(cfg.grading)" in text and not _re.search(r"\bGrader\(", text), f
