"""How often reasoning-gym's own score_answer and the math grader disagree (docs/grading.md).

For each numeric-answer generator below: N items (seed 0), and for each item a few responses
(the gold answer, equal forms of it, and near misses), each boxed. The reward is the
generator's score_answer >= 1.0 (grading.rg_threshold's default); the math grader (asymcli.grading.grade)
decides the same pair beside it (asymcli/grading/rg.py). Prints a Markdown table and the
disagreeing pairs.   Usage: python bench/rg_agreement.py [N]
"""

from __future__ import annotations

import sys
from fractions import Fraction

from asymcli.config import GeneratorSpec
from asymcli import rg_tasks as rg
from asymcli.grading.rg import NUMERIC, RGScorer

GENERATORS = ["basic_arithmetic", "chain_sum", "gcd", "lcm", "products", "count_bits", "number_sequence",
              "letter_counting", "fraction_simplification", "decimal_arithmetic", "coin_flip", "simple_equations"]


def variants(gold: str) -> list[str]:
    """The gold, equal forms of it, and near misses."""
    out = [gold, f"{gold}.0" if "." not in gold and "/" not in gold else gold + "0", f" {gold} "]
    try:
        v = Fraction(gold)
        out += [str(float(v)), f"{v.numerator}/{v.denominator}" if v.denominator != 1 else f"{2 * v}/2",
                str(v + 1), str(-v) if v else "1"]
    except (ValueError, ZeroDivisionError):
        pass
    return out


def main(n: int = 20) -> None:
    print("| generator | pairs | both right | both wrong | score_answer only | math grader only |")
    print("|---|---:|---:|---:|---:|---:|")
    shown = []
    for name in GENERATORS:
        rows = [r for r in rg.generate([GeneratorSpec(name, 1.0, {})], n, 0) if NUMERIC.match(r["answer"].strip())]
        s = RGScorer()
        both = neither = 0
        for row in rows:
            for v in variants(row["answer"]):
                before = len(s.disagreements)
                _, verdict = s.score(f"The answer is \\boxed{{{v}}}", row)
                if len(s.disagreements) == before:
                    both += verdict.correct
                    neither += not verdict.correct
        rg_only = sum(d["rg"] for d in s.disagreements)
        math_only = len(s.disagreements) - rg_only
        print(f"| {name} | {s.checked} | {both} | {neither} | {rg_only} | {math_only} |")
        seen = set()
        for d in s.disagreements:
            key = (d["generator"], d["rg"])
            if key not in seen:
                seen.add(key)
                shown.append(d)
    print()
    for d in shown:
        print(f"- {d['generator']}: gold `{d['gold']}`, answer `{d['extracted']}`: score_answer {d['score']:.3g} "
              f"({'right' if d['rg'] else 'wrong'}), math grader {'right' if d['math'] else 'wrong'}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
