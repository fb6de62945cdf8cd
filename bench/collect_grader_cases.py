"""Collect (gold, prediction, expected verdict) cases from math-verify's and lighteval's tests.

    python bench/collect_grader_cases.py MATH_VERIFY_GIT LIGHTEVAL_GIT [--out tests/data/grader_upstream_cases.jsonl]

Each argument is a git directory (a clone or a bare mirror) of huggingface/Math-Verify and
huggingface/lighteval; the files are read at HEAD with ``git show``, nothing is imported or
run. Every ``@pytest.mark.parametrize`` table whose test calls ``compare_strings(gold, pred,
...)`` (or ``verify(parse(gold), parse(pred))``) is read with ``ast``: one row per table entry,
with the repository, commit, file and line of the entry, the test's name, the options the test
passes (``match_types``, ``precision``, ``strict``, ``allow_set_relation_comp``) and the
expected verdict as the suite states it. Rows are kept when they grade a math answer:
multiple-choice letters (``NativeLetters``), non-English and non-default ``strict`` /
``allow_set_relation_comp`` settings are left out (they test other conventions), and a
(gold, prediction) pair that lighteval copied from math-verify is kept once, citing both.

Each row also gets ``response``: what our grader is handed. A prediction with a box or a
"final answer" line is used as it is; a prediction that is only an answer (a math span such
as ``$\\frac12$``, or a short expression) is put in ``\\boxed{...}``, since the grader reads
the final answer from a box (the prompt asks for one); a longer text with neither is kept
verbatim and marked ``form: free_text`` (math-verify reads numbers out of free text; our
grader does not, by design). bench/grader_agreement.py scores the rows.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

MATH_VERIFY_FILES = [
    "tests/test_all.py",
    "tests/test_boxed.py",
    "tests/test_numina_cases.py",
    "tests/test_open_thoughts.py",
    "tests/test_strict.py",
    "tests/test_yujianll.py",
]
LIGHTEVAL_FILES = ["tests/unit/metrics/test_extractive_match.py"]
OPTIONS = ("match_types", "precision", "strict", "allow_set_relation_comp", "language")


def git_show(git_dir: str, path: str) -> tuple[str, str]:
    """(text of ``path`` at HEAD, commit id) in the git directory ``git_dir``."""
    commit = subprocess.run(["git", "-C", git_dir, "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    text = subprocess.run(["git", "-C", git_dir, "show", f"HEAD:{path}"], check=True,
                          capture_output=True, text=True).stdout
    return text, commit


def _call_options(func: ast.FunctionDef) -> tuple[str | None, dict[str, ast.expr]]:
    """("compare_strings" | "verify" | None, {option: expression}) for the test's comparison call."""
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "compare_strings":
                opts = {kw.arg: kw.value for kw in node.keywords if kw.arg}
                for name, arg in zip(("gold", "pred", "language"), node.args):
                    if name == "language":
                        opts["language"] = arg
                return "compare_strings", opts
            if node.func.id == "verify" and node.args and isinstance(node.args[0], ast.Call):
                return "verify", {}
    return None, {}


def _value(node: ast.expr, params: dict[str, object]) -> object:
    """A literal, a test parameter (by name) or a dotted name such as ``Language.ENGLISH`` (as text)."""
    if isinstance(node, ast.Name) and node.id in params:
        return params[node.id]
    if isinstance(node, ast.Attribute):
        return ast.unparse(node)
    return ast.literal_eval(node)


def cases_in(source: str, repo: str, commit: str, path: str) -> list[dict]:
    rows = []
    tree = ast.parse(source)
    for func in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        kind, call_opts = _call_options(func)
        if kind is None:
            continue
        for dec in func.decorator_list:
            if not (isinstance(dec, ast.Call) and ast.unparse(dec.func).endswith("parametrize")):
                continue
            names = [s.strip() for s in ast.literal_eval(dec.args[0]).split(",")] if isinstance(
                dec.args[0], ast.Constant) else list(ast.literal_eval(dec.args[0]))
            for entry in dec.args[1].elts:
                try:
                    values = [_value(e, {}) for e in entry.elts]
                except ValueError:
                    continue  # sympy objects etc.: not a string comparison
                params = dict(zip(names, values))
                opts = {k: _value(v, params) for k, v in call_opts.items() if k in OPTIONS}
                expected = params.get("expected", params.get("result"))
                if not isinstance(params.get("gold"), str) or not isinstance(params.get("pred"), str):
                    continue
                rows.append({
                    "source": f"{repo} {path}:{entry.lineno}",
                    "commit": commit,
                    "test": func.name,
                    "gold": params["gold"],
                    "pred": params["pred"],
                    "expected": int(expected),
                    "options": {k: v for k, v in opts.items() if v is not None},
                    "caller": kind,
                })
    return rows


_ANSWER_SPAN = re.compile(r"\s*(\$\$?|\\\(|\\\[)(?P<body>.*?)(\$\$?|\\\)|\\\])\s*\.?\s*", re.S)


def response_for(pred: str) -> tuple[str, str]:
    """(response handed to our grader, form) for an upstream prediction; see the module docstring."""
    if "\\boxed" in pred or "\\fbox" in pred:
        return pred, "boxed"
    if re.search(r"final answer is|answer is|answer\s*:", pred, re.I):
        return pred, "answer_line"
    m = _ANSWER_SPAN.fullmatch(pred)
    if m and "$" not in m.group("body"):
        return f"\\boxed{{{m.group('body').strip()}}}", "answer_only"
    if "$" not in pred and len(pred) <= 40 and not re.search(r"[A-Za-z]{4,}", pred.replace("\\", " ")):
        return f"\\boxed{{{pred.strip()}}}", "answer_only"
    return pred, "free_text"


def keep(row: dict) -> str | None:
    """Why a row is left out (None: kept)."""
    opts = row["options"]
    if "NativeLetters" in opts.get("match_types", []):
        return "multiple-choice letters"
    if opts.get("language", "Language.ENGLISH") != "Language.ENGLISH":
        return "non-English"
    if opts.get("strict", True) is not True:
        return "strict=False"
    if opts.get("allow_set_relation_comp", False):
        return "allow_set_relation_comp=True"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("math_verify_git")
    ap.add_argument("lighteval_git")
    ap.add_argument("--out", default="tests/data/grader_upstream_cases.jsonl")
    args = ap.parse_args()
    rows: list[dict] = []
    for git_dir, repo, files in ((args.math_verify_git, "huggingface/Math-Verify", MATH_VERIFY_FILES),
                                 (args.lighteval_git, "huggingface/lighteval", LIGHTEVAL_FILES)):
        for path in files:
            text, commit = git_show(git_dir, path)
            rows.extend(cases_in(text, repo, commit, path))
    kept: dict[tuple[str, str], dict] = {}
    dropped: dict[str, int] = {}
    for row in rows:
        why = keep(row)
        if why:
            dropped[why] = dropped.get(why, 0) + 1
            continue
        key = (row["gold"], row["pred"])
        if key in kept:
            if kept[key]["expected"] != row["expected"]:
                sys.exit(f"suites disagree on {key}: {kept[key]['source']} vs {row['source']}")
            kept[key].setdefault("also", []).append(row["source"])
            continue
        row["response"], row["form"] = response_for(row["pred"])
        kept[key] = row
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for i, row in enumerate(kept.values()):
            row = {"id": i, **row}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    forms: dict[str, int] = {}
    for row in kept.values():
        forms[row["form"]] = forms.get(row["form"], 0) + 1
    print(f"{len(rows)} table entries read; {len(kept)} distinct cases kept {forms}; left out {dropped}")


if __name__ == "__main__":
    main()
