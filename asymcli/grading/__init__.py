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

The package, by job (each module imports only the ones above it):

- :mod:`.verdict`: the verdict, its reasons, the size limits, the option checks;
- :mod:`.extract`: the final answer of a response (boxes, answer sets, fallbacks);
- :mod:`.normalize`: conservative normalisation and exact numeric reading;
- :mod:`.guards`: the size guards that keep sympy bounded;
- :mod:`.verify`: :func:`grade`, one (response, gold) pair, math-verify under a budget;
- :mod:`.pool`: :class:`Grader`, many pairs, cached, optionally in worker processes.
"""

from __future__ import annotations

from .extract import boxed_answer, extract_answer, last_boxed
from .pool import CacheStats, Grader, grade_rows
from .verdict import (FALLBACK_TAIL_CHARS, MAX_ANSWER_CHARS, MAX_BOX_CANDIDATES, MAX_DIGITS, MAX_FACTORIAL,
                      MAX_NESTING, MAX_POWERS, MAX_SET_BOXES, MULTI_BOX_MODES, REASONS, Verdict)
from .verify import GOLD_CACHE_SIZE, gold_text, grade

__all__ = [
    "FALLBACK_TAIL_CHARS", "GOLD_CACHE_SIZE", "MAX_ANSWER_CHARS", "MAX_BOX_CANDIDATES", "MAX_DIGITS",
    "MAX_FACTORIAL", "MAX_NESTING", "MAX_POWERS", "MAX_SET_BOXES", "MULTI_BOX_MODES", "REASONS", "CacheStats",
    "Grader", "Verdict", "boxed_answer", "extract_answer", "gold_text", "grade", "grade_rows", "last_boxed",
]
