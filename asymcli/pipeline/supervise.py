"""Run Snakemake for `asym run-grid` so that it stops like on Ctrl-C when run-grid dies.

Why it exists: a SIGKILLed run-grid (the OOM killer, `kill -9`) can clean nothing up, and
Snakemake's own SIGTERM handling waits for the running jobs to finish: the grid would run
on unwatched, holding the lock. This small process, started by run-grid as
``python -m asymcli.pipeline.supervise CMD...``, makes itself the leader of a new process group,
starts Snakemake in it (its jobs inherit the group) and asks the kernel for SIGTERM when
run-grid dies (``PR_SET_PDEATHSIG``, Linux). On that signal, or on SIGINT from run-grid
(Ctrl-C), it sends SIGINT to the whole group: the jobs stop (a trainer resumes from its last
checkpoint next time), Snakemake marks them incomplete and releases its lock, exactly as
after a Ctrl-C in a terminal. Its exit code is Snakemake's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel for ``sig`` when the parent process dies (Linux; a no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    parent = os.getppid()
    os.setpgid(0, 0)  # a group of our own: Snakemake and its jobs, nothing of the caller's
    die_with_parent()
    if os.getppid() != parent:  # run-grid died before the request took effect
        return 1
    interrupted = False

    def interrupt(_signum: int, _frame: object) -> None:
        nonlocal interrupted
        if interrupted:  # our own SIGINT to the group comes back to us
            return
        interrupted = True
        os.killpg(os.getpgrp(), signal.SIGINT)

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    proc = subprocess.Popen(argv)
    return proc.wait()  # retried after each handler (PEP 475)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
