"""Progress files: how a running train or eval job tells `asym run-grid` how far it is.

Why it exists: Snakemake runs each job as its own process with its output going to a log
file, so the live view cannot see the trainer's progress bar. Instead each job keeps one
small JSON file, replaced atomically (write a temporary file, then ``os.replace``), that
the view reads when it redraws:

    {results_dir}/runs/{run_id}/progress.json     train: step, total, reward, entropy, ...
    {results_dir}/evals/{run_id}/progress.json    eval: problems done / total, benchmark, step

Each note names its writer (``pid``, ``host``) and when it wrote (``time``); a job that
ends well writes a last note with ``finished: true``. :func:`note_state` reads that back:
whether the note's job is still at work (its process is alive, asked of psutil), finished,
or gone (it died, or it is an earlier attempt's note). A note written on another machine
(a cluster job) cannot be pid-checked here: its state is "unknown", judged by its time.

Cheap on purpose: no fsync (a crash loses only a progress note, never an artifact), and
the eval writer is throttled to a few writes per second. The file is a note, not an
artifact: nothing downstream reads it, and a finished job's last note stays behind.
Torch-free: ``asym status`` and the view import it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

PROGRESS_FILE = "progress.json"
HOST = socket.gethostname()
#: How much later than a note's ``time`` its pid's process may seem to have been created (the
#: two clocks are read differently) before the pid counts as reused by another process.
PID_SLACK_S = 2.0


def write_note(path: str | os.PathLike[str], note: dict[str, Any]) -> None:
    """Replace ``path`` with ``note`` as JSON, atomically (readers never see half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(note), encoding="utf-8")
    os.replace(tmp, path)


def _clean(v: Any) -> Any:
    # NaN is not JSON: a metric that is not measured this step is written as null.
    if isinstance(v, float) and v != v:
        return None
    return v


def read_note(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The note in ``path``, or None if absent or unreadable (a reader never fails a run)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def note_state(note: dict[str, Any] | None) -> str:
    """What ``note`` says of its job now: "running" (its writer process is alive on this
    machine), "finished" (the job wrote its last note), "gone" (no note, or its writer
    exited without finishing: it died, or the note is an earlier attempt's), or "unknown"
    (written on another machine, or without a pid: only its ``time`` can tell).
    """
    if note is None:
        return "gone"
    if note.get("finished"):
        return "finished"
    pid = note.get("pid")
    if not isinstance(pid, int) or note.get("host", HOST) != HOST:
        return "unknown"
    return "running" if writer_alive(pid, note.get("time")) else "gone"


def writer_alive(pid: int, wrote: Any = None) -> bool:
    """Whether process ``pid`` runs and (given when the writer ``wrote``) is the process that
    wrote then, not a later one that reuses the pid."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return not isinstance(wrote, (int, float)) or proc.create_time() <= wrote + PID_SLACK_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # alive, owned by someone else
        return True


class TrainProgress:
    """The train job's note: written once when training starts, after every step, and once
    more with ``finished`` when the run's metrics are written (:meth:`finish`).

    ``steps_per_s`` and ``eta_s`` are over the steps of this process only (a resumed run
    does not count the steps it skipped).
    """

    def __init__(self, path: str | os.PathLike[str], run_id: str, total: int, start_step: int):
        self.path = Path(path)
        self.base = {"kind": "train", "run_id": run_id, "pid": os.getpid(), "host": HOST, "total": int(total)}
        self.first_step = int(start_step)  # steps before this one were resumed, not trained here
        self.t0 = time.time()
        self.last: dict[str, Any] = {}
        self.write(start_step - 1, {})

    def write(self, step: int, row: dict[str, Any]) -> None:
        now = time.time()
        done_here = step - (self.first_step - 1)
        rate = done_here / (now - self.t0) if done_here > 0 and now > self.t0 else None
        eta = (self.base["total"] - step) / rate if rate else None
        note = dict(self.base, step=int(step), time=now, started=self.t0, steps_per_s=rate, eta_s=eta,
                    reward=_clean(row.get("reward_mean")), entropy=_clean(row.get("entropy")),
                    heldout=_clean(row.get("eval_greedy_acc")), finished=False)
        write_note(self.path, note)
        self.last = note

    def finish(self) -> None:
        """The last note: the last step's numbers, marked ``finished``."""
        write_note(self.path, dict(self.last, time=time.time(), finished=True))


class EvalProgress:
    """The eval job's note: problems sampled and graded so far in the current part, and
    once more with ``finished`` when the samples are written (:meth:`finish`).

    A part is one (checkpoint step, benchmark); ``part``/``parts`` count the parts this
    process has to do (finished parts from an earlier attempt are skipped, not counted).
    """

    def __init__(self, path: str | os.PathLike[str], run_id: str, min_interval_s: float = 0.25):
        self.path = Path(path)
        self.base = {"kind": "eval", "run_id": run_id, "pid": os.getpid(), "host": HOST}
        self.min_interval_s = min_interval_s
        self._wrote_at = 0.0
        self.last: dict[str, Any] = {}

    def __call__(self, done: int, total: int, *, benchmark: str, step: int, part: int, parts: int) -> None:
        now = time.time()
        if done < total and now - self._wrote_at < self.min_interval_s:
            return
        self._wrote_at = now
        self.last = dict(self.base, done=int(done), total=int(total), benchmark=benchmark, step=int(step),
                         part=int(part), parts=int(parts), time=now, finished=False)
        write_note(self.path, self.last)

    def finish(self) -> None:
        """The last note, marked ``finished``; none when there was nothing to evaluate."""
        if self.last:
            write_note(self.path, dict(self.last, time=time.time(), finished=True))


class ProgressBar:
    """The one terminal progress bar (rich): the trainer's steps and evaluation's prompts.

    ``info``: a free-text column the owner fills through :meth:`update` (the trainer's reward,
    entropy, test accuracy), with a bold label. Silent when not ``enabled``.
    """

    def __init__(self, label: str, total: int, *, done: int = 0, enabled: bool = True, info: bool = False):
        self.label, self.total, self.done = label, total, done
        self.enabled, self.info = enabled, info
        self._p: Any = None

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            if self.info:
                self._p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                   TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
            else:
                self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                   TimeRemainingColumn())
            self._p.__enter__()
            fields = {"info": ""} if self.info else {}
            self._task = self._p.add_task(self.label, total=self.total, completed=self.done, **fields)
        return self

    def update(self, completed: int, info: str = "") -> None:
        if self._p is not None:
            self._p.update(self._task, completed=completed, **({"info": info} if self.info else {}))

    def advance(self, n: int) -> None:
        if self._p is not None:
            self._p.advance(self._task, n)

    def log(self, msg: str) -> bool:
        """Print ``msg`` above the live bar; False when there is no bar (print it yourself)."""
        if self._p is None:
            return False
        self._p.console.print(msg, markup=False, highlight=False)
        return True

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)


def step_info(row: dict[str, Any]) -> str:
    """A training step's bar text: reward, entropy and (when measured) test accuracy."""
    info = f"reward {row['reward_mean']:.3f}  entropy {row['entropy']:.3f}"
    acc = row.get("eval_greedy_acc", float("nan"))
    if acc == acc:  # not NaN
        info += f"  test acc {acc:.3f}"
    return info
