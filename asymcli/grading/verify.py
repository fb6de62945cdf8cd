"""The verdict for one (response, gold) pair: exact and numeric fast paths, then math-verify
(``math_verify.parse`` / ``verify``) under a time budget; percentages and answer alternatives."""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from fractions import Fraction
from typing import Any

from .verdict import MAX_ANSWER_CHARS, Verdict, _check_multi_box, _check_rel_tol
from .extract import _FALLBACK, _box_answer, _extract, _fallback_answer, _final_boxes
from .normalize import _FAR, _INT, _canon, _clean, _numeric_list, _rational
from .guards import _guard


GOLD_CACHE_SIZE = 4096  # parsed gold answers kept per process


def _percent_base(s: str) -> str | None:
    """``X`` when the cleaned answer ``s`` is ``X\\%`` (a percentage), else None."""
    if s.endswith("\\%") and not s.endswith("\\\\%"):
        base = s[:-2].strip()
        return base or None
    return None


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
