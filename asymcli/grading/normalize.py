"""Conservative normalisation of an extracted answer before comparison: spacing, thousands
separators, mixed numbers, Euler's e, Python syntax; plain numbers and numeric lists read exactly."""

from __future__ import annotations

import re
from fractions import Fraction

from .verdict import MAX_POWERS
from .extract import _strip_delimiters


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
