"""Deterministic fault injection: ``ASYM_FAULT=<point>:<step>`` kills the process there.

Why it exists: "kill anywhere and resume with the same numbers" is only a promise if a
test can kill a run at the worst moments and compare. Preemption, the OOM killer and a
node failure all end a job without cleanup, so the hook sends SIGKILL to its own process:
no ``finally``, no ``atexit``, no flush, exactly like the real thing.

The trainer and the evaluation call :func:`maybe_fail` at well-defined points:

- ``rollout``     trainer, step N: after sampling the step's rollouts, before grading them
- ``update``      trainer, step N: after the first optimizer step of the step's PPO update
                  (the in-memory policy is half-updated, nothing of it saved)
- ``checkpoint``  trainer, step N: the checkpoint's files and COMPLETE marker are in the
                  temporary folder, the rename onto ``step_N`` has not happened
- ``eval-part``   evaluation, checkpoint step N: right after one (step, benchmark) part
                  was written (for the base model N = 0)

Several points may be given, comma-separated (``rollout:3,update:5``); the first one
reached fires. Unset (the normal case) the hook costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "ASYM_FAULT"
POINTS = ("rollout", "update", "checkpoint", "eval-part")


def parse(spec: str) -> set[tuple[str, int]]:
    """``"rollout:3,update:5"`` -> {("rollout", 3), ("update", 5)}; a bad spec is a ValueError."""
    out = set()
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        point, sep, step = item.partition(":")
        if not sep or point not in POINTS or not step.strip().isdigit():
            raise ValueError(f"{ENV}={spec!r}: expected <point>:<step>[,...] with point in {POINTS}")
        out.add((point, int(step)))
    return out


def maybe_fail(point: str, step: int) -> None:
    """SIGKILL this process if ``ASYM_FAULT`` names (point, step)."""
    spec = os.environ.get(ENV)
    if spec and (point, int(step)) in parse(spec):
        os.kill(os.getpid(), signal.SIGKILL)
