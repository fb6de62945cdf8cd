"""Size guards: an answer too long, too deeply nested, or naming an astronomically large number
(power towers, huge factorials) is unparsable before any sympy operation can run unboundedly long."""

from __future__ import annotations

import math
import re

from .verdict import MAX_ANSWER_CHARS, MAX_DIGITS, MAX_FACTORIAL, MAX_NESTING, MAX_POWERS
from .extract import _match_brace
from .normalize import _DEC


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
