"""`asym run-grid`'s live view (asymcli/pipeline/live.py), progress notes (asymcli/progress.py), the
run-grid locks (asymcli/pipeline/) and the CLI fixes of issue 15.

The end-to-end tests drive `asym run-grid` on a tiny config: in a pseudo-terminal (the
live view must show step counts that change), killed with SIGKILL mid-training (the next
run-grid must finish with no manual unlock), and beside a second run-grid (one line).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asymcli.pipeline import live
from asymcli import pipeline, progress
from asymcli.cli import app
from asymcli.errors import AsymError

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

# Snakemake 9's output, as written to logs/run-grid.log (trimmed from a real run).
SNAKEMAKE_LOG = """\
Building DAG of jobs...
Job stats:
job                 count
----------------  -------
prep                    1
train                   2
eval_run                2
total                   5

Select jobs to execute...
Execute 2 jobs...

[Tue Dec  1 15:48:11 2026]
localrule train:
    input: results/data/prompts.parquet, results/base/model
    output: results/runs/grpo_s0/metrics.parquet
    log: results/logs/train/grpo_s0.log
    jobid: 10
    benchmark: results/benchmarks/train/grpo_s0.tsv
    reason: Missing output files: results/runs/grpo_s0/metrics.parquet
    wildcards: run=grpo_s0
    resources: tmpdir=/tmp, gpu=0, runtime=10, mem_mb=2000
Shell command: asym train --config results/config.resolved.yaml --method grpo --seed 0 > results/logs/train/grpo_s0.log 2>&1

[Tue Dec  1 15:48:11 2026]
localrule train:
    output: results/runs/reinforce_s0/metrics.parquet
    log: results/logs/train/reinforce_s0.log
    jobid: 7
    wildcards: run=reinforce_s0
Shell command: asym train --method reinforce
[Tue Dec  1 15:48:40 2026]
Finished jobid: 10 (Rule: train)
2 of 5 steps (40%) done
[Tue Dec  1 15:48:41 2026]
Error in rule train:
    message: None
    jobid: 7
    output: results/runs/reinforce_s0/metrics.parquet
    log: results/logs/train/reinforce_s0.log (check log file(s) for error details)
    shell:
        asym train --method reinforce
        (command exited with non-zero exit code)
"""


def test_snakemake_log_parsed_into_job_states():
    st = live.SnakemakeLog(clock=lambda: 100.0)
    for line in SNAKEMAKE_LOG.splitlines():
        st.feed(line)
    assert st.jobs[10].rule == "train" and st.jobs[10].runs == [("train", "grpo_s0")]
    assert st.jobs[10].label == "train grpo_s0"
    assert st.jobs[10].state == "done" and st.jobs[10].log == "results/logs/train/grpo_s0.log"
    assert st.jobs[7].state == "failed" and st.jobs[7].log == "results/logs/train/reinforce_s0.log"
    assert st.counts() == (2, 0, 2, 1)  # done (incl. prep), running, pending, failed
    assert [(k, j.jobid) for k, j in st.events] == [("started", 10), ("started", 7), ("done", 10), ("failed", 7)]
    st.feed("Error in rule eval_base, jobid: 9")  # how an interrupted job is reported
    assert st.jobs[9].state == "failed" and st.jobs[9].rule == "eval_base"


def _train_job(started: float, run: str = "grpo_s0") -> live.Job:
    return live.Job(3, "train", started, [f"results/runs/{run}/metrics.parquet"])


def _detail(job: live.Job, results: Path) -> dict:
    (row,) = live.job_rows(job, results, time.time())
    return row


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_train_note_shown_and_a_stale_note_ignored(tmp_path):
    job = _train_job(started=time.time())
    note = tmp_path / "runs" / "grpo_s0" / progress.PROGRESS_FILE
    # A note left by an earlier attempt (older than the job) is not this job's progress.
    progress.write_note(note, {"kind": "train", "step": 9, "total": 10, "time": time.time() - 3600})
    assert _detail(job, tmp_path)["done"] is None
    p = progress.TrainProgress(note, "grpo_s0", total=60, start_step=1)
    p.t0 -= 10.0  # 10 s ago: 5 steps -> 0.5 steps/s, 55 left -> ETA 110 s
    p.write(5, {"reward_mean": 0.25, "entropy": 1.5, "eval_greedy_acc": float("nan")})
    saved = json.loads(note.read_text())
    assert saved["heldout"] is None and saved["pid"] == os.getpid() and saved["finished"] is False
    d = _detail(job, tmp_path)
    assert d["label"] == "train grpo_s0" and (d["done"], d["total"]) == (5, 60)
    assert re.search(r"step 5/60  reward 0\.250  entropy 1\.500  0\.5\d steps/s  ETA 1:5\d", d["text"]), d["text"]


def test_eval_note_counts_problems_and_is_throttled(tmp_path):
    path = tmp_path / "evals" / "base" / progress.PROGRESS_FILE
    p = progress.EvalProgress(path, "base", min_interval_s=3600)
    p(0, 32, benchmark="arith_heldout", step=0, part=1, parts=2)
    p(8, 32, benchmark="arith_heldout", step=0, part=1, parts=2)  # throttled: not written
    assert json.loads(path.read_text())["done"] == 0
    p(32, 32, benchmark="arith_heldout", step=0, part=1, parts=2)  # the last one always is
    job = live.Job(1, "eval_base", time.time() - 1, ["results/evals/base/samples.parquet"])
    d = _detail(job, tmp_path)
    assert d["label"] == "eval  base" and d["text"] == "32/32 problems  arith_heldout step 0 (part 1/2)"
    assert live.Job(2, "eval_base", 0.0, ["r/evals/base_b1/samples.parquet"]).label == "eval  base b1"


def test_a_note_whose_writer_died_is_not_shown_as_running(tmp_path):
    job = _train_job(started=time.time() - 60)
    path = tmp_path / "runs" / "grpo_s0" / progress.PROGRESS_FILE
    p = progress.TrainProgress(path, "grpo_s0", total=60, start_step=1)
    p.write(5, {"reward_mean": 0.25, "entropy": 1.5})
    note = json.loads(path.read_text())
    assert progress.note_state(note) == "running"  # this process wrote it
    assert _detail(job, tmp_path)["done"] == 5
    # The writer died (a crash, a kill): the note is as fresh as before, but not running.
    progress.write_note(path, dict(note, pid=_dead_pid()))
    assert progress.note_state(progress.read_note(path)) == "gone"
    d = _detail(job, tmp_path)
    assert d["done"] is None and d["text"] == "starting 1:00"
    # A live process that reuses the pid was created after the note was written: not its writer.
    progress.write_note(path, dict(note, time=time.time() - 10 * 365 * 86400))
    assert progress.note_state(progress.read_note(path)) == "gone"
    # A cluster job's note, written on another machine: its pid means nothing here, so its time
    # decides (written since the job started: shown).
    progress.write_note(path, dict(note, pid=_dead_pid(), host="node-17"))
    assert progress.note_state(progress.read_note(path)) == "unknown"
    assert _detail(job, tmp_path)["done"] == 5
    assert _detail(_train_job(started=time.time() + 60), tmp_path)["done"] is None


def test_a_finished_note_keeps_its_numbers_until_snakemake_ends_the_job(tmp_path):
    job = _train_job(started=time.time() - 5)
    path = tmp_path / "runs" / "grpo_s0" / progress.PROGRESS_FILE
    p = progress.TrainProgress(path, "grpo_s0", total=4, start_step=1)
    p.write(4, {"reward_mean": 0.5, "entropy": 0.75})
    p.finish()
    # The process has exited, but Snakemake has not logged the job's end yet.
    progress.write_note(path, dict(json.loads(path.read_text()), pid=_dead_pid()))
    note = progress.read_note(path)
    assert note["finished"] is True and (note["step"], note["reward"]) == (4, 0.5)
    assert progress.note_state(note) == "finished"
    d = _detail(job, tmp_path)
    assert (d["done"], d["total"]) == (4, 4) and "reward 0.500" in d["text"]
    # The same note at the start of the next attempt (the config changed): an earlier run's.
    assert _detail(_train_job(started=time.time() + 60), tmp_path)["done"] is None
    # An eval job's last note, marked finished; none when there was nothing to evaluate.
    ev = progress.EvalProgress(tmp_path / "evals" / "base" / progress.PROGRESS_FILE, "base")
    ev.finish()
    assert not ev.path.exists()
    ev(4, 4, benchmark="arith_heldout", step=0, part=1, parts=1)
    ev.finish()
    assert progress.note_state(progress.read_note(ev.path)) == "finished"


BUNDLE_LOG = """[Mon Dec  7 01:06:37 2026]
localrule train_bundle_2of2_grpo_s1:
    input: R/data/prompts.parquet, R/base/model
    output: R/runs/grpo_s1/metrics.parquet, R/runs/reinforce_s1/metrics.parquet, R/runs/asym_bp0.9_bn0.4_s1/metrics.parquet
    log: R/logs/train/bundle_2of2_grpo_s1.log
    jobid: 10
    reason: Missing output files: R/runs/grpo_s1/metrics.parquet
    resources: tmpdir=/tmp, gpu=0, runtime=60, mem_mb=4000, mem=4 GB, mem_mib=3815
Shell command: asym train --config R/config.resolved.yaml --runs grpo_s1,reinforce_s1,asym_bp0.9_bn0.4_s1
"""


def test_a_bundle_job_shows_a_row_per_run(tmp_path):
    clock = [time.time()]
    st = live.SnakemakeLog(clock=lambda: clock[0])
    for line in BUNDLE_LOG.replace("R/", f"{tmp_path}/").splitlines():
        st.feed(line)
    (job,) = st.running
    assert job.label == "train_bundle_2of2_grpo_s1"
    assert [rid for _, rid in job.runs] == ["grpo_s1", "reinforce_s1", "asym_bp0.9_bn0.4_s1"]
    for i, rid in enumerate(["grpo_s1", "reinforce_s1"]):  # the third has written no note yet
        p = progress.TrainProgress(tmp_path / "runs" / rid / progress.PROGRESS_FILE, rid, total=8, start_step=1)
        p.write(3 + i, {"reward_mean": 0.25 * (i + 1), "entropy": 1.0})
    out = io.StringIO()
    from rich.console import Console

    view = live.LiveView(st, tmp_path, Console(file=out, width=250), title="table2", plain_interval=30,
                         clock=lambda: clock[0])
    view.start()
    clock[0] += 31
    view.update()
    text = out.getvalue()
    assert "started train_bundle_2of2_grpo_s1  (0 done, 1 running, 0 pending)" in text
    line = text.splitlines()[-1]
    assert line.startswith("[0:31] 0 done, 1 running, 0 pending | train grpo_s1: step 3/8  reward 0.250"), line
    assert "| train reinforce_s1: step 4/8  reward 0.500" in line
    assert line.endswith("| train asym_bp0.9_bn0.4_s1: starting 0:31"), line
    screen = io.StringIO()
    Console(file=screen, width=250).print(view.renderable())
    rows = [r for r in screen.getvalue().splitlines() if r.startswith(" train ")]
    assert [r.split()[1] for r in rows] == ["grpo_s1", "reinforce_s1", "asym_bp0.9_bn0.4_s1"], rows


EVAL_BUNDLE_LOG = """[Mon Dec  7 01:06:37 2026]
localrule eval_bundle_2of3_asym_bp0.9_bn0.4_s0:
    input: R/runs/asym_bp0.9_bn0.4_s0/metrics.parquet, R/runs/asym_bp0.9_bn0.4_s1/metrics.parquet
    output: R/evals/asym_bp0.9_bn0.4_s0/samples.parquet, R/evals/asym_bp0.9_bn0.4_s1/samples.parquet
    log: R/logs/eval/bundle_2of3_asym_bp0.9_bn0.4_s0.log
    jobid: 12
    resources: tmpdir=/tmp, gpu=0, runtime=120, mem_mb=4000, mem=4 GB, mem_mib=3815
Shell command: asym eval --config R/config.resolved.yaml --runs asym_bp0.9_bn0.4_s0,asym_bp0.9_bn0.4_s1
Error in rule eval_bundle_2of3_asym_bp0.9_bn0.4_s0, jobid: 12
"""


def test_an_eval_bundle_named_after_a_dotted_run_id_is_followed():
    """A bundle's rule name carries its first run's id, dots and all (eval_bundle_2of3_asym_bp0.9_...)."""
    st = live.SnakemakeLog(clock=lambda: 100.0)
    for line in EVAL_BUNDLE_LOG.splitlines()[:-1]:
        st.feed(line)
    (job,) = st.running
    assert job.rule == "eval_bundle_2of3_asym_bp0.9_bn0.4_s0" and job.label == job.rule
    assert job.runs == [("eval", "asym_bp0.9_bn0.4_s0"), ("eval", "asym_bp0.9_bn0.4_s1")]
    assert job.log == "R/logs/eval/bundle_2of3_asym_bp0.9_bn0.4_s0.log"
    st.feed(EVAL_BUNDLE_LOG.splitlines()[-1])  # interrupted
    assert st.jobs[12].state == "failed"


def test_plain_output_has_one_line_per_event_and_periodic_status(tmp_path):
    clock = [1000.0]
    st = live.SnakemakeLog(clock=lambda: clock[0])
    out = io.StringIO()
    from rich.console import Console

    view = live.LiveView(st, tmp_path, Console(file=out, width=200), title="table2", log_hint="x.log",
                         plain_interval=30, clock=lambda: clock[0])
    assert not view.live_mode  # not a terminal: plain lines
    view.start()
    for line in SNAKEMAKE_LOG.splitlines()[:24]:  # up to the first train record
        st.feed(line)
    view.update()
    clock[0] += 31
    view.update()
    text = out.getvalue()
    assert "started train grpo_s0  (0 done, 1 running, 4 pending)" in text
    assert "[0:31] 0 done, 1 running, 4 pending | train grpo_s0: starting 0:31" in text


def test_failure_report_shows_the_failed_jobs_log(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("loading\nerror: step 2: 3 non-finite value(s) in loss\n")
    st = live.SnakemakeLog()
    for line in SNAKEMAKE_LOG.replace("results/logs/train/reinforce_s0.log", str(log)).splitlines():
        st.feed(line)
    lines = live.failure_report(st, tmp_path / "run-grid.log")
    assert lines[0] == f"--- failed: train reinforce_s0 (log: {log})"
    assert "error: step 2: 3 non-finite value(s) in loss" in lines


# ---------------------------------------------------------------------------- locks


def test_second_run_grid_on_the_same_results_gets_one_line(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from pathlib import Path\n"
        "from asymcli.pipeline import results_lock\n"
        "with results_lock(Path(sys.argv[2])):\n print('held', flush=True); time.sleep(60)"),
        str(REPO), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(AsymError) as exc:
            with pipeline.results_lock(tmp_path):
                pass
        msg = str(exc.value)
        assert "\n" not in msg and f"another `asym run-grid` (pid {holder.pid}) is already running" in msg
    finally:
        holder.kill()
        holder.wait()
    with pipeline.results_lock(tmp_path):  # the OS released it with the process
        pass


def test_stale_snakemake_lock_released_only_without_a_live_snakemake(tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text(str(tmp_path / "results/runs/grpo_s0/metrics.parquet") + "\n")
    fake = tmp_path / "bin" / "snakemake"  # a process whose command line is a snakemake
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nsleep 60\n")
    fake.chmod(0o755)
    proc = subprocess.Popen([str(fake)], cwd=tmp_path)
    try:
        time.sleep(0.3)
        assert [pid for pid, _ in pipeline.snakemake_processes(tmp_path)] == [proc.pid]
        assert not pipeline.release_stale_lock(tmp_path) and locks.is_dir()
    finally:
        proc.kill()
        proc.wait()
    assert pipeline.release_stale_lock(tmp_path) and not locks.exists()
    assert not pipeline.release_stale_lock(tmp_path)


def test_sigkilled_run_grid_interrupts_snakemake_and_its_jobs(tmp_path):
    """run-grid starts Snakemake through asymcli.pipeline.supervise: when run-grid is SIGKILLed, the
    whole Snakemake group gets SIGINT, as on Ctrl-C (so it releases its lock)."""
    marker = tmp_path / "interrupted"
    job = f"trap 'echo INT > {marker}; exit 130' INT; sleep 60 & wait"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'asymcli.pipeline.supervise', 'sh', '-c', {job!r}])\n"
        "print(p.pid, flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True, env=ENV)
    supervisor = int(parent.stdout.readline())
    time.sleep(1.0)
    parent.kill()  # SIGKILL: no cleanup in run-grid
    parent.wait()
    deadline = time.time() + 30
    # the shell creates the file before echo writes to it: wait for the text, not the file
    while time.time() < deadline and not (marker.exists() and marker.read_text().strip()):
        time.sleep(0.2)
    assert marker.exists() and marker.read_text().strip() == "INT"
    while time.time() < deadline and _alive(supervisor):
        time.sleep(0.2)
    assert not _alive(supervisor) or open(f"/proc/{supervisor}/stat").read().split()[2] == "Z"


# ---------------------------------------------------------------------------- CLI


def test_grade_negative_gold_answer_is_a_value_not_an_option():
    r = subprocess.run(["asym", "grade", r"\boxed{-1}", "-1"], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "verdict: correct"
    r = CliRunner().invoke(app, ["grade", r"\boxed{-3}", "-1", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["correct"] is False


def test_help_groups_commands_into_panels():
    r = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert r.exit_code == 0
    text = r.stdout
    panels = [m for m in ("Pipeline", "Stages", "Analysis") if f"─ {m} " in text]
    assert panels == ["Pipeline", "Stages", "Analysis"]
    order = [text.index(f"│ {name} ") for name in ("run-grid", "status", "prep", "train", "eval", "grade")]
    assert order == sorted(order)
    assert text.index("─ Pipeline ") < text.index("│ run-grid ") < text.index("─ Stages ") < text.index("│ train ")


def test_verbose_is_accepted_after_the_command():
    from asymcli import cli

    assert cli._hoist_verbose(["train", "--verbose", "--steps", "2"]) == ["--verbose", "train", "--steps", "2"]
    assert cli._hoist_verbose(["run-grid", "--", "--verbose"]) == ["run-grid", "--", "--verbose"]


def test_library_progress_bars_hidden_unless_verbose(tiny_policy_dir):
    # One process (importing transformers is slow): quiet as `asym` runs by default, then the
    # bar switched back on as --verbose leaves it, to show the check can see it at all.
    # TQDM_DISABLE (also set by quiet_libraries) would hide the re-enabled bar too: left out here.
    script = ("import os, sys\nfrom asymcli.cli import quiet_libraries; quiet_libraries(False)\n"
              "os.environ.pop('TQDM_DISABLE')\n"
              "from transformers import AutoModelForCausalLM\nfrom transformers.utils import logging\n"
              f"AutoModelForCausalLM.from_pretrained({str(tiny_policy_dir)!r})\n"
              "print('=====', file=sys.stderr, flush=True)\nlogging.enable_progress_bar()\n"
              f"AutoModelForCausalLM.from_pretrained({str(tiny_policy_dir)!r})\n")
    env = {k: v for k, v in ENV.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE",
                                                     "TRANSFORMERS_VERBOSITY", "ASYM_VERBOSE")}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    quiet, verbose = r.stderr.split("=====\n")
    assert "Loading weights" not in quiet and "Loading weights" in verbose, r.stderr[-1000:]


def test_summary_names_only_files_that_exist(tmp_path):
    from asymcli.config import Config

    cfg = Config(results_dir=str(tmp_path))
    plan = pipeline.GridPlan(cfg, {}, "all", [])
    assert pipeline.summary_lines(plan) == []
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "table2.md").write_text("t")
    (tmp_path / "report" / "index.md").write_text("i")
    (line,) = pipeline.summary_lines(plan)
    assert line.endswith(": table2.md, index.md") and "grid.md" not in line


# ---------------------------------------------------------------------------- end to end

TINY = """\
name: live
results_dir: results
task: {n_train: 32, n_heldout: 4, tiers: [t1]}
model: {hidden_size: 16, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 32}
base: {steps: 2, batch_size: 4, warmup_steps: 1, probe_prompts: 4}
train: {steps: STEPS, lr: 5.0e-5, prompts_per_step: 2, mini_batch_prompts: 2, group_size: 2, max_new_tokens: 8,
        warmup_steps: 1, eval_every: 0, eval_prompts: 4, checkpoint_every: 4, threads: 1}
eval: {benchmarks: [{name: arith_heldout, k: 1, temperature: 0.4, limit: 4}], batch_size: 8}
grid: {methods: [grpo, reinforce], betas: [], grid: [], seeds: [0]}
methods: {reinforce: {lr: 1.0e-4}}
resources: {train_threads: 1, eval_threads: 1}
"""


def write_tiny(work: Path, steps: int, lr: str = "5.0e-5") -> Path:
    p = work / "tiny.yaml"
    p.write_text(TINY.replace("STEPS", str(steps)).replace("lr: 5.0e-5", f"lr: {lr}"))
    return p


def run_grid(work: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["asym", "run-grid", "--config", "tiny.yaml", "--cores", "2", *args], cwd=work,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def _read_pty(fd: int, until, timeout: float) -> bytes:
    buf = b""
    t0 = time.time()
    while time.time() - t0 < timeout and not until(buf):
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            buf += data
    return buf


def _supervisors(work: Path) -> list[int]:
    """Pids of the asymcli.pipeline.supervise processes running Snakemake in ``work``."""
    out = []
    for p in Path("/proc").iterdir():
        try:
            args = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"asymcli.pipeline.supervise" in args and str(work).encode() in args:
            out.append(int(p.name))
    return out


@pytest.fixture(scope="module")
def killed_in_pty(tmp_path_factory):
    """`asym run-grid` in a pseudo-terminal until the live view has shown three different
    step counts, a second run-grid tried meanwhile, then the whole process group SIGKILLed."""
    work = tmp_path_factory.mktemp("grid")
    write_tiny(work, steps=400)  # long enough to be killed mid-training
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal session of its own
        os.chdir(work)
        os.execvpe("asym", ["asym", "run-grid", "--config", "tiny.yaml", "--cores", "2"],
                   {**ENV, "TERM": "xterm-256color"})
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    try:
        steps = lambda b: set(re.findall(rb"step (\d+)/400", b))  # noqa: E731
        screen = _read_pty(fd, lambda b: len(steps(b)) >= 3, timeout=600)
        second = run_grid(work, timeout=120)
        screen += _read_pty(fd, lambda b: False, timeout=0.5)
    finally:
        # Everything at once, as a power loss or the OOM killer would: Snakemake's group
        # (supervisor, snakemake, jobs) and run-grid's; nothing gets to clean up.
        for sup in _supervisors(work):
            os.killpg(sup, signal.SIGKILL)
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    time.sleep(1)
    return {"work": work, "screen": screen.decode(errors="replace"), "second": second,
            "locks": sorted(p.name for p in (work / ".snakemake" / "locks").glob("*"))}


@pytest.mark.slow
def test_live_view_in_a_terminal_shows_step_counts(killed_in_pty):
    screen = killed_in_pty["screen"]
    seen = sorted({int(s) for s in re.findall(r"step (\d+)/400", screen)})
    assert len(seen) >= 3, screen[-3000:]
    # either run may be the one that reports steps before the kill (the other can still be
    # starting on a loaded machine): the format is what is checked
    assert re.search(r"train (?:grpo|reinforce)_s0\S*\s.*step \d+/400  reward \d\.\d{3}  entropy \d\.\d{3}  "
                     r"\d+\.\d\d steps/s  ETA", screen), screen[-3000:]
    assert re.search(r"\d+/\d+ jobs done · \d running · \d+ pending", screen)
    assert "Building DAG of jobs" not in screen  # Snakemake's records go to the log file


@pytest.mark.slow
def test_concurrent_run_grid_gets_one_clear_line(killed_in_pty):
    r = killed_in_pty["second"]
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "is already running on results" in r.stderr, r.stderr


@pytest.fixture(scope="module")
def finished_after_kill(killed_in_pty):
    work = killed_in_pty["work"]
    # Resume the killed runs and finish soon: a few steps past the furthest checkpoint.
    done = [int(p.name[5:]) for p in (work / "results" / "runs").glob("*/checkpoints/step_*")]
    steps = max(done + [4]) + 8
    write_tiny(work, steps=steps)
    return work, run_grid(work), steps


@pytest.mark.slow
def test_sigkilled_run_grid_then_another_finishes_without_manual_unlock(killed_in_pty, finished_after_kill):
    assert killed_in_pty["locks"], "the SIGKILL should have left Snakemake's lock behind"
    work, r, _ = finished_after_kill
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "released a stale Snakemake lock" in r.stdout
    assert re.search(r"run-grid: \d+/\d+ jobs done in", r.stdout)
    assert (work / "results" / "report" / "table2.md").exists()
    assert not (work / ".snakemake" / "locks").exists()
    # every train and eval job that ended well left its last note marked finished
    notes = {str(p.relative_to(work)): progress.read_note(p) for p in (work / "results").glob("*/*/progress.json")}
    assert any(k.startswith("results/runs/") for k in notes) and any(k.startswith("results/evals/") for k in notes)
    assert all(n["finished"] for n in notes.values()), notes


def _mtimes(work: Path) -> dict[str, float]:
    out = {}
    for p in sorted((work / "results").rglob("*.parquet")):
        if "parts" not in p.parts and "previous" not in p.parts and "agg" not in p.parts:
            out[str(p.relative_to(work / "results"))] = p.stat().st_mtime_ns
    return out


@pytest.mark.slow
def test_editing_train_lr_retrains_exactly_the_affected_runs(finished_after_kill, tmp_path):
    src, r, steps = finished_after_kill
    assert r.returncode == 0
    work = tmp_path / "work"
    shutil.copytree(src, work, symlinks=True)  # mtimes kept: nothing is newer than it was
    before = _mtimes(work)
    write_tiny(work, steps=steps, lr="2.0e-5")  # reinforce keeps its own lr (methods.reinforce.lr)
    status = subprocess.run(["asym", "status", "--config", "tiny.yaml"], cwd=work, env={**ENV, "COLUMNS": "200"},
                            capture_output=True, text=True)
    assert "stale grpo_s0: the next run-grid retrains from scratch: train.lr 5e-05 -> 2e-05" in status.stdout
    assert "stale reinforce_s0" not in status.stdout
    r = run_grid(work)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    after = _mtimes(work)
    changed = {k for k in before if after.get(k) != before[k]}
    assert changed == {"runs/grpo_s0/metrics.parquet", "evals/grpo_s0/samples.parquet"}, changed
    prev = work / "results" / "runs" / "grpo_s0" / "previous"
    assert (prev / "metrics.parquet").exists() and (prev / "checkpoints").is_dir()
    assert "train.lr 5e-05 -> 2e-05" in (prev / "REASON.txt").read_text()
    run_json = json.loads((work / "results" / "runs" / "grpo_s0" / "run.json").read_text())
    assert run_json["run"]["lr"] == 2e-5
    assert "started train grpo_s0" in r.stdout and "train reinforce_s0" not in r.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True
