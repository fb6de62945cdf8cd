"""The embedded arithmetic task: schema, determinism, disjoint splits, correct answers."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from asymcli import artifacts
from asymcli.errors import ConfigError
from asymcli.embedded.tasks import (DEFAULT_WORKED_FRAC, PROMPT_TEMPLATE, TIERS, generate_arithmetic,
                                    sample_problems, split_of)

EXPR = re.compile(r"Compute (.+)\. Put the final answer in \\boxed\{\}\.")


def _expr(row: dict) -> str:
    m = EXPR.fullmatch(row["prompt"])
    assert m, row["prompt"]
    return m.group(1)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return generate_arithmetic(800, 50, seed=0)


def test_rows_follow_the_prompts_schema(rows):
    table = artifacts.to_table(rows, artifacts.PROMPTS)
    assert table.num_rows == 800 + 4 * 50
    assert set(table.column("split").to_pylist()) == {"train", "heldout"}
    assert set(table.column("source").to_pylist()) == {"arith"}
    assert set(table.column("difficulty").to_pylist()) == set(TIERS)
    ids = table.column("problem_id").to_pylist()
    assert len(set(ids)) == len(ids)


def test_counts_per_tier_and_split(rows):
    train = Counter(r["difficulty"] for r in rows if r["split"] == "train")
    held = Counter(r["difficulty"] for r in rows if r["split"] == "heldout")
    assert train == {t: 200 for t in TIERS}
    assert held == {t: 50 for t in TIERS}
    # The training rows are shuffled: any prefix mixes tiers.
    assert len({r["difficulty"] for r in rows[:20]}) > 1


def test_deterministic_by_seed():
    assert generate_arithmetic(200, 10, seed=3) == generate_arithmetic(200, 10, seed=3)
    assert generate_arithmetic(200, 10, seed=3) != generate_arithmetic(200, 10, seed=4)


def test_heldout_does_not_depend_on_the_training_count():
    a = [r for r in generate_arithmetic(100, 20, seed=1) if r["split"] == "heldout"]
    b = [r for r in generate_arithmetic(900, 20, seed=1) if r["split"] == "heldout"]
    assert a == b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_heldout_problem_appears_in_train(seed):
    rows = generate_arithmetic(2000, 150, seed=seed)
    train = {_expr(r) for r in rows if r["split"] == "train"}
    held = {_expr(r) for r in rows if r["split"] == "heldout"}
    assert not train & held
    # ... by construction: the split is a function of the expression alone.
    assert all(split_of(e) == "train" for e in train)
    assert all(split_of(e) == "heldout" for e in held)
    # and across seeds too: another seed's held-out set never meets this seed's training set.
    other = {_expr(r) for r in generate_arithmetic(0, 150, seed=seed + 10) if r["split"] == "heldout"}
    assert not train & other


def _check_step(step: str) -> None:
    m = re.fullmatch(r"(\d+)([+\-*])(\d+)=(\d+)", step)
    assert m, step
    a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
    assert {"+": a + b, "-": a - b, "*": a * b}[op] == c, step


def test_answers_and_solutions_are_correct(rows):
    for r in rows:
        expr = _expr(r)
        assert re.fullmatch(r"[0-9+\-*()]+", expr)
        assert eval(expr) == int(r["answer"]), r  # noqa: S307 - digits and operators only
        assert int(r["answer"]) >= 0
        boxed = f"\\boxed{{{r['answer']}}}"
        if r["solution"] == boxed:  # answer-only
            continue
        body, last = r["solution"].rsplit(". ", 1)
        assert last == boxed
        steps = body.split(", ")
        for s in steps:
            _check_step(s)
        assert steps[-1].endswith(f"={r['answer']}")


def test_steps_per_tier():
    for tier, n_steps in (("t1", 1), ("t2", 2), ("t3", 3), ("t4", 3)):
        for p in sample_problems(tier, "train", 20, seed=0):
            assert len(p.steps) == n_steps
            assert p.prompt == PROMPT_TEMPLATE.format(expr=p.expr)


def test_worked_fraction_per_tier(rows):
    train = [r for r in rows if r["split"] == "train"]
    for tier, frac in DEFAULT_WORKED_FRAC.items():
        tr = [r for r in train if r["difficulty"] == tier]
        worked = [r for r in tr if "=" in r["solution"]]
        assert len(worked) == round(frac * len(tr))
        assert all(r["solution"] == f"\\boxed{{{r['answer']}}}" for r in tr if r not in worked)
    assert DEFAULT_WORKED_FRAC["t4"] < 1  # the thinly worked tier
    # Held-out rows always carry the worked solution.
    assert all("=" in r["solution"] for r in rows if r["split"] == "heldout")
    full = generate_arithmetic(80, 0, worked_frac={t: 1.0 for t in TIERS})
    assert all("=" in r["solution"] for r in full)
    none = generate_arithmetic(80, 0, worked_frac={t: 0.0 for t in TIERS})
    assert all(r["solution"] == f"\\boxed{{{r['answer']}}}" for r in none)


@pytest.mark.parametrize("frac", [{"t9": 0.5}, {"t4": 1.5}, {"t4": -0.1}, {"t4": "half"}])
def test_bad_worked_fractions_are_config_errors(frac):
    with pytest.raises(ConfigError, match="worked_frac"):
        generate_arithmetic(10, 1, worked_frac=frac)


def test_subset_of_tiers():
    rows = generate_arithmetic(30, 5, tiers=["t2", "t4"], seed=0)
    assert {r["difficulty"] for r in rows} == {"t2", "t4"}


@pytest.mark.parametrize("tiers", [[], ["t9"], ["t1", "t1"]])
def test_bad_tiers_are_config_errors(tiers):
    with pytest.raises(ConfigError, match="tier"):
        generate_arithmetic(10, 1, tiers=tiers)


def test_too_many_problems_is_a_config_error(monkeypatch):
    from asymcli.embedded import tasks

    monkeypatch.setitem(tasks.TIERS, "t1", lambda rng: tasks.Problem("t1", "1+1", ("1+1=2",), 2))
    with pytest.raises(ConfigError, match="too few distinct"):
        tasks.sample_problems("t1", split_of("1+1"), 2, seed=0)


def test_varied_solution_forms_are_valid_and_varied():
    """Every varied worked solution is a valid derivation of the answer, several orders occur,
    and canonical rows are untouched."""
    import re

    from asymcli.embedded.tasks import generate_arithmetic

    canon = generate_arithmetic(400, 5, seed=3)
    varied = generate_arithmetic(400, 5, seed=3, solution_forms="varied")
    assert [r["problem_id"] for r in canon] == [r["problem_id"] for r in varied]
    assert [r for r in canon if r["split"] == "heldout"] == [r for r in varied if r["split"] == "heldout"]
    forms_t4 = set()
    for c, v in zip(canon, varied):
        if v["solution"].startswith("\\boxed"):  # answer-only rows are not varied
            assert c["solution"] == v["solution"]
            continue
        steps, boxed = v["solution"].rsplit(". ", 1)
        assert boxed == f"\\boxed{{{v['answer']}}}"
        for step in steps.split(", "):
            lhs, rhs = step.split("=")
            assert eval(lhs) == int(rhs), step  # noqa: S307 - our own generated arithmetic
        assert int(steps.split(", ")[-1].split("=")[1]) == int(v["answer"])
        if v["difficulty"] == "t4":
            a, b, c_, d = map(int, re.findall(r"\d+", v["prompt"]))
            first = steps.split(", ")[0].split("=")[0]
            forms_t4.add(("ab" if sorted(map(int, first.split("*"))) == sorted((a, b)) else "cd", first))
    assert len({f[0] for f in forms_t4}) == 2  # either product first
    assert sum(c["solution"] != v["solution"] for c, v in zip(canon, varied)) > 100
    with pytest.raises(ConfigError, match="solution_forms"):
        generate_arithmetic(4, 1, solution_forms="shuffled")
