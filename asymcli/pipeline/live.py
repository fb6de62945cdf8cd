"""The live view of `asym run-grid`: jobs done/running/pending, and how far each running job is.

Why it exists: Snakemake's own output is a few hundred lines of job records, and each job's
output goes to its log file, so a terminal running the grid said nothing about how far a
run was, or what its reward and entropy were doing. Here Snakemake writes its output to
``{results_dir}/logs/run-grid.log``; this module follows that file and redraws:

    run-grid table2 · 4/12 jobs done · 2 running · 6 pending · 1:23
     train grpo_s0      ━━━━━━━━━━╺━━━━━━━━━   12/60  reward 0.412  entropy 0.83  1.30 steps/s  ETA 0:37
     eval  base         ━━━━━━━━━━━━━━╺━━━━━   24/32 problems  arith_heldout step 0
     base               running 0:12

Where each number comes from:
- what a train or eval job is doing: the progress notes (asymcli.progress) of the runs
  it makes, ``runs/{run}/progress.json`` (step, reward, entropy, steps/s, ETA) and
  ``evals/{run}/progress.json`` (problems done/total). A note counts while its writer's
  process is alive (psutil) or once it is marked finished; one whose writer died, or an
  earlier attempt's, does not (the run shows as ``starting``). A bundle job
  (``asym train --runs a,b,...``) shows a row per run, each from its own note.
- the jobs themselves, from Snakemake's log, for what no note can say: the DAG's job
  count (``total N``, ``N of M steps``), each job's start (``rule X:`` + ``jobid:``, with
  its ``output:`` files, which name the runs whose notes to read, and its ``log:``), its
  end (``Finished jobid:``) and failure (``Error in rule``), and how long the jobs that
  write no note (prep, base, aggregate, report) have run.

On a terminal the view is a rich ``Live`` display; elsewhere (CI, a pipe) it prints plain
lines: one per job started, finished or failed, and every ``plain_interval`` seconds a
status line with the running jobs' steps. ``verbose`` also copies Snakemake's output.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..progress import PROGRESS_FILE, note_state, read_note
from .layout import BASE_RUN, Layout

# A rule's name: a bundle's (train_bundle_/eval_bundle_{k}of{n}_{run id}) carries its first
# run's id, whose numbers have dots, e.g. eval_bundle_2of3_asym_bp0.9_bn0.4_s0.
_NAME = r"([\w.+-]+)"
_RULE = re.compile(rf"^(?:local)?rule {_NAME}:\s*$")
_ERROR = re.compile(rf"^Error in rule {_NAME}:\s*$")
_ERROR_LINE = re.compile(rf"^Error in rule {_NAME}, jobid: (\d+)")  # an interrupted job
_JOBID = re.compile(r"^\s+jobid: (\d+)\s*$")
_OUTPUT = re.compile(r"^\s+output: (.*)$")
_LOG = re.compile(r"^\s+log: ([^,\s]+)")
_FINISHED = re.compile(r"^Finished jobid: (\d+)")
_STEPS = re.compile(r"^(\d+) of (\d+) steps \(\d+%\) done")
_TOTAL = re.compile(r"^total\s+(\d+)\s*$")
LOCKED = "Directory cannot be locked"
NOTHING = "Nothing to be done"


#: Layout relative to nothing: the tails of a run's metrics and an evaluation's samples.
_TAILS = Layout(Path())


def output_run(path: str) -> tuple[str, str] | None:
    """("train", run) if ``path`` is a run's metrics.parquet, ("eval", run) if an evaluation's
    samples.parquet (Layout's paths, under any results folder); else None."""
    p = Path(path)
    rid = p.parent.name
    for kind, made in (("train", _TAILS.metrics(rid)), ("eval", _TAILS.samples(rid))):
        if p.parts[-len(made.parts):] == made.parts:
            return kind, rid
    return None


def run_label(kind: str, rid: str) -> str:
    """A row's name: "train grpo_s0", "eval  grpo_s0", "eval  base", "eval  base b1"."""
    if kind == "train":
        return f"train {rid}"
    if rid.startswith(f"{BASE_RUN}_b"):
        rid = f"{BASE_RUN} b{rid[len(BASE_RUN) + 2:]}"
    return f"eval  {rid}"


def note_path(results: Path, kind: str, rid: str) -> Path:
    """Where run ``rid``'s train or eval job writes its progress note (asymcli.progress)."""
    layout = Layout(results)
    return (layout.run_dir(rid) if kind == "train" else layout.eval_dir(rid)) / PROGRESS_FILE


@dataclass
class Job:
    jobid: int
    rule: str
    started: float
    outputs: list[str] = field(default_factory=list)
    log: str = ""
    state: str = "running"  # running | done | failed
    ended: float | None = None

    @property
    def runs(self) -> list[tuple[str, str]]:
        """(kind, run id) of the runs this job trains or evaluates (several for a bundle):
        whose progress notes say how far it is. None for prep, base, aggregate, report."""
        return [r for o in self.outputs if (r := output_run(o)) is not None]

    @property
    def label(self) -> str:
        runs = self.runs
        return run_label(*runs[0]) if len(runs) == 1 else self.rule


class SnakemakeLog:
    """Job states parsed from Snakemake's output, fed line by line."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.jobs: dict[int, Job] = {}
        self.total: int | None = None
        self.done = 0
        self.locked = False
        self.nothing_to_do = False
        self._block: tuple[str, str] | None = None  # ("start" | "error", rule)
        self._current: Job | None = None
        self._log = ""
        self._outputs: list[str] = []  # a record names its output and log before its jobid
        self.events: list[tuple[str, Job]] = []  # (started | done | failed, job), drained by the view

    def feed(self, line: str) -> None:
        line = line.rstrip("\n")
        if m := _RULE.match(line):
            self._block, self._current, self._log, self._outputs = ("start", m.group(1)), None, "", []
        elif m := _ERROR.match(line):
            self._block, self._current, self._log, self._outputs = ("error", m.group(1)), None, "", []
        elif m := _ERROR_LINE.match(line):
            self._block, self._current, self._log, self._outputs = ("error", m.group(1)), None, "", []
            self.feed(f"    jobid: {m.group(2)}")
            self._block = self._current = None
        elif (m := _JOBID.match(line)) and self._block is not None:
            jid = int(m.group(1))
            kind, rule = self._block
            if kind == "start":
                job = self.jobs[jid] = Job(jid, rule, self.clock(), self._outputs, log=self._log)
                self.events.append(("started", job))
                self._current = job
            else:
                job = self.jobs.setdefault(jid, Job(jid, rule, self.clock(), self._outputs, log=self._log))
                if job.state != "failed":
                    job.state, job.ended = "failed", self.clock()
                    self.events.append(("failed", job))
                self._current = job
        elif (m := _OUTPUT.match(line)) and self._block is not None:
            outputs = [o.split(" (")[0].strip() for o in m.group(1).split(",") if o.strip()]
            if self._current is None:
                self._outputs = outputs
            elif not self._current.outputs:
                self._current.outputs = outputs
        elif (m := _LOG.match(line)) and self._block is not None:
            if self._current is None:
                self._log = m.group(1)  # the record names its log before its jobid
            elif not self._current.log:
                self._current.log = m.group(1)
        elif m := _FINISHED.match(line):
            job = self.jobs.get(int(m.group(1)))
            if job is not None and job.state == "running":
                job.state, job.ended = "done", self.clock()
                self.events.append(("done", job))
            self._block = self._current = None
        elif m := _STEPS.match(line):
            self.done, self.total = int(m.group(1)), int(m.group(2))
        elif (m := _TOTAL.match(line)) and self.total is None:
            self.total = int(m.group(1))
        elif LOCKED in line:
            self.locked = True
        elif NOTHING in line:
            self.nothing_to_do = True
        elif line and not line[0].isspace():  # "Shell command: ...", a timestamp: the record ended
            self._block = self._current = None

    @property
    def running(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.state == "running"]

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.state == "failed"]

    def counts(self) -> tuple[int, int, int, int]:
        """(done, running, pending, failed) jobs."""
        running, failed = len(self.running), len(self.failed)
        total = self.total if self.total is not None else self.done + running + failed
        return self.done, running, max(0, total - self.done - running - failed), failed


def fmt_duration(s: float | None) -> str:
    if s is None or s != s or s < 0:
        return "-"
    s = int(round(s))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _num(x: Any, fmt: str) -> str:
    return "-" if x is None or (isinstance(x, float) and x != x) else format(x, fmt)


def current_note(note: dict[str, Any] | None, job: Job) -> dict[str, Any] | None:
    """``note`` if it tells of ``job``'s work: its writer is alive, or it was written since
    the job started and is finished (or from another machine, where no pid can be checked).
    A note whose writer died, or an earlier attempt's, is None."""
    state = note_state(note)
    if note is None or state == "gone":
        return None
    return note if state == "running" or float(note.get("time") or 0) >= job.started - 2 else None


def job_rows(job: Job, results: Path, now: float) -> list[dict[str, Any]]:
    """The view's rows for a running job, {"label", "done", "total", "text"} each (done/total
    None if unknown): a row per run it trains or evaluates, from that run's progress note;
    one row (how long it has run) for a job that writes no note."""
    runs = job.runs
    if not runs:
        return [{"label": job.label, "done": None, "total": None,
                 "text": f"running {fmt_duration(now - job.started)}"}]
    rows = []
    for kind, rid in runs:
        note = current_note(read_note(note_path(results, kind, rid)), job)
        detail = note_detail(note) if note is not None else \
            {"done": None, "total": None, "text": f"starting {fmt_duration(now - job.started)}"}
        rows.append({"label": run_label(kind, rid), **detail})
    return rows


def note_detail(note: dict[str, Any]) -> dict[str, Any]:
    """{"done", "total", "text"} of a train or eval note."""
    if note.get("kind") == "train":
        text = (f"step {note['step']}/{note['total']}  reward {_num(note.get('reward'), '.3f')}  "
                f"entropy {_num(note.get('entropy'), '.3f')}  {_num(note.get('steps_per_s'), '.2f')} steps/s  "
                f"ETA {fmt_duration(note.get('eta_s'))}")
        return {"done": note["step"], "total": note["total"], "text": text}
    part = f" (part {note['part']}/{note['parts']})" if note.get("parts", 0) > 1 else ""
    text = f"{note['done']}/{note['total']} problems  {note.get('benchmark', '')} step {note.get('step', '')}{part}"
    return {"done": note["done"], "total": note["total"], "text": text}


class LiveView:
    """Renders a SnakemakeLog's jobs (their runs' progress notes for train and eval jobs)
    on a rich console, or as plain lines."""

    def __init__(self, state: SnakemakeLog, results: Path, console: Any, *, title: str, log_hint: str = "",
                 plain_interval: float = 30.0, verbose: bool = False, clock: Callable[[], float] = time.time):
        self.state, self.results, self.console = state, Path(results), console
        self.log_hint = log_hint
        self.title, self.verbose, self.clock = title, verbose, clock
        self.plain_interval = plain_interval
        self.t0 = clock()
        self.live_mode = bool(getattr(console, "is_terminal", False)) and not getattr(console, "is_dumb_terminal", False)
        self._live: Any = None
        self._last_plain = self.t0

    # -- rich
    def renderable(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = self.clock()
        done, running, pending, failed = self.state.counts()
        head = Text.assemble(("run-grid ", "bold"), (self.title, "bold cyan"),
                             f" · {done}/{done + running + pending + failed} jobs done · {running} running · "
                             f"{pending} pending", (f" · {failed} failed" if failed else "", "bold red"),
                             f" · {fmt_duration(now - self.t0)}")
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(width=24)
        table.add_column()
        for d in self.rows(now):
            bar: Any = ""
            if d["total"]:
                bar = ProgressBar(total=d["total"], completed=d["done"] or 0, width=24)
            table.add_row(Text(" " + d["label"], style="bold"), bar, d["text"])
        foot = Text(f"log: {self.log_hint}", style="dim")
        return Group(head, table, foot)

    def rows(self, now: float) -> list[dict[str, Any]]:
        """The running jobs' rows (:func:`job_rows`), in job order."""
        return [r for job in sorted(self.state.running, key=lambda j: j.jobid)
                for r in job_rows(job, self.results, now)]

    def start(self) -> None:
        if self.live_mode:
            from rich.live import Live

            self._live = Live(self.renderable(), console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        else:
            self._print(f"run-grid {self.title}: started; Snakemake's log: {self.log_hint}")

    def stop(self) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def log_line(self, line: str) -> None:
        """A line of Snakemake's output: shown with --verbose only."""
        if self.verbose:
            (self._live.console if self._live is not None else self.console).print(
                line.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)

    def update(self) -> None:
        now = self.clock()
        events, self.state.events = self.state.events, []
        if self._live is not None:
            for kind, job in events:
                if kind == "failed":
                    self._live.console.print(f"[bold red]failed[/] {job.label}  (log: {job.log or '-'})")
            self._live.update(self.renderable())
            return
        done, running, pending, failed = self.state.counts()
        stamp = f"[{fmt_duration(now - self.t0)}]"
        for kind, job in events:
            extra = f"  log: {job.log}" if kind == "failed" and job.log else ""
            self._print(f"{stamp} {kind:<7} {job.label.replace('  ', ' ')}  ({done} done, {running} running, "
                        f"{pending} pending){extra}")
        if now - self._last_plain >= self.plain_interval and self.state.running:
            self._last_plain = now
            parts = [f"{r['label'].replace('  ', ' ')}: {r['text']}" for r in self.rows(now)]
            self._print(f"{stamp} {done} done, {running} running, {pending} pending | " + " | ".join(parts))


def follow(proc: Any, log_path: Path, view: LiveView, *, poll_s: float = 0.25) -> int:
    """Feed ``log_path`` (written by ``proc``) to the view until ``proc`` exits; its exit code."""
    view.start()
    pos = 0
    buf = ""
    try:
        while True:
            rc = proc.poll()
            try:
                with open(log_path, encoding="utf-8", errors="replace") as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
            except FileNotFoundError:
                chunk = ""
            buf += chunk
            *lines, buf = buf.split("\n")
            for line in lines:
                view.state.feed(line)
                view.log_line(line)
            view.update()
            if rc is not None:
                if buf:
                    view.state.feed(buf)
                    view.log_line(buf)
                    view.update()
                return rc
            time.sleep(poll_s)
    finally:
        view.stop()


def failure_report(state: SnakemakeLog, log_path: Path, *, tail: int = 25) -> list[str]:
    """Lines that explain a failed run: each failed job's log tail, else Snakemake's own tail."""
    out: list[str] = []
    for job in state.failed:
        out.append(f"--- failed: {job.label.replace('  ', ' ')} (log: {job.log or 'none'})")
        if job.log and Path(job.log).is_file():
            out += Path(job.log).read_text(encoding="utf-8", errors="replace").splitlines()[-tail:]
    if not out:
        try:
            lines = Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        out.append(f"--- Snakemake's output (last {min(tail * 2, len(lines))} lines of {log_path}):")
        out += lines[-tail * 2:]
    return out
