"""Reading the final answer out of a response or a worked gold solution: the final boxes
(brace-matching scan), answer sets, and the "final answer is X" fallbacks."""

from __future__ import annotations

import re
from typing import NamedTuple

from .verdict import (FALLBACK_TAIL_CHARS, MAX_ANSWER_CHARS, MAX_BOX_CANDIDATES, MAX_NESTING, MAX_SET_BOXES,
                      _check_multi_box)


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
