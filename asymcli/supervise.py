"""Run Snakemake for `asym run-grid` so that it stops like on Ctrl-C when run-grid dies.

Why it exists: a SIGKILLed run-grid (a closed terminal, the OOM killer) can clean nothing
up; Snakemake and its jobs would run on unwatched, or keep the directory locked. This
small parent process, started by run-grid as ``python -m asymcli.supervise CMD...``,
starts Snakemake in a process group of its own and asks the kernel for SIGTERM when
run-grid dies (``PR_SET_PDEATHSIG``, Linux). On that signal, or on Ctrl-C, it sends SIGINT
to Snakemake's whole group, jobs included: the jobs stop (the trainer resumes from its
last checkpoint next time), Snakemake marks them incomplete and releases its lock, as
after a Ctrl-C in a terminal. Exit code: Snakemake's.
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
    die_with_parent()
    if os.getppid() != parent:  # run-grid died before the request took effect
        return 1
    proc = subprocess.Popen(argv, start_new_session=True)

    def interrupt(_signum: int, _frame: object) -> None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    return proc.wait()  # retried after each handler (PEP 475)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
