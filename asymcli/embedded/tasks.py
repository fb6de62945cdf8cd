"""The embedded verifiable task: procedurally generated arithmetic in difficulty tiers.

Why it exists: the pipeline must run end to end on a laptop CPU, so it needs a task that a
sub-million-parameter model can partly learn, that a grader checks exactly, and whose
prompts look like MATH prompts (a problem, then "Put the final answer in \\boxed{}."),
so that the one grader and the one rollout path serve both.

Tiers (one template each; ``TIERS`` is the registry):

=====  ===================  ==========================================================
tier   expression           worked solution (what the supervised warm-up imitates)
=====  ===================  ==========================================================
t1     a+b, a-b             ``37+45=82. \\boxed{82}``
t2     a*b+c                ``7*12=84, 84+5=89. \\boxed{89}``
t3     (a+b)*c-d            ``3+14=17, 17*6=102, 102-9=93. \\boxed{93}``
t4     a*b+c*d              ``7*8=56, 9*6=54, 56+54=110. \\boxed{110}``
=====  ===================  ==========================================================

t4 composes steps that t1..t3 teach separately (two table products, a 3-digit sum) in an
order no other tier uses.

Worked versus answer-only solutions (``worked_frac``, per tier): a training row's
``solution`` shows the worked steps, or only the final answer (``\\boxed{110}``). The
default gives every t1..t3 row a worked solution but only a fifth of the t4 rows, so the
warmed-up model has two modes on t4, told apart by its first token: the worked steps
(usually right) and a bare guess (usually wrong), mostly the latter. Supervised training
on this data only entrenches the mixture; RL, which rewards outcomes, can move the mass
to the worked mode. That is the regime the paper studies: rare successes on hard prompts
(the positive channel, ``beta_pos``) next to frequent failures (the negative channel).

Solution forms (``solution_forms``): ``canonical`` writes every worked solution in the one
order of the table above. ``varied`` writes each training row in one of its equally valid
orders, picked at random per row: operands of ``+`` and ``*`` commuted (``45+37``,
``12*7``) and, on t4, either product first. The warmed-up model then keeps real entropy at
those branch points, entropy that costs no accuracy, so the advantage channels have
something to sustain or prune (Sec. 3.1's "productive" versus "noisy" entropy) without the
policy being pushed off the task. The answer, and so the reward, is the same on every path.

Splits are disjoint by construction: a problem is held out iff a hash of its canonical
expression falls in the held-out bucket (:func:`split_of`), so no held-out expression can
ever be generated for training, whatever the seed or the counts. Held-out rows always
carry the worked solution. Generation is a pure function of its arguments
(string-seeded ``random.Random`` streams per tier and split: the held-out set does not
change when ``n_train`` does).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import ConfigError

#: The prompt around an expression; the same instruction MATH prompts get.
PROMPT_TEMPLATE = "Compute {expr}. Put the final answer in \\boxed{{}}."

#: Percentage of the problem space (by expression hash) reserved for the held-out split.
HELDOUT_PERCENT = 20

SOURCE = "arith"


@dataclass(frozen=True)
class Problem:
    """One arithmetic problem: canonical expression, worked steps, integer answer."""

    tier: str
    expr: str
    steps: tuple[str, ...]  # e.g. ("7*12=84", "84+5=89")
    answer: int

    @property
    def prompt(self) -> str:
        return PROMPT_TEMPLATE.format(expr=self.expr)

    @property
    def solution(self) -> str:
        """The worked solution: every step, then the boxed answer."""
        return f"{', '.join(self.steps)}. {self.answer_only}"

    def varied_solution(self, rng: random.Random) -> str:
        """One of the equally valid worked solutions, drawn with ``rng`` (see the module doc)."""
        return f"{', '.join(_vary_steps(self, rng))}. {self.answer_only}"

    @property
    def answer_only(self) -> str:
        return f"\\boxed{{{self.answer}}}"


def _t1(rng: random.Random) -> Problem:
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    if rng.random() < 0.5:
        return Problem("t1", f"{a}+{b}", (f"{a}+{b}={a + b}",), a + b)
    a, b = max(a, b), min(a, b)  # answers stay non-negative
    return Problem("t1", f"{a}-{b}", (f"{a}-{b}={a - b}",), a - b)


def _t2(rng: random.Random) -> Problem:
    a, b, c = rng.randint(2, 12), rng.randint(2, 12), rng.randint(0, 99)
    p = a * b
    return Problem("t2", f"{a}*{b}+{c}", (f"{a}*{b}={p}", f"{p}+{c}={p + c}"), p + c)


def _t3(rng: random.Random) -> Problem:
    a, b, c = rng.randint(1, 20), rng.randint(1, 20), rng.randint(2, 9)
    s = a + b
    p = s * c
    d = rng.randint(0, min(99, p))
    return Problem("t3", f"({a}+{b})*{c}-{d}", (f"{a}+{b}={s}", f"{s}*{c}={p}", f"{p}-{d}={p - d}"), p - d)


def _t4(rng: random.Random) -> Problem:
    a, b, c, d = (rng.randint(2, 12) for _ in range(4))
    p, q = a * b, c * d
    return Problem("t4", f"{a}*{b}+{c}*{d}", (f"{a}*{b}={p}", f"{c}*{d}={q}", f"{p}+{q}={p + q}"), p + q)


def _commute(step: str, rng: random.Random) -> str:
    """``a+b=s`` -> ``b+a=s`` (or ``*``) with probability 1/2; ``-`` steps stay as they are."""
    lhs, rhs = step.split("=")
    for op in "+*":
        if op in lhs and rng.random() < 0.5:
            x, y = lhs.split(op)
            return f"{y}{op}{x}={rhs}"
    return step


def _vary_steps(p: Problem, rng: random.Random) -> list[str]:
    steps = [_commute(s, rng) for s in p.steps]
    if p.tier == "t4" and rng.random() < 0.5:  # the second product first; the sum in that order
        total = p.steps[2]
        (x, y), s = total.split("=")[0].split("+"), total.split("=")[1]
        steps = [steps[1], steps[0], f"{y}+{x}={s}"]
    return steps


#: tier name -> sampler. Order is difficulty order.
TIERS: dict[str, Callable[[random.Random], Problem]] = {"t1": _t1, "t2": _t2, "t3": _t3, "t4": _t4}

#: How worked solutions are written (module doc): one canonical order, or varied valid orders.
SOLUTION_FORMS = ("canonical", "varied")

#: Fraction of each tier's training rows whose solution is worked (the rest: answer only).
DEFAULT_WORKED_FRAC: dict[str, float] = {"t1": 1.0, "t2": 1.0, "t3": 1.0, "t4": 0.2}


def check_tiers(tiers: Sequence[str]) -> list[str]:
    """Validate tier names (ConfigError listing the known ones)."""
    if not tiers:
        raise ConfigError("task.tiers must list at least one tier; known tiers: " + ", ".join(TIERS))
    for t in tiers:
        if t not in TIERS:
            raise ConfigError(f"task.tiers names unknown tier '{t}'; known tiers: {', '.join(TIERS)}")
    if len(set(tiers)) != len(tiers):
        raise ConfigError(f"task.tiers lists a tier twice: {list(tiers)}")
    return list(tiers)


def check_worked_frac(frac: Mapping[str, float]) -> dict[str, float]:
    """Validate per-tier worked fractions (a tier not named is fully worked)."""
    out = {}
    for tier, value in frac.items():
        if tier not in TIERS:
            raise ConfigError(f"task.worked_frac names unknown tier '{tier}'; known tiers: {', '.join(TIERS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"task.worked_frac.{tier} must be a number in [0, 1], got {value!r}")
        out[tier] = float(value)
    return out


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def split_of(expr: str) -> str:
    """``"heldout"`` or ``"train"``: a fixed partition of expressions, independent of the seed."""
    return "heldout" if _hash(expr) % 100 < HELDOUT_PERCENT else "train"


def problem_id(p: Problem) -> str:
    return f"arith-{p.tier}-{hashlib.sha256(p.expr.encode()).hexdigest()[:12]}"


def sample_problems(tier: str, split: str, n: int, seed: int) -> list[Problem]:
    """``n`` distinct problems of ``tier`` from ``split``'s part of the problem space."""
    check_tiers([tier])
    rng = random.Random(f"arith:{seed}:{tier}:{split}")
    out: list[Problem] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 10_000:
            raise ConfigError(f"tier {tier} has too few distinct {split} problems for {n} rows; lower the count")
        p = TIERS[tier](rng)
        if p.expr in seen or split_of(p.expr) != split:
            continue
        seen.add(p.expr)
        out.append(p)
    return out


def generate_arithmetic(
    n_train: int,
    n_heldout: int,
    tiers: Sequence[str] = ("t1", "t2", "t3", "t4"),
    seed: int = 0,
    worked_frac: Mapping[str, float] | None = None,
    solution_forms: str = "canonical",
) -> list[dict[str, str]]:
    """Rows of the PROMPTS schema: ``n_train`` training problems spread evenly over
    ``tiers`` (shuffled, so any prefix mixes tiers), then ``n_heldout`` held-out problems
    per tier (held-out rows always carry the canonical worked solution).
    ``solution_forms="varied"`` writes each worked training solution in a random valid order.
    """
    tiers = check_tiers(tiers)
    if solution_forms not in SOLUTION_FORMS:
        raise ConfigError(f"task.solution_forms must be one of {', '.join(SOLUTION_FORMS)}, got {solution_forms!r}")
    form_rng = random.Random(f"arith:{seed}:forms") if solution_forms == "varied" else None
    if n_train < 0 or n_heldout < 0:
        raise ConfigError(f"task.n_train and task.n_heldout must be >= 0, got {n_train}, {n_heldout}")
    frac = check_worked_frac(DEFAULT_WORKED_FRAC if worked_frac is None else worked_frac)
    rows: list[dict[str, str]] = []
    per_tier = [n_train // len(tiers) + (i < n_train % len(tiers)) for i in range(len(tiers))]
    for tier, n in zip(tiers, per_tier):
        problems = sample_problems(tier, "train", n, seed)
        k = round(frac.get(tier, 1.0) * n)  # the first k (a random subset) are worked
        rows += [_row(p, "train", worked=i < k, form_rng=form_rng) for i, p in enumerate(problems)]
    random.Random(f"arith:{seed}:shuffle").shuffle(rows)
    for tier in tiers:
        rows += [_row(p, "heldout", worked=True) for p in sample_problems(tier, "heldout", n_heldout, seed)]
    return rows


def _row(p: Problem, split: str, worked: bool, form_rng: random.Random | None = None) -> dict[str, str]:
    if not worked:
        solution = p.answer_only
    else:
        solution = p.solution if form_rng is None else p.varied_solution(form_rng)
    return {
        "problem_id": problem_id(p),
        "split": split,
        "source": SOURCE,
        "difficulty": p.tier,
        "prompt": p.prompt,
        "answer": str(p.answer),
        "solution": solution,
    }
