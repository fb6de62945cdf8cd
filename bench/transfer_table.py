"""Which of the arithmetic testbed's claims transfer to another task (issue 27).

Reads two or more claims.json files written by ``asym claims`` (the first is the reference,
the arithmetic testbed) and prints one markdown table: for every check the reference has,
matched by its label, each task's n, mean paired difference, 95% CI, p, verdict and, for
the checks that do not hold, the minimum detectable effect (80% power) at that task's spread.
"transfers" is written only where the check holds on the reference and on the task; a check
that holds on the reference and is inconclusive on the task says "not shown (MDE ...)",
one that goes the other way says "reversed". Nothing is pooled across tasks: they are
different experiments.

    python bench/transfer_table.py docs/results/mechanism-bundled/claims.json \
        letter_counting=docs/results/mechanism-rg/letter_counting/claims.json \
        spell_backward=docs/results/mechanism-rg/spell_backward/claims.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def checks(path: Path) -> dict[str, dict]:
    d = json.loads(path.read_text())
    return {ch["label"]: {**ch, "claim": c["id"]} for c in d["claims"] for ch in c["checks"]}


def num(x: float | None, fmt: str = "{:+.3g}") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def cell(ch: dict | None) -> str:
    if ch is None or not ch.get("n"):
        return "not run"
    s = f"{num(ch['mean'])} [{num(ch['ci_low'])}, {num(ch['ci_high'])}], p = {num(ch['p'], '{:.2g}')}, " \
        f"n = {ch['n']}: **{ch['verdict']}**"
    if ch["verdict"] != "holds" and ch.get("mde") is not None:
        s += f" (MDE {ch['mde']:.3g})"
    return s


def transfer(ref: dict | None, task: dict | None) -> str:
    if ref is None or task is None or not ref.get("n") or not task.get("n"):
        return "–"
    if ref["verdict"] != "holds":
        return "not shown on arithmetic"
    if task["verdict"] == "holds":
        return "transfers"
    if task.get("p_opposite") is not None and task["p_opposite"] < 0.05:
        return "reversed"
    return f"not shown (MDE {task['mde']:.3g})" if task.get("mde") is not None else "not shown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference", type=Path, help="the arithmetic testbed's claims.json")
    ap.add_argument("tasks", nargs="+", help="name=claims.json per task")
    args = ap.parse_args()
    ref = checks(args.reference)
    tasks = []
    for t in args.tasks:
        name, _, path = t.partition("=")
        if not path:
            raise SystemExit(f"{t}: expected name=path/to/claims.json")
        tasks.append((name, checks(Path(path))))
    head = ["claim", "check", "arithmetic", *(f"{n}" for n, _ in tasks), *(f"{n}: transfers?" for n, _ in tasks)]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, r in ref.items():
        if not any(label in tc for _, tc in tasks):
            continue
        row = [r["claim"], f"{label} ({r['unit']}, claimed {r['claimed']})", cell(r)]
        row += [cell(tc.get(label)) for _, tc in tasks]
        row += [transfer(r, tc.get(label)) for _, tc in tasks]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
