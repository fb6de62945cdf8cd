"""How often the grader agrees with math-verify's and lighteval's own expected verdicts.

    python bench/grader_agreement.py [--cases tests/data/grader_upstream_cases.jsonl] [--show-disagreements]
                                     [--grading-module FILE]

The cases are the upstream suites' (gold, prediction, expected) tables, collected by
bench/collect_grader_cases.py with a citation per row. For each case three verdicts are
compared with the expected one:

- ``ours``: ``asymcli.grading.grade(response, gold)`` under each multi-box convention;
- ``math-verify``: ``verify(parse(gold), parse(response))`` with math-verify's defaults, on
  the same response our grader sees;
- ``math-verify (upstream text)``: the same on the suite's own prediction text.

"boxed answers" are the rows whose response has a box, a "final answer" line, or is only
an answer (put in a box by the collector); ``free_text`` rows (a number somewhere in prose,
no box) are reported apart: the grader reads no answer out of free prose, by design.
A disagreement where the suite expects 0 and a grader says 1 is a false accept.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asymcli import grading  # noqa: E402

DEFAULT_CASES = Path(__file__).resolve().parents[1] / "tests" / "data" / "grader_upstream_cases.jsonl"
BOXED_FORMS = ("boxed", "answer_line", "answer_only")


def load_cases(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def math_verify_default(gold: str, pred: str) -> int:
    """math-verify with its defaults (parse's default extraction configs, verify's defaults)."""
    from math_verify import parse, verify

    try:
        return int(verify(parse(gold), parse(pred)))
    except Exception:  # noqa: BLE001 - a crash is a "no" for a grader
        return 0


def load_grading(path: str | None) -> ModuleType:
    """asymcli.grading, or a grading module from a file (an older version, to compare)."""
    if path is None:
        return grading
    spec = importlib.util.spec_from_file_location("grading_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def score(cases: list[dict], grader: ModuleType = grading) -> dict[str, list[int]]:
    """Per grader name, its 0/1 verdict on every case (in order)."""
    out: dict[str, list[int]] = {}
    modes = getattr(grader, "MULTI_BOX_MODES", None)
    if modes is None:  # a grader from before the multi-box switch
        out["ours"] = [int(grader.grade(c["response"], c["gold"]).correct) for c in cases]
    for multi_box in modes or ():
        out[f"ours (multi_box={multi_box})"] = [
            int(grader.grade(c["response"], c["gold"], multi_box=multi_box).correct) for c in cases]
    out["math-verify defaults"] = [math_verify_default(c["gold"], c["response"]) for c in cases]
    out["math-verify defaults (upstream text)"] = [math_verify_default(c["gold"], c["pred"]) for c in cases]
    return out


def report(cases: list[dict], verdicts: dict[str, list[int]], show: bool) -> None:
    subsets = {
        "boxed answers": [i for i, c in enumerate(cases) if c["form"] in BOXED_FORMS],
        "free_text": [i for i, c in enumerate(cases) if c["form"] == "free_text"],
        "all": list(range(len(cases))),
    }
    print(f"{'grader':40s} " + " ".join(f"{name + f' (n={len(idx)})':>22s}" for name, idx in subsets.items())
          + "   false accepts (boxed)")
    for name, v in verdicts.items():
        cells = []
        for idx in subsets.values():
            agree = sum(v[i] == cases[i]["expected"] for i in idx)
            cells.append(f"{agree:4d} = {100 * agree / max(1, len(idx)):5.1f}%")
        fa = sum(v[i] == 1 and cases[i]["expected"] == 0 for i in subsets["boxed answers"])
        print(f"{name:40s} " + " ".join(f"{c:>22s}" for c in cells) + f"   {fa}")
    if show:
        for name, v in verdicts.items():
            print(f"\n{name}: disagreements on boxed answers")
            for i in subsets["boxed answers"]:
                if v[i] != cases[i]["expected"]:
                    c = cases[i]
                    resp = c["response"] if len(c["response"]) < 120 else "..." + c["response"][-117:]
                    print(f"  #{c['id']} {c['source']} expected={c['expected']} gold={c['gold'][:60]!r} "
                          f"response={resp!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=str(DEFAULT_CASES))
    ap.add_argument("--show-disagreements", action="store_true")
    ap.add_argument("--grading-module", help="grade with this file instead of asymcli/grading/ "
                    "(e.g. git show 43a3eaf:asymcli/grading.py > /tmp/grading_old.py)")
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
    cases = load_cases(args.cases)
    t0 = time.perf_counter()
    verdicts = score(cases, load_grading(args.grading_module))
    print(f"{len(cases)} cases from {args.cases}; graded in {time.perf_counter() - t0:.1f} s")
    report(cases, verdicts, args.show_disagreements)


if __name__ == "__main__":
    main()
