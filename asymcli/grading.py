"""The grader: is a model's final answer equal to the gold answer? It is also the RL reward.

One place decides correctness for training rewards and for evaluation alike:

1. :func:`extract_answer` takes the model's final answer from its final boxes
   (``\\boxed{...}`` / ``\\fbox{...}`` / ``\\boxed 5``, found by a brace-matching scan;
   escaped braces ``\\{`` ``\\}`` do not count). Several boxes follow ``multi_box``
   (the ``grading.multi_box`` config key): ``"set"`` (default; math-verify's and
   lighteval's convention) reads the last box together with the boxes joined to it by
   commas/"and"/"or" or standing in the same math environment as one answer set
   ``a, b, c``; ``"last"`` (verl's convention) reads the last box only. A "final answer
   ... is X" statement after the last box supersedes it (math-verify: the rightmost of the
   two). Without a box it falls back, in order, to the last "final answer ... is X", "the
   answer is X" or "Answer: X" near the end (a math span, or in prose the first number).
2. :func:`grade` reads the gold the same way (:func:`gold_text`: a gold with several boxes
   is the set of its final boxes; a gold written as a worked answer is its final-answer
   statement), normalises both sides conservatively (see ``_clean``), accepts an exact
   string match, decides plain numbers and bracketed lists of plain numbers (intervals,
   points) directly where no rounding could change the outcome (integers; rationals equal
   or more than 1e-4 apart, relatively; lists with equal brackets and values, or integer
   lists that differ), and otherwise asks math-verify
   (``math_verify.parse`` / ``math_verify.verify``; we write no CAS of our own), handing it
   only the extracted content wrapped in ``$...$``. Percentages follow math-verify's
   reading of ``50\\%`` (equal to both ``50`` and ``0.5``) for any ``X\\%`` and any spelling
   (``50%``, ``50 percent``, ``\\frac{1}{2}\\%``); two percentages compare their numbers.
   ``rel_tol`` (off by default; Qwen's graders use 1e-4) makes numbers within that relative
   tolerance equal.

Where this departs from calling math-verify on the raw response (each has a test):
- a draft box followed by prose and a correction is not read as a set with the correction;
- a full stop inside the math (``$2^{10}.$``) is stripped, so it is 1024, not 2;
- ``\\mathrm{e}`` is Euler's number (math-verify reads it as a symbol ``e``);
- a mixed number ``4 4/9`` / ``4\\frac{4}{9}`` is 40/9 (math-verify reads ``4 4/9`` as 8/9);
- ``1\\,000`` is 1000 (math-verify reads the thin space as a product: 0);
- a bare gold like ``\\sqrt{18}`` is wrapped before parsing (bare, it parses to nothing);
- an answer-set item that parses to nothing (``\\boxed{?? or 0}``) makes the answer
  unparsable (math-verify drops the item: junk plus one right value would pass);
- ``sqrt(3)``, ``log(8)`` and Python powers ``2**(1/4)`` are read (math-verify reads
  ``-1 + sqrt(3)`` as -1, ``2**(1/4)`` as 2); so is ``\\sqrt[3]2`` (unparsable there);
- ``2 = x`` reads as ``x = 2``; Bmatrix/smallmatrix as pmatrix (latex2sympy: the last row);
- ``\\\\`` followed by a space is a row break, not the spacing ``\\ ``;
- no number is read out of free prose without a box or an answer line.
Agreement with math-verify's and lighteval's own test tables: docs/grading.md.

Verdict reasons: ``correct``, ``wrong``, ``no_answer`` (nothing extracted), ``unparsable``
(the answer is too long, too deeply nested, unbalanced, an astronomically large number, or
math-verify finds no mathematical object in it), ``timeout`` (math-verify ran past its
budget, or a worker process overran its deadline and was killed).

Time bounds. Inputs first pass size guards (answer length, nesting depth, numeric power
towers, huge factorials, answer sets of more than MAX_SET_BOXES boxes) so that no single
sympy operation can run unboundedly long. In the main thread math-verify's own ``signal.alarm`` timeouts add a budget of ``timeout_s``
per answer (whole seconds, at least 1). ``signal.alarm`` only works in the main thread, so
elsewhere the alarms are switched off (``None`` timeouts) and the size guards carry the
load; a caller that needs a hard bound off the main thread uses ``Grader(workers>0)``,
which grades in worker processes and kills a worker that overruns its deadline.
"""

from __future__ import annotations

import math
import multiprocessing
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

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
GOLD_CACHE_SIZE = 4096  # parsed gold answers kept per process


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


# ---------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------

_BRACE_TOKENS = re.compile(r"\\.|[{}]", re.S)
# "final answer ... is X" (math-verify's pattern: up to 100 characters, here within one
# sentence, between "final answer" and "is", so "Final Answer: The final answer is X" and
# "Final answer: the largest n is X" both read X), "the answer is X", "Answer: X".
_FALLBACK = re.compile(
    r"(?:(?P<final>final\s+answer[^\n.]{0,100}?\s+is)|the\s+answer\s+is|answer\s*:)[ \t:]*(?P<ans>[^\n]*)", re.I
)
# What may stand between two boxes of one answer set: spacing, math delimiters, commas,
# "and"/"or" (also inside \text{}). A word, a sentence or a label ("y_2 =") may not.
_JOIN = (r"(?:\s|[,;]|\$|\\[()\[\]]|\\\\|\\[,;:! ]|\\q?quad(?![A-Za-z])"
         r"|\\text\s*\{\s*(?:,?\s*(?:and|or)\s*)?,?\s*\}|\b(?:and|or)\b)*")
# ... and at most one word right after the first box, before "and"/"or" (a unit:
# "\boxed{1} papers and \boxed{2} bins").
_BOX_JOINER = re.compile(rf"(?:\s*[A-Za-z]{{1,20}}\s+(?:and|or)\b)?{_JOIN}", re.I)


class _Box(NamedTuple):
    content: str
    start: int  # index of the backslash of \boxed / \fbox
    end: int  # index just past the box


def _match_brace(text: str, open_idx: int) -> tuple[str | None, bool]:
    """Content of the brace group opening at ``text[open_idx] == '{'``.

    Returns ``(content, ok)``. ``ok`` is False when the group is unclosed, nested deeper
    than MAX_NESTING, or longer than MAX_ANSWER_CHARS: work is bounded by that cap, not by
    the length of ``text``.
    """
    depth = 0
    limit = min(len(text), open_idx + MAX_ANSWER_CHARS + 2)
    for m in _BRACE_TOKENS.finditer(text, open_idx, limit):
        tok = m.group()
        if tok == "{":
            depth += 1
            if depth > MAX_NESTING:
                return None, False
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return text[open_idx + 1 : m.start()], True
    return None, False


def _box_before(text: str, end: int, budget: list[int]) -> tuple[_Box | None, bool]:
    """The last non-empty box that starts before ``end``: ``(box, ok)``; ``(None, True)`` if none.

    ``ok`` is False when that box is malformed (unclosed, too long or too deep). Empty
    boxes and ``\\boxedfoo`` are skipped; ``budget[0]`` counts the ``\\boxed`` occurrences
    looked at (at most MAX_BOX_CANDIDATES per response, shared by the calls of one scan).
    """
    while budget[0] > 0:
        budget[0] -= 1
        i_boxed = text.rfind("\\boxed", 0, end)
        i_fbox = text.rfind("\\fbox", 0, end)
        i = max(i_boxed, i_fbox)
        if i < 0:
            return None, True
        j = i + (len("\\boxed") if i == i_boxed else len("\\fbox"))
        k = j
        while k < len(text) and k - j < 8 and text[k] in " \t":
            k += 1
        if k < len(text) and text[k] == "{":
            content, ok = _match_brace(text, k)
            if not ok:
                return None, False
            if content and content.strip():
                return _Box(content.strip(), i, k + len(content) + 2), True
        elif k > j and i == i_boxed:
            # "\boxed 5": the run of non-space characters after the space (up to a "$").
            m = re.match(r"[^\s$]+", text[k : k + MAX_ANSWER_CHARS + 1])
            if m:
                if len(m.group()) > MAX_ANSWER_CHARS:
                    return None, False
                return _Box(m.group(), i, k + len(m.group())), True
        end = i  # empty box, or "\boxedfoo": look further back
    return None, True


_ENV_DELIM = re.compile(r"(?<!\\)\$|\\[()\[\]]")


def _one_math_env(text: str, a: _Box, b: _Box) -> bool:
    """Whether boxes ``a`` and ``b`` (``a`` first) sit in one math environment (``$...$``,
    ``$$...$$``, ``\\[...\\]``, ``\\(...\\)``): math-verify reads all boxes of one
    environment as the answer set, whatever stands between them."""
    if b.start - a.end > MAX_ANSWER_CHARS:
        return False
    if _ENV_DELIM.search(text, a.end, b.start) or "\n\n" in text[a.end : b.start]:
        return False
    opener = max(text.rfind("\\[", 0, a.start), text.rfind("\\(", 0, a.start))
    closer = max(text.rfind("\\]", 0, a.start), text.rfind("\\)", 0, a.start))
    dollar = text.rfind("$", 0, a.start)
    if max(opener, closer) > dollar:
        return opener > closer
    if dollar < 0:
        return False
    # Inside "$...$" / "$$...$$" when an odd number of math-mode "$" tokens precede the box.
    tokens = text.count("$", 0, a.start) - text.count("\\$", 0, a.start) - text.count("$$", 0, a.start)
    return tokens % 2 == 1


def _final_boxes(text: str) -> tuple[list[_Box], bool]:
    """The final answer's boxes, in text order: ``(boxes, ok)``; ``([], True)`` if there is no box.

    The last non-empty box, and before it every box joined to it by nothing but spacing,
    math delimiters, commas and "and"/"or" (``\\boxed{1}, \\boxed{2} and \\boxed{3}``,
    ``$\\boxed{(2,2)} \\quad \\text{and} \\quad \\boxed{(6,2)}$``): the run math-verify and
    lighteval read as one answer set; so is every box in the same math environment as
    the last one (``$$\\boxed{(3,3)} \\text{ for part (a) and } \\boxed{(1,1)}$$``). A box
    followed by prose (a draft, then a correction) starts no run with the boxes after
    it. ``ok`` is False when the last box is malformed: the final answer is then
    unreadable and we do not fall back to an earlier box.
    """
    budget = [MAX_BOX_CANDIDATES]
    last, ok = _box_before(text, len(text), budget)
    if not ok:
        return [], False
    if last is None:
        return [], True
    run = [last]
    while budget[0] > 0:
        prev, ok = _box_before(text, run[0].start, budget)
        if not ok or prev is None:
            break
        if not (_BOX_JOINER.fullmatch(text, prev.end, run[0].start) or _one_math_env(text, prev, run[0])):
            break
        run.insert(0, prev)
    return run, True


def _box_answer(boxes: list[_Box], multi_box: str) -> str:
    """One answer string from the final boxes: the last one, or the set written ``a, b, c``."""
    if multi_box == "last" or len(boxes) == 1:
        return boxes[-1].content
    return ", ".join(b.content for b in boxes)


def _strip_delimiters(s: str) -> str:
    """Remove surrounding ``$..$``, ``$$..$$``, ``\\(..\\)`` and ``\\[..\\]``."""
    s = s.strip()
    for _ in range(4):
        before = s
        s = s.strip()
        if s.startswith("$$") and s.endswith("$$") and len(s) >= 4:
            s = s[2:-2]
        elif s.startswith("$") and s.endswith("$") and len(s) >= 2:
            s = s[1:-1]
        elif (s.startswith("\\(") and s.endswith("\\)")) or (s.startswith("\\[") and s.endswith("\\]")):
            s = s[2:-2]
        if s == before:
            break
    return s.strip()


_MATH_SPAN = re.compile(r"\$\$(?P<d>.+?)\$\$|\$(?P<i>[^$]+?)\$|\\\((?P<p>.+?)\\\)")
_PROSE_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")
_WORD = re.compile(r"[A-Za-z]{2,}")  # three or more words make a sentence, not an answer
_SPAN_JOINER = re.compile(r"\s*(?:,?\s*(?:and|or)\b|,)\s*", re.I)


def _math_spans(ans: str) -> str | None:
    """``ans`` opens with a math span: its content, or the set ``a, b`` of the spans joined to
    it by commas/"and"/"or" (``$12$ and $13$``, math-verify's joined environments)."""
    parts = []
    pos = 0
    while True:
        m = _MATH_SPAN.match(ans, pos)
        if not m or not (body := next(g for g in m.groups() if g is not None).strip()):
            break
        parts.append(body)
        j = _SPAN_JOINER.match(ans, m.end())
        if not j:
            break
        pos = j.end()
    return ", ".join(parts) if parts else None


def _fallback_answer(text: str, *, final_only: bool = False) -> str | None:
    """The last "final answer ... is X" / "the answer is X" / "Answer: X" near the end of ``text``.

    ``final_only``: only a "final answer ... is X" statement counts, and only when X is
    written in math (``$...$``) or holds a digit: "The final answer is above" is no answer.
    """
    tail = text[-FALLBACK_TAIL_CHARS:]
    last = None
    for m in _FALLBACK.finditer(tail):
        if not final_only or m.group("final"):
            last = m
    if last is None:
        return None
    ans = last.group("ans").strip().strip("*").strip()
    ans = re.sub(r'^(?:\\?"|``)\s*', "", ans)  # a quoted answer: "The final answer is \"$12$\""
    # As math-verify: a math span within 50 characters of the anchor is the answer ("Answer:
    # the area is $12\\sqrt{3}$"); in prose without one, the first number ("Final Answer:
    # Jane started growing Sphere 3 hours ago").
    span = _MATH_SPAN.search(ans, 0, len(ans))
    spans = _math_spans(ans[span.start() :]) if span is not None and span.start() <= 50 else None
    sentence = re.split(r"\.\s", ans, maxsplit=1)[0]  # a decimal point has no space after it
    number = _PROSE_NUMBER.search(sentence[:60])
    if spans is not None:
        ans = spans
    elif "$" not in sentence and len(_WORD.findall(re.sub(r"\\[A-Za-z]+", "", sentence))) >= 3:
        if number is None:
            return None
        ans = number.group()
    elif final_only and number is None:
        return None  # "The final answer is above": no answer here, the box stands
    else:
        ans = _strip_delimiters(sentence)
    ans = ans.strip().rstrip(" .")
    return ans or None


def _extract(text: str, multi_box: str = "set") -> tuple[str | None, bool]:
    """``(answer, ok)``: ``(None, True)`` = no answer; ``(None, False)`` = unreadable answer."""
    if not isinstance(text, str):
        raise TypeError(f"response must be a string, got {type(text).__name__}")
    boxes, ok = _final_boxes(text)
    if not ok or (multi_box == "set" and len(boxes) > MAX_SET_BOXES):
        return None, False
    if boxes:
        # A "final answer ... is X" statement after the last box supersedes it (math-verify
        # gives the two patterns one priority and takes the rightmost match that parses).
        after = text[boxes[-1].end :]
        restated = _fallback_answer(after, final_only=True) if "answer" in after.lower() else None
        return (restated or _box_answer(boxes, multi_box)), True
    return _fallback_answer(text), True


def last_boxed(text: str) -> str | None:
    """The content of the last non-empty ``\\boxed{...}`` / ``\\fbox{...}`` in ``text`` (no fallbacks)."""
    boxes, ok = _final_boxes(text)
    return boxes[-1].content if ok and boxes else None


def boxed_answer(text: str) -> str | None:
    """The final answer of a worked solution (the MATH dataset's): its final boxes as a set.

    A gold solution that boxes several answers (``$\\boxed{1}$ and $\\boxed{2}$``) means
    all of them (``1, 2``); a single box is its content. None when there is no readable box.
    """
    boxes, ok = _final_boxes(text)
    return _box_answer(boxes, "set") if ok and boxes else None


def extract_answer(text: str, multi_box: str = "set") -> str | None:
    """The model's final answer in ``text``, or None.

    The content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces matched by a
    scan; empty boxes skipped), or of ``\\boxed X`` (space form: the non-space run after
    it). With ``multi_box="set"``, boxes joined to the last one by commas/"and"/"or" are
    read with it as a set (``a, b, c``); with ``"last"`` only the last box counts. A
    "final answer ... is X" line after the last box supersedes the box. Without a box, in
    order of preference within the last FALLBACK_TAIL_CHARS characters: the last "final
    answer ... is X", "the answer is X" or "Answer: X" (the first math span or sentence
    of its line, markdown bold removed, trailing period dropped). None when nothing is
    found, or when the last box is malformed (unclosed, over MAX_ANSWER_CHARS, nested
    deeper than MAX_NESTING). Work is bounded on any input size.
    """
    _check_multi_box(multi_box)
    return _extract(text, multi_box)[0]


# ---------------------------------------------------------------------------
# Normalisation (conservative: only rewrites that cannot change a value)
# ---------------------------------------------------------------------------

_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![A-Za-z])")
# A row break "\\" is matched first and kept: otherwise "a \\ b" loses the "\ " of its
# second backslash and a matrix written "\begin{bmatrix} a \\ b \end{bmatrix}" breaks.
_SPACING = re.compile(r"\\\\|\\[,!;: ]|\\quad|\\qquad")
_EULER = re.compile(r"\\(?:mathrm|operatorname|rm)\s*\{\s*e\s*\}|\\mathrm\s+e(?![A-Za-z])")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")
_THOUSANDS = re.compile(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
# MATH writes thousands separators as ",\!" and sometimes ",\! " (a space after the negative
# thin space): "32,\! 349". Rewritten to a plain "," before spacing is removed, so that the
# space does not survive and "32, 349" is not read as a list.
_THIN_THOUSANDS = re.compile(r"(?<=\d),\\!\s*(?=\d{3}(?!\d))")
_MIXED_FRAC = re.compile(r"(-?)(\d+)\s*\\frac\s*(?:\{\s*(\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))")
_MIXED_SLASH = re.compile(r"(-?)(\d+)\s+(\d+)\s*/\s*(\d+)")
_TEXT_WHOLE = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_INT = re.compile(r"[-+]?\d{1,60}")
_DEC = re.compile(r"[-+]?\d{1,60}(?:\.\d{1,60})?")
_FRAC = re.compile(
    r"([-+]?)\\frac\{([-+]?\d{1,60})\}\{(\d{1,60})\}|([-+]?\d{1,60})/(\d{1,60})|([-+]?)\\frac(\d)(\d)"
)
# "\sqrt[3]2": an indexed root takes one token without braces, as in LaTeX (math-verify
# only reads "\sqrt[3]{2}").
_BARE_ROOT = re.compile(r"\\sqrt\s*\[([^\[\]{}]{1,20})\]\s*(\d|[A-Za-z]|\\[A-Za-z]+)")
# Plain-text functions: "sqrt(3)" (math-verify's own rewrite of it turns "-1 + sqrt(3)" into
# "-1 +\\sqrt{3}", a line break: -1), and "sin(x)", "log(8)", read otherwise as products of letters.
_PLAIN_SQRT = re.compile(r"(?<![A-Za-z])\\?sqrt\s*(?=\()")
_PLAIN_FUNC = re.compile(r"(?<![A-Za-z\\])(sin|cos|tan|cot|sec|csc|arcsin|arccos|arctan|ln|log|exp)\s*(?=\()")
# A trailing percent sign, in any of its spellings: normalised to "\%" (see _percent_base).
_PERCENT_TAIL = re.compile(
    r"(.*?)\s*(?:\\?%|\\(?:text|textrm|mbox|mathrm)\s*\{\s*(?:\\?%|percent)\s*\}|(?<![A-Za-z])percent)", re.S
)
# One matrix, whatever its brackets: latex2sympy reads pmatrix, bmatrix and matrix, but
# "\begin{Bmatrix} 1 \\ 2 \end{Bmatrix}" (and smallmatrix) as its last row, 2. vmatrix/Vmatrix
# are determinants (latex2sympy's reading) and stay as written.
_MATRIX_ENV = re.compile(r"\\(begin|end)\s*\{\s*(?:bmatrix|Bmatrix|smallmatrix)\s*\}")
# "2 = x": a value equal to a lone variable is read as "x = 2", math-verify's form (a gold
# "x = 2" is compared by its right-hand side).
_LONE_VAR = (r"(?:[A-Za-z]|\\(?:alpha|beta|gamma|delta|epsilon|varepsilon|theta|vartheta|lambda|mu|nu|rho|"
             r"sigma|tau|phi|varphi|chi|psi|omega))(?:_\{?[A-Za-z0-9]+\}?)?'*")
_VALUE_EQ_VAR = re.compile(rf"(?P<value>[^=<>,;]+?)\s*=\s*(?P<var>{_LONE_VAR})")


_PY_EXPONENT = re.compile(r"-?(?:\d+(?:\.\d+)?|[A-Za-z])")  # "2**10", "2**-1", "x**n"


def _paren_group_end(s: str, i: int) -> int | None:
    """Index just past the parenthesis group opening at ``s[i] == '('``, or None if unclosed."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "(":
            depth += 1
        elif s[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _python_syntax(s: str) -> str:
    """Python powers and plain-text functions as LaTeX: ``2**(1/4)`` -> ``2^{(1/4)}``,
    ``2**10`` -> ``2^{10}`` (``2^10`` would be 2^1 then 0), ``sqrt(3)`` -> ``\\sqrt{3}``,
    ``log(8)`` -> ``\\log(8)``. Bounded: each rewrite consumes one ``**`` or ``sqrt``."""
    for _ in range(MAX_POWERS + 1):
        i = s.find("**")
        if i < 0:
            break
        j = i + 2
        while j < len(s) and s[j] == " ":
            j += 1
        end = _paren_group_end(s, j) if s.startswith("(", j) else None
        if end is None:
            m = _PY_EXPONENT.match(s, j)
            end = m.end() if m else None
        # Nothing to group ("2**" at the end, "2**{x}"): a plain "^", as written.
        s = s[:i] + ("^" + s[j:] if end is None else "^{" + s[j:end] + "}" + s[end:])
    for _ in range(20 if "sqrt" in s else 0):
        m = _PLAIN_SQRT.search(s)
        if not m:
            break
        end = _paren_group_end(s, m.end())
        if end is None:
            break
        s = s[: m.start()] + "\\sqrt{" + s[m.end() + 1 : end - 1] + "}" + s[end:]
    return _PLAIN_FUNC.sub(r"\\\1", s)


def _percent_base(s: str) -> str | None:
    """``X`` when the cleaned answer ``s`` is ``X\\%`` (a percentage), else None."""
    if s.endswith("\\%") and not s.endswith("\\\\%"):
        base = s[:-2].strip()
        return base or None
    return None


def _clean(s: str) -> str:
    """Value-preserving rewrites applied to both answers before any comparison.

    Surrounding math delimiters; ``\\dfrac``/``\\tfrac`` -> ``\\frac``; ``\\left``/``\\right``;
    LaTeX spacing (``\\,`` ``\\!`` ``\\;`` ``\\:`` ``\\quad``); ``\\$``; degree signs;
    ``{,}``; a trailing full stop; ``\\mathrm{e}`` -> ``e`` (Euler's number); thousands
    separators in a plain number (``1,000``, ``1,\\!000``, ``32,\\! 349`` -> ``1000``...,
    only for well-formed 3-digit groups); a mixed number (``4 4/9``, ``4\\frac{4}{9}``,
    proper fraction) -> ``\\frac{40}{9}``. Forms math-verify misreads: Python powers
    (``2**(1/4)`` -> ``2^{(1/4)}``) and plain-text functions (``sqrt(3)`` -> ``\\sqrt{3}``,
    ``log(8)`` -> ``\\log(8)``); ``\\sqrt[3]2`` -> ``\\sqrt[3]{2}``; bmatrix/Bmatrix/smallmatrix
    -> pmatrix; a trailing percent sign in any spelling (``%``, ``percent``,
    ``\\text{ percent}``) -> ``\\%``; ``2 = x`` -> ``x = 2`` (a lone variable on the right).
    """
    s = _strip_delimiters(s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _LEFT_RIGHT.sub("", s)
    s = _THIN_THOUSANDS.sub(",", s)
    s = _SPACING.sub(lambda m: m.group() if m.group() == "\\\\" else "", s)
    s = s.replace("\\$", "").replace("{,}", ",")
    s = _DEGREES.sub("", s)
    s = _EULER.sub("e", s)
    s = s.strip()
    while s.endswith(".") and not s.endswith("\\."):
        s = s[:-1].rstrip()
    if "(" in s or "**" in s:
        s = _python_syntax(s)
    if "\\sqrt" in s:
        s = _BARE_ROOT.sub(r"\\sqrt[\1]{\2}", s)
    if "matrix" in s:
        s = _MATRIX_ENV.sub(r"\\\1{pmatrix}", s)
    m = _PERCENT_TAIL.fullmatch(s) if s.endswith(("%", "percent", "}")) and ("%" in s or "percent" in s) else None
    if m and m.group(1).strip():
        s = m.group(1).strip() + "\\%"
    m = _VALUE_EQ_VAR.fullmatch(s) if "=" in s else None
    if m and not re.fullmatch(_LONE_VAR, m.group("value").strip()):
        s = f"{m.group('var')} = {m.group('value').strip()}"
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    m = _MIXED_FRAC.fullmatch(s)
    if m:
        sign, whole, num, den = m.group(1), int(m.group(2)), int(m.group(3) or m.group(4)), int(m.group(5) or m.group(6))
        if 0 < num < den:
            s = f"{sign}\\frac{{{whole * den + num}}}{{{den}}}"
    else:
        m = _MIXED_SLASH.fullmatch(s)
        if m:
            sign, whole, num, den = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
            if 0 < num < den:
                s = f"{sign}\\frac{{{whole * den + num}}}{{{den}}}"
    return s


def _canon(s: str) -> str:
    """``_clean`` plus the formatting-only differences the exact-match path ignores."""
    s = re.sub(r"\s+", "", s)
    m = _TEXT_WHOLE.fullmatch(s)
    if m:
        s = m.group(1)
    return s


def _rational(s: str) -> Fraction | None:
    """A plain integer, decimal or fraction (``3``, ``-0.5``, ``\\frac{1}{2}``, ``3/4``) as a Fraction."""
    if _DEC.fullmatch(s):
        return Fraction(s)
    m = _FRAC.fullmatch(s)
    if m:
        if m.group(3) is not None:
            num, den = int(m.group(2)), int(m.group(3))
            num = -num if m.group(1) == "-" else num
        elif m.group(8) is not None:  # \frac12
            num, den = int(m.group(7)), int(m.group(8))
            num = -num if m.group(6) == "-" else num
        else:
            num, den = int(m.group(4)), int(m.group(5))
        return Fraction(num, den) if den else None
    return None


_FAR = Fraction(1, 10_000)  # relative gap above which two plain numbers are surely different
_LIST = re.compile(r"([(\[])(.*)([)\]])", re.S)


def _numeric_list(s: str) -> tuple[str, list[Fraction], str] | None:
    """``(open, values, close)`` for a bracketed list of plain numbers (``[1, 2)``, ``(-1,\\frac12)``)."""
    m = _LIST.fullmatch(s)
    if not m or len(s) > 200:
        return None
    values = []
    for part in m.group(2).split(","):
        v = _rational(part.strip())
        if v is None:
            return None
        values.append(v)
    return m.group(1), values, m.group(3)


# ---------------------------------------------------------------------------
# Size guards
# ---------------------------------------------------------------------------

_POW_BASE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*\^\s*")
_FACTORIAL = re.compile(r"(\d+)\s*!")


def _nesting(s: str) -> tuple[int, bool]:
    """(max {[( nesting depth, braces balanced) of ``s``, escaped braces ignored."""
    depth = braces = max_depth = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c in "{[(":
            depth += 1
            max_depth = max(max_depth, depth)
            if c == "{":
                braces += 1
        elif c in "}])":
            depth = max(0, depth - 1)
            if c == "}":
                braces -= 1
                if braces < 0:
                    return max_depth, False
        i += 1
    return max_depth, braces == 0


def _exponent_group(s: str, i: int) -> str | None:
    """The exponent starting at ``s[i]``: a brace group's content or one character."""
    if i >= len(s):
        return None
    if s[i] == "{":
        content, ok = _match_brace(s, i)
        return content if ok else None
    return s[i]


def _log10_tower(s: str) -> float | None:
    """log10 of ``s`` if it is a pure numeric power tower (``9^{9^{9^9}}``, ``10^{100}``), else None."""
    s = s.strip()
    while s.startswith("{") and s.endswith("}"):
        content, ok = _match_brace(s, 0)
        if not ok or len(content) != len(s) - 2:
            break
        s = content.strip()
    m = _POW_BASE.match(s)
    if not m:
        return math.log10(float(s)) if _DEC.fullmatch(s) and float(s) > 0 else (0.0 if _DEC.fullmatch(s) else None)
    exp = _exponent_group(s, m.end())
    if exp is None:
        return None
    rest = s[m.end() + (len(exp) + 2 if s[m.end()] == "{" else 1) :]
    if rest.strip():
        return None
    exp_log = _log10_tower(exp)
    if exp_log is None:
        return None
    base = float(m.group(1))
    if base <= 1:
        return 0.0
    if exp_log > 15:
        return math.inf
    return (10.0**exp_log) * math.log10(base)


def _group_before(s: str, end: int) -> str | None:
    """Content of the bracket group that closes at ``s[end]`` (one of ``)]}``)."""
    close = s[end]
    opening = {")": "(", "]": "[", "}": "{"}[close]
    depth = 0
    for i in range(end, -1, -1):
        if s[i] == close:
            depth += 1
        elif s[i] == opening:
            depth -= 1
            if depth == 0:
                return s[i + 1 : end]
    return None


def _max_digits(s: str, level: int = 0) -> float:
    """Rough upper estimate of the decimal digits of the largest number ``s`` spells out.

    Counts literals and numeric powers, including powers of bracketed groups
    (``(10^{99})^{99}``) and towers (``9^{9^{9^9}}``). Symbolic powers (``x^{100}``) count 0.
    """
    best = float(max((len(d) for d in re.findall(r"\d+", s)), default=0))
    i = s.find("^")
    while i >= 0:
        exp = _exponent_group(s, i + 1)
        exp_log = _log10_tower(exp) if exp is not None else None
        if exp_log is not None:
            e = math.inf if exp_log > 15 else 10.0**exp_log
            j = i - 1
            while j >= 0 and s[j].isspace():
                j -= 1
            base_digits = 0.0
            if j >= 0 and s[j] in ")]}":
                inner = _group_before(s, j)
                if inner is not None:
                    base_digits = _max_digits(inner, level + 1) if level < 8 else math.inf
            else:
                m = re.search(r"(?<![\d.])(\d+(?:\.\d+)?)$", s[: j + 1])
                if m and float(m.group(1)) > 1:
                    base_digits = math.log10(float(m.group(1)))
            if base_digits > 0:
                best = max(best, base_digits * e)
        i = s.find("^", i + 1)
    return best


def _guard(s: str) -> str | None:
    """Why ``s`` must not reach sympy (a short reason), or None when it is safe."""
    if len(s) > MAX_ANSWER_CHARS:
        return f"answer longer than {MAX_ANSWER_CHARS} characters"
    depth, balanced = _nesting(s)
    if depth > MAX_NESTING:
        return f"nesting deeper than {MAX_NESTING}"
    if not balanced:
        return "unbalanced braces"
    if s.count("^") > MAX_POWERS:
        return f"more than {MAX_POWERS} powers"
    if _max_digits(s) > MAX_DIGITS:
        return f"a number with more than {MAX_DIGITS} digits"
    for m in _FACTORIAL.finditer(s):
        if len(m.group(1)) > 6 or int(m.group(1)) > MAX_FACTORIAL:
            return f"a factorial of a number above {MAX_FACTORIAL}"
    return None


# ---------------------------------------------------------------------------
# math-verify
# ---------------------------------------------------------------------------

_GOLD_CACHE: OrderedDict[str, list[Any]] = OrderedDict()
_GOLD_LOCK = threading.Lock()


class _Budget:
    """Per-answer time budget turned into math-verify's whole-second alarm timeouts."""

    def __init__(self, timeout_s: float, alarm: bool):
        self.deadline = time.monotonic() + timeout_s
        self.alarm = alarm

    def seconds(self) -> int | None:
        """Alarm seconds for the next math-verify call (None: alarms off); raises if spent."""
        if not self.alarm:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            from math_verify.errors import TimeoutException

            raise TimeoutException("grading budget spent")
        return max(1, math.ceil(left))


def _mv_parse(latex: str, budget: _Budget) -> list[Any]:
    from math_verify import parse

    return parse(f"${latex}$", parsing_timeout=budget.seconds(), raise_on_error=True)


def _parse_gold(gold: str, budget: _Budget) -> list[Any]:
    with _GOLD_LOCK:
        hit = _GOLD_CACHE.get(gold)
        if hit is not None:
            _GOLD_CACHE.move_to_end(gold)
            return hit
    parsed = _mv_parse(gold, budget)
    with _GOLD_LOCK:
        _GOLD_CACHE[gold] = parsed
        while len(_GOLD_CACHE) > GOLD_CACHE_SIZE:
            _GOLD_CACHE.popitem(last=False)
    return parsed


def _has_math(parsed: list[Any]) -> bool:
    return any(not isinstance(p, str) for p in parsed)


def gold_text(gold: str) -> str:
    """The gold answer as the grader reads it, math delimiters removed.

    A gold with boxes is its final boxes read as a set (``\\boxed{1} and \\boxed{2}`` ->
    ``1, 2``: a gold has no drafts, so this holds under either multi-box convention); a
    gold written as a worked answer without a box ("... Final Answer: The final answer is
    $28\\%$. I hope it is correct.") is its final-answer statement; any other gold is
    read whole.
    """
    if not isinstance(gold, str):
        raise TypeError(f"gold must be a string, got {type(gold).__name__}")
    g = gold.strip()
    if "\\boxed" in g or "\\fbox" in g:
        boxes, ok = _final_boxes(g)
        if ok and boxes:
            g = _box_answer(boxes, "set")
    elif _FALLBACK.search(g):
        g = _fallback_answer(g) or g
    return _clean(g)


def _close(a: Fraction, b: Fraction, rel_tol: float | None) -> bool:
    """``a`` and ``b`` within ``rel_tol`` of each other, relatively (``math.isclose``); False when off."""
    return rel_tol is not None and abs(a - b) <= Fraction(rel_tol) * max(abs(a), abs(b))


def _fast_verdict(extracted: str, gold: str, rel_tol: float | None = None) -> Verdict | None:
    """The verdict when it needs no math-verify (normalisation, fast paths, guards), else None."""
    pred = _clean(extracted)
    g = gold_text(gold)
    if not pred:
        return Verdict(False, "no_answer", extracted)
    if not g:
        return Verdict(False, "unparsable", extracted)
    if len(pred) > MAX_ANSWER_CHARS:
        return Verdict(False, "unparsable", extracted)
    # Fast paths: identical after normalisation; integer vs integer; equal plain rationals.
    if _canon(pred) == _canon(g):
        return Verdict(True, "correct", extracted)
    if _INT.fullmatch(pred) and _INT.fullmatch(g):
        ok = int(pred) == int(g) or _close(Fraction(pred), Fraction(g), rel_tol)
        return Verdict(ok, "correct" if ok else "wrong", extracted)
    rp, rg = _rational(pred), _rational(g)
    if rp is not None and rg is not None:
        if rp == rg or _close(rp, rg, rel_tol):
            return Verdict(True, "correct", extracted)
        if abs(rp - rg) > _FAR * max(1, abs(rp), abs(rg)):
            return Verdict(False, "wrong", extracted)  # far apart: no rounding makes them equal
    lp, lg = _numeric_list(pred), _numeric_list(g)
    if lp is not None and lg is not None:
        if lp == lg or (lp[0] == lg[0] and lp[2] == lg[2] and len(lp[1]) == len(lg[1])
                        and all(_close(a, b, rel_tol) for a, b in zip(lp[1], lg[1]))):
            return Verdict(True, "correct", extracted)
        if all(v.denominator == 1 for v in lp[1] + lg[1]) and rel_tol is None:
            return Verdict(False, "wrong", extracted)
    if _guard(pred) is not None or _guard(g) is not None:
        return Verdict(False, "unparsable", extracted)
    return None


def _judge(extracted: str, gold: str, timeout_s: float, alarm: bool, rel_tol: float | None = None) -> Verdict:
    """Compare an extracted answer with a gold answer (both raw strings)."""
    fast = _fast_verdict(extracted, gold, rel_tol)
    if fast is not None:
        return fast
    return _mv_judge(extracted, gold, timeout_s, alarm, rel_tol)


def _percent_forms(pred: str, g: str) -> tuple[list[str], list[str]]:
    """The texts to parse for each side. A percentage ``X\\%`` against a plain answer is
    ``X`` or ``X/100`` (math-verify's reading of ``50\\%``, here for any ``X``, so that
    ``\\frac{1}{2}\\%`` parses); two percentages compare ``X`` with ``X`` (50% is not 0.5%)."""
    pb, gb = _percent_base(pred), _percent_base(g)
    if pb is not None and gb is not None:
        return [pb], [gb]
    if pb is not None:
        return [pb, f"\\frac{{{pb}}}{{100}}"], [g]
    if gb is not None:
        return [pred], [gb, f"\\frac{{{gb}}}{{100}}"]
    return [pred], [g]


_ALT_SEP = re.compile(r",|;|\\text\{\s*,?\s*(?:or|and)\s*\}|(?<![A-Za-z\\])(?:or|and)(?![A-Za-z])")


def _alternatives(s: str) -> list[str]:
    """The top-level items of an answer set (``a, b or c``), split outside every bracket
    (``\\{`` ``\\}`` count as brackets); a single answer is one item."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        if s.startswith(("\\{", "\\}"), i):
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and (m := _ALT_SEP.match(s, i)):
            parts.append(s[start:i])
            start = i = m.end()
            continue
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts if p.strip()]


def _junk_alternative(pred: str, parsed: Any, budget: _Budget) -> bool:
    """Whether an item of the answer set ``pred`` has no mathematical reading. math-verify
    drops such items from a set (``?? or 0`` parses to 0), so junk plus one right value
    would pass; an item that does not parse makes the whole answer unparsable. ``parsed``
    is math-verify's reading of ``pred``: when it holds as many elements as ``pred`` has
    items (and no ``\\pm`` could have made two of one), nothing was dropped and the items
    are not parsed one by one."""
    from math_verify.errors import TimeoutException
    from sympy import FiniteSet

    parts = _alternatives(pred)
    if len(parts) < 2:
        return False
    n_parsed = len(parsed.args) if isinstance(parsed, FiniteSet) else 1
    if n_parsed >= len(parts) and "\\pm" not in pred and "\\mp" not in pred:
        return False
    for part in parts:
        try:
            if not _has_math(_mv_parse(part, budget)):
                return True
        except TimeoutException:
            raise  # the caller's verdict: timeout
        except Exception:  # noqa: BLE001 - odd LaTeX is junk
            return True
    return False


def _numerically_close(a: Any, b: Any, rel_tol: float) -> bool:
    """Two parsed answers that are both numbers (no free symbols) and within ``rel_tol``."""
    from sympy import Expr

    if not (isinstance(a, Expr) and isinstance(b, Expr)) or a.free_symbols or b.free_symbols:
        return False
    try:
        x, y = complex(a.evalf(30)), complex(b.evalf(30))
    except (TypeError, ValueError, OverflowError):
        return False
    if not all(math.isfinite(v) for v in (x.real, x.imag, y.real, y.imag)):
        return False
    return abs(x - y) <= rel_tol * max(abs(x), abs(y))


def _mv_judge(extracted: str, gold: str, timeout_s: float, alarm: bool, rel_tol: float | None = None) -> Verdict:
    """The math-verify comparison (for answers that passed ``_fast_verdict`` undecided)."""
    from math_verify import verify
    from math_verify.errors import TimeoutException

    pred = _clean(extracted)
    g = gold_text(gold)
    budget = _Budget(timeout_s, alarm)
    pred_forms, gold_forms = _percent_forms(pred, g)
    try:
        gold_parsed = [x for form in gold_forms for x in _parse_gold(form, budget)]
        pred_parsed = [x for form in pred_forms for x in _mv_parse(form, budget)]
    except TimeoutException:
        return Verdict(False, "timeout", extracted)
    except Exception:  # noqa: BLE001 - math-verify/sympy raise anything on odd LaTeX
        return Verdict(False, "unparsable", extracted)
    if not pred_parsed or (_has_math(gold_parsed) and not _has_math(pred_parsed)):
        return Verdict(False, "unparsable", extracted)
    timed_out = False
    matched = None  # the prediction's reading that matched
    # Pairwise, so that one failing comparison does not hide another, and a timeout is seen.
    for gp in gold_parsed:
        for pp in pred_parsed:
            try:
                if verify(gp, pp, timeout_seconds=budget.seconds(), raise_on_error=True) or (
                        rel_tol is not None and _numerically_close(gp, pp, rel_tol)):
                    matched = pp
                    break
            except TimeoutException:
                timed_out = True
                break
            except Exception:  # noqa: BLE001
                continue
        if timed_out or matched is not None:
            break
    if matched is not None:
        try:
            if _junk_alternative(pred, matched, budget):
                return Verdict(False, "unparsable", extracted)
        except TimeoutException:
            return Verdict(False, "timeout", extracted)
        return Verdict(True, "correct", extracted)
    return Verdict(False, "timeout" if timed_out else "wrong", extracted)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _check_timeout(timeout_s: float) -> float:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise ValueError(f"timeout_s must be a number > 0, got {timeout_s!r}")
    return float(timeout_s)


def _check_rel_tol(rel_tol: float | None) -> float | None:
    if rel_tol is None:
        return None
    if isinstance(rel_tol, bool) or not isinstance(rel_tol, (int, float)) or not 0 < rel_tol < 1:
        raise ValueError(f"rel_tol must be None or a number in (0, 1), got {rel_tol!r}")
    return float(rel_tol)


def grade(response: str, gold: str, *, timeout_s: float = 5.0, multi_box: str = "set",
          rel_tol: float | None = None) -> Verdict:
    """Grade one response against a gold answer (see the module docstring).

    ``multi_box`` (one of MULTI_BOX_MODES) is how several boxes in the response are read.

    ``rel_tol`` (off by default): numbers within this relative tolerance are equal
    (``|a - b| <= rel_tol * max(|a|, |b|)``, as ``math.isclose``; Qwen's graders use 1e-4),
    for plain numbers and for any two answers that evaluate to numbers.

    ``timeout_s`` bounds math-verify's work on this answer via ``signal.alarm`` in the
    main thread (whole seconds, at least 1). Off the main thread the alarms are disabled
    and only the size guards bound the work (no exception is raised); use
    ``Grader(workers=N)`` for a hard bound there.
    """
    timeout_s = _check_timeout(timeout_s)
    rel_tol = _check_rel_tol(rel_tol)
    extracted, ok = _extract(response, _check_multi_box(multi_box))
    if not ok:
        return Verdict(False, "unparsable", None)
    if extracted is None:
        return Verdict(False, "no_answer", None)
    return _judge(extracted, gold, timeout_s, alarm=_in_main_thread(), rel_tol=rel_tol)


# ---------------------------------------------------------------------------
# Batch grading: cache + optional worker processes
# ---------------------------------------------------------------------------


class CacheStats(NamedTuple):
    hits: int
    misses: int


def _worker_judge(extracted: str, gold: str, timeout_s: float, rel_tol: float | None = None) -> Verdict:
    # A pool worker runs tasks in its main thread, so math-verify's alarms work here.
    return _mv_judge(extracted, gold, timeout_s, alarm=True, rel_tol=rel_tol)


def _worker_ready() -> bool:
    # Warm the worker (antlr parser, sympy caches) before any item's clock starts.
    _mv_judge(r"\sqrt{8}", r"2\sqrt{2}", 60.0, alarm=True)
    return True


class Grader:
    """Grades batches with an LRU cache keyed by (extracted answer, gold answer).

    ``multi_box`` (one of MULTI_BOX_MODES) is how several boxes in a response are read;
    ``rel_tol`` (None: off) is the relative tolerance of :func:`grade`.

    ``workers=0`` grades in this process (math-verify alarms when called from the main
    thread, size guards only elsewhere). ``workers>0`` grades in that many worker
    processes (a ``ProcessPoolExecutor`` on the forkserver start method, so it is safe
    next to torch threads); each item gets a hard deadline of ``timeout_s`` plus
    ``grace_s`` from its start, and a worker that overruns is killed: that item is a
    ``timeout``, the other items in flight are re-run in a fresh pool. An item whose
    worker crashes the pool twice (once alone) is ``unparsable``. Answers that need no
    sympy (the fast paths and guards of :func:`grade`) are decided in this process.

    Not thread-safe: use one Grader per thread. The forkserver is told to preload
    ``asymcli.grading`` and ``math_verify`` (a process-wide setting of multiprocessing).
    """

    def __init__(self, workers: int = 0, timeout_s: float = 5.0, *, cache_size: int = 100_000, grace_s: float = 2.0,
                 multi_box: str = "set", rel_tol: float | None = None):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.workers = workers
        self.multi_box = _check_multi_box(multi_box)
        self.rel_tol = _check_rel_tol(rel_tol)
        self.timeout_s = _check_timeout(timeout_s)
        self.grace_s = float(grace_s)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], Verdict] = OrderedDict()
        self._hits = 0
        self._misses = 0
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self._worker = _worker_judge  # the function a pool worker runs (tests swap it)

    # -- public ---------------------------------------------------------------------------

    @property
    def stats(self) -> CacheStats:
        """Cache hits and misses so far (an item repeated within one batch is a hit)."""
        return CacheStats(self._hits, self._misses)

    def grade(self, response: str, gold: str) -> Verdict:
        return self.grade_many([response], [gold])[0]

    def grade_many(self, responses: Sequence[str], golds: Sequence[str]) -> list[Verdict]:
        """One Verdict per (response, gold) pair, in order."""
        if self._closed:
            raise RuntimeError("Grader is closed")
        if len(responses) != len(golds):
            raise ValueError(f"got {len(responses)} responses but {len(golds)} gold answers")
        out: list[Verdict | None] = [None] * len(responses)
        todo: dict[tuple[str, str], list[int]] = {}
        for i, (response, gold) in enumerate(zip(responses, golds)):
            if not isinstance(gold, str):
                raise TypeError(f"gold answer {i} must be a string, got {type(gold).__name__}")
            extracted, ok = _extract(response, self.multi_box)
            if not ok:
                out[i] = Verdict(False, "unparsable", None)
                continue
            if extracted is None:
                out[i] = Verdict(False, "no_answer", None)
                continue
            key = (extracted, gold)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._hits += 1
                out[i] = cached
            elif key in todo:
                self._hits += 1
                todo[key].append(i)
            else:
                self._misses += 1
                todo[key] = [i]
        keys = list(todo)
        if keys:
            if self.workers > 0:
                # Decide what needs no sympy here; only the rest pays the trip to a worker.
                fast = [_fast_verdict(e, g, self.rel_tol) for e, g in keys]
                slow = [key for key, v in zip(keys, fast) if v is None]
                slow_verdicts = iter(self._judge_in_pool(slow) if slow else [])
                verdicts = [v if v is not None else next(slow_verdicts) for v in fast]
            else:
                alarm = _in_main_thread()
                verdicts = [_judge(e, g, self.timeout_s, alarm, self.rel_tol) for e, g in keys]
            for key, verdict in zip(keys, verdicts):
                self._remember(key, verdict)
                for i in todo[key]:
                    out[i] = verdict
        assert all(v is not None for v in out)
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the worker processes (if any). Idempotent."""
        self._closed = True
        self._shutdown_pool(kill=False)

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _remember(self, key: tuple[str, str], verdict: Verdict) -> None:
        if self.cache_size == 0 or verdict.reason == "timeout":
            return  # a timeout may be load-dependent: grade it again next time
        self._cache[key] = verdict
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            ctx = multiprocessing.get_context("forkserver")
            # Workers fork from a server that has already imported math-verify (fast starts).
            ctx.set_forkserver_preload(["asymcli.grading", "math_verify"])
            ex = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
            # Start every worker and import math-verify before any item's clock starts.
            for f in [ex.submit(_worker_ready) for _ in range(self.workers)]:
                f.result(timeout=120)
            self._executor = ex
        return self._executor

    def _shutdown_pool(self, kill: bool) -> None:
        ex, self._executor = self._executor, None
        if ex is None:
            return
        procs = list(getattr(ex, "_processes", {}).values())  # no public API to kill workers
        if kill:
            for p in procs:
                if p.is_alive():
                    p.kill()
        ex.shutdown(wait=not kill, cancel_futures=True)
        if kill:
            for p in procs:
                p.join(timeout=5)

    def _judge_in_pool(self, keys: list[tuple[str, str]]) -> list[Verdict]:
        """Grade ``keys`` in worker processes; at most ``workers`` items in flight, so each
        item's start time is known and an overrunning item can be singled out."""
        results: list[Verdict | None] = [None] * len(keys)
        queue = deque(range(len(keys)))
        suspects: set[int] = set()  # were in flight when the pool broke: re-run alone
        inflight: dict[Future[Verdict], tuple[int, float]] = {}
        hard = self.timeout_s + self.grace_s
        while queue or inflight:
            while queue and len(inflight) < self.workers:
                i = queue[0]
                alone = i in suspects
                if alone and inflight:
                    break
                queue.popleft()
                f = self._pool().submit(self._worker, keys[i][0], keys[i][1], self.timeout_s, self.rel_tol)
                inflight[f] = (i, time.monotonic())
                if alone:
                    break
            now = time.monotonic()
            wait_s = max(0.0, min(start for _, start in inflight.values()) + hard - now)
            done, _ = wait(list(inflight), timeout=wait_s, return_when=FIRST_COMPLETED)
            broken = False
            for f in done:
                i, _ = inflight.pop(f)
                try:
                    results[i] = f.result()
                except BrokenProcessPool:
                    broken = True
                    if i in suspects:
                        results[i] = Verdict(False, "unparsable", keys[i][0])
                    else:
                        suspects.add(i)
                        queue.appendleft(i)
            now = time.monotonic()
            overdue = [f for f, (_, start) in inflight.items() if now - start > hard]
            if overdue or broken:
                for f in overdue:
                    i, _ = inflight.pop(f)
                    results[i] = Verdict(False, "timeout", keys[i][0])
                for f, (i, _) in inflight.items():  # innocent bystanders: run again
                    if broken:
                        suspects.add(i)
                    queue.appendleft(i)
                inflight.clear()
                self._shutdown_pool(kill=True)
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]
