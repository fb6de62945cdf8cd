"""Grader throughput on MATH-style answers: answers graded per second, uncached and cached.

    python bench/grader_bench.py [--n 2000] [--workers 0 2] [--seed 0]

A seeded mix of gold answers (integers, fractions, radicals, intervals, tuples, pi
expressions, polynomials, text; weighted roughly like MATH-500, see KIND_WEIGHTS) and responses: correct in the gold's own form, correct in
an equivalent form (0.5 for 1/2, \\sqrt{18} for 3\\sqrt{2}), wrong, no answer, unreadable;
a share of them long, with reasoning text before the box. Problems are sampled k=5 times,
as in an Avg@5 evaluation, so gold answers repeat.

"uncached": a fresh Grader, every (answer, gold) pair distinct, module gold cache cleared.
"cached": the same batch graded again by the same Grader (every pair a cache hit).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asymcli import grading  # noqa: E402
from asymcli.grading import Grader  # noqa: E402

REASONING = (
    "Let us set up the problem. We denote the unknown by $x$ and write the given condition as an "
    "equation. Expanding both sides and collecting like terms gives a quadratic, which we factor. "
    "Checking each root against the constraints, only one survives. "
)


#: Answer kinds, weighted roughly like MATH-500's gold answers (mostly integers).
#: "thousands" and "set" are the MATH-500/OlympiadBench forms of issue 13 (``32,\\! 349``; an
#: answer set written as several boxes).
KIND_WEIGHTS = {"int": 50, "neg": 6, "frac": 12, "sqrt": 8, "pi": 4, "interval": 4, "tuple": 5, "poly": 7, "text": 4,
                "thousands": 3, "set": 3}


def _gold_and_variants(rng: random.Random) -> tuple[str, list[str], list[str]]:
    """(gold, equivalent forms, wrong answers) for one random problem."""
    kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
    if kind == "int":
        n = rng.randint(0, 999)
        return str(n), [str(n), f"{n}.0" if n % 3 else f"{n}"], [str(n + rng.randint(1, 9)), str(n * 2 + 1)]
    if kind == "neg":
        n = rng.randint(1, 99)
        return f"-{n}", [f"-{n}", f"- {n}"], [str(n), f"-{n + 1}"]
    if kind == "frac":
        a, b = rng.choice([(1, 2), (3, 4), (2, 5), (7, 8), (5, 16)])
        return f"\\frac{{{a}}}{{{b}}}", [f"\\dfrac{{{a}}}{{{b}}}", str(a / b), f"{a}/{b}"], [f"\\frac{{{b}}}{{{a}}}", str(a / b + 1)]
    if kind == "sqrt":
        k, m = rng.choice([(3, 2), (2, 3), (5, 2), (2, 7)])
        return f"{k}\\sqrt{{{m}}}", [f"\\sqrt{{{k * k * m}}}", f"{k}\\sqrt{{{m}}}"], [f"{k + 1}\\sqrt{{{m}}}", f"\\sqrt{{{m}}}"]
    if kind == "interval":
        a, b = sorted(rng.sample(range(-9, 10), 2))
        return f"[{a}, {b})", [f"[{a},{b})", f"\\left[{a}, {b}\\right)"], [f"({a}, {b})", f"[{a}, {b}]"]
    if kind == "tuple":
        a, b = rng.randint(-5, 5), rng.randint(-5, 5)
        return f"({a}, {b})", [f"({a},{b})", f"\\left({a}, {b}\\right)"], [f"({b + 1}, {a})", f"({a}, {b + 2})"]
    if kind == "pi":
        a = rng.randint(2, 9)
        return f"\\frac{{\\pi}}{{{a}}}", [f"\\pi/{a}", f"\\dfrac{{\\pi}}{{{a}}}"], [f"\\frac{{\\pi}}{{{a + 1}}}", f"{a}\\pi"]
    if kind == "poly":
        a = rng.randint(1, 6)
        return f"x^2+{2 * a}x+{a * a}", [f"(x+{a})^2", f"x^2 + {2 * a}x + {a * a}"], [f"(x-{a})^2", f"x^2+{a * a}"]
    if kind == "thousands":
        n = rng.randint(1000, 99999)
        sep = f"{n // 1000},\\! {n % 1000:03d}"
        return str(n), [sep, f"{n // 1000},\\!{n % 1000:03d}", str(n)], [f"{n // 1000},\\! {(n + 7) % 1000:03d}", str(n // 1000)]
    if kind == "set":
        a, b = sorted(rng.sample(range(-9, 10), 2))
        # "a} and \boxed{b" inside the bench's one \boxed{...} makes two joined boxes.
        return f"{a}, {b}", [f"{b}}} and \\boxed{{{a}", f"{a}, {b}"], [f"{a}}} and \\boxed{{{b + 1}", str(b)]
    word = rng.choice(["Monday", "Tuesday", "Alice", "Bob"])
    return f"\\text{{{word}}}", [word, f"\\text{{{word}}}"], [rng.choice(["Friday", "Carol"])]


def make_batch(n: int, k: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` responses with golds: 85% with a boxed answer (every (answer, gold) pair distinct,
    45/40 correct/wrong), 10% without an answer, 5% with an unclosed box; problems drawn
    ``k`` times in a row as in an Avg@k evaluation; half the responses carry long reasoning."""
    rng = random.Random(seed)
    n_graded = round(0.85 * n)
    n_none = round(0.10 * n)
    items: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    step = 0

    def text(body: str) -> str:
        nonlocal step
        step += 1
        prefix = REASONING * rng.randint(1, 12) if rng.random() < 0.5 else "Quick check. "
        return f"{prefix}(step {step}) {body}"  # the step number keeps every response distinct

    tries = 0
    while len(items) < n_graded:
        tries += 1
        if tries > 200 * n:
            raise SystemExit(f"could not draw {n_graded} distinct answer/gold pairs; lower --n")
        gold, same, wrong = _gold_and_variants(rng)
        for _ in range(k):
            answer = rng.choice(same) if rng.random() < 45 / 85 else rng.choice(wrong)
            if (answer, gold) in seen or len(items) >= n_graded:
                continue
            seen.add((answer, gold))
            items.append((text(f"Therefore the answer is $\\boxed{{{answer}}}$."), gold))
    golds = [g for _, g in items]
    for i in range(n - n_graded):
        body = "I could not finish the computation." if i < n_none else "So the answer is \\boxed{\\frac{1}{"
        items.append((text(body), rng.choice(golds)))
    rng.shuffle(items)
    return [r for r, _ in items], [g for _, g in items]


def run(n: int, workers: int, seed: int) -> dict[str, float]:
    responses, golds = make_batch(n, k=5, seed=seed)
    grading.verify._GOLD_CACHE.clear()
    with Grader(workers=workers) as g:
        if workers:
            g._pool()  # start the workers outside the timed region
        t0, c0 = time.perf_counter(), time.process_time()
        first = g.grade_many(responses, golds)
        uncached, cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        second = g.grade_many(responses, golds)
        cached = time.perf_counter() - t0
        assert first == second
        misses = g.stats.misses
    reasons: dict[str, int] = {}
    for v in first:
        reasons[v.reason] = reasons.get(v.reason, 0) + 1
    chars = sum(map(len, responses)) / len(responses)
    print(f"workers={workers}: {len(responses)} answers (mean {chars:.0f} chars), {misses} distinct pairs; "
          f"verdicts {dict(sorted(reasons.items()))}")
    cpu_note = f"; {len(responses) / cpu:.0f} per CPU-second of this process" if not workers else ""
    print(f"  uncached: {len(responses) / uncached:8.0f} answers/s  ({uncached:.2f} s{cpu_note})")
    print(f"  cached:   {len(responses) / cached:8.0f} answers/s  ({cached * 1000:.1f} ms)")
    return {"uncached": len(responses) / uncached, "cached": len(responses) / cached}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="answers per measurement")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="Grader worker counts to measure")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    # Warm imports and parsers once, outside every timed region.
    grading.grade(r"\boxed{\sqrt{8}}", r"2\sqrt{2}")
    import os

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other processes slow the wall-clock figures)")
    for w in args.workers:
        run(args.n, w, args.seed)


if __name__ == "__main__":
    main()
