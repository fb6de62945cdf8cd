"""Kill anywhere, resume, same numbers: fault injection through the real `asym` CLI.

A run is killed with SIGKILL (``ASYM_FAULT=<point>:<step>``, asymcli/faults.py) during a
rollout, during an update, in the middle of writing a checkpoint and after an evaluation
part; rerunning the same command must resume from what was complete and end with the
artifacts an uninterrupted run writes. Corrupted or truncated checkpoints are named and
refused, never loaded.

Each `asym` invocation runs ``asymcli.cli.main`` in a forked child of the test process, so
SIGKILL ends only that child, exactly as preemption ends a job, while the expensive torch /
transformers imports are paid once (a fresh ``python -m asymcli.cli`` costs ~15 s each
on the 2-core CI box). The Snakemake test (marked slow) uses real subprocesses throughout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
import yaml

from asymcli import artifacts
from asymcli.artifacts import COMPLETE_MARKER, STATE_FILE, list_checkpoints

TIMING = {"rollout_s", "update_s", "tokens_per_s", "eval_s"}
KILLED = -signal.SIGKILL

# A run small enough for seconds on one CPU thread, with real Adam updates every step: a
# random tiny model never solves arithmetic (all rewards 0, zero advantages), so the
# entropy bonus is what moves the weights and makes optimizer/RNG state matter on resume.
TRAIN = {"steps": 6, "prompts_per_step": 4, "mini_batch_prompts": 2, "group_size": 4, "max_new_tokens": 12,
         "eval_every": 3, "eval_prompts": 4, "checkpoint_every": 2, "keep_last": 2, "lr": 1e-3,
         "warmup_steps": 1, "entropy_coef": 0.05, "threads": 1}
MODEL = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 64}


# ---------------------------------------------------------------------------
# Running `asym` in a killable child
# ---------------------------------------------------------------------------


def asym(args: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Run `asym ARGS` (asymcli.cli.main) in a forked child; stdout+stderr go to ``log``.

    Returns the exit code, or -signal when the child was killed (-9 for SIGKILL).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            fh = open(log, "w", buffering=1)  # noqa: SIM115
            os.dup2(fh.fileno(), 1)
            os.dup2(fh.fileno(), 2)
            sys.stdout = sys.stderr = fh
            os.environ.update(env or {})
            sys.argv = ["asym", *args]
            from asymcli.cli import main

            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def same_value(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def assert_same_rows(ra: list[dict], rb: list[dict], skip: set[str] = frozenset()) -> None:
    assert len(ra) == len(rb)
    for i, (x, y) in enumerate(zip(ra, rb)):
        assert x.keys() == y.keys()
        for k in x:
            if k not in skip:
                assert same_value(x[k], y[k]), (i, k, x[k], y[k])


def assert_same_metrics(a: Path, b: Path) -> None:
    ra = artifacts.read_parquet(a, artifacts.METRICS).to_pylist()
    rb = artifacts.read_parquet(b, artifacts.METRICS).to_pylist()
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    for x, y in zip(ra, rb):
        for k in x:
            if k not in TIMING:
                assert same_value(x[k], y[k]), (x["step"], k, x[k], y[k])


# ---------------------------------------------------------------------------
# Fixtures: prompts + tiny model + config, and one uninterrupted reference run
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_policy_dir, arith_rows):
    root = tmp_path_factory.mktemp("faults")
    prompts = root / "prompts.parquet"
    artifacts.write_parquet(prompts, arith_rows, artifacts.PROMPTS)
    cfg = root / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({
        "results_dir": str(root / "results"), "model": MODEL, "train": TRAIN,
        "eval": {"benchmarks": [{"name": "arith_heldout", "k": 2, "temperature": 0.4, "limit": 6},
                                {"name": "arith_greedy", "k": 1, "temperature": 0.0, "path": str(prompts),
                                 "limit": 6}],
                 "batch_size": 16}}))
    return root, cfg, prompts


def train_args(cfg: Path, prompts: Path, model: Path, out: Path) -> list[str]:
    return ["train", "--config", str(cfg), "--method", "grpo", "--seed", "3", "--prompts", str(prompts),
            "--model", str(model), "--out", str(out), "--no-progress"]


@pytest.fixture(scope="module")
def reference(setup, tiny_policy_dir):
    """An uninterrupted run: its metrics.parquet is what every resumed run must reproduce."""
    root, cfg, prompts = setup
    out = root / "ref"
    rc = asym(train_args(cfg, prompts, tiny_policy_dir, out), root / "logs" / "ref.log")
    assert rc == 0, (root / "logs" / "ref.log").read_text()
    return out


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def test_kill_during_rollout_update_and_checkpoint_then_resume_same_metrics(setup, reference, tiny_policy_dir):
    root, cfg, prompts = setup
    out = root / "killed"
    args = train_args(cfg, prompts, tiny_policy_dir, out)
    ckdir = out / "checkpoints"

    def kill(fault: str, name: str) -> None:
        log = root / "logs" / f"{name}.log"
        rc = asym(args, log, {"ASYM_FAULT": fault})
        assert rc == KILLED, f"{fault}: expected SIGKILL, got exit {rc}\n{log.read_text()}"
        assert not (out / "metrics.parquet").exists(), f"{fault}: a killed run must not write metrics.parquet"

    # Killed before any checkpoint: the rerun starts from the base model.
    kill("rollout:1", "k1")
    assert list_checkpoints(ckdir) == []
    # Killed while sampling step 3: the step-2 checkpoint is the latest complete one.
    kill("rollout:3", "k2")
    assert [s for s, _ in list_checkpoints(ckdir)] == [2]
    # Killed in the middle of step 4's PPO update (weights half-updated in memory only).
    kill("update:4", "k3")
    assert [s for s, _ in list_checkpoints(ckdir)] == [2]
    # Killed while writing the step-4 checkpoint: its files and marker are in the temporary
    # folder, the rename has not happened; it must not count as a checkpoint.
    kill("checkpoint:4", "k4")
    assert [s for s, _ in list_checkpoints(ckdir)] == [2]
    half = ckdir / ".tmp_step_000004"
    assert (half / COMPLETE_MARKER).exists() and (half / STATE_FILE).exists()
    step2 = tree(ckdir / "step_000002")

    log = root / "logs" / "resume.log"
    assert asym(args, log) == 0, log.read_text()
    assert_same_metrics(reference / "metrics.parquet", out / "metrics.parquet")
    # Retention (keep_last 2) and the half-written folder is gone.
    assert [s for s, _ in list_checkpoints(ckdir)] == [4, 6]
    assert sorted(p.name for p in ckdir.iterdir()) == ["step_000004", "step_000006"]
    assert step2 and not (ckdir / "step_000002").exists()
    # The footer carries the provenance of the run.
    meta = artifacts.read_metadata(out / "metrics.parquet")
    assert meta["config_hash"] == artifacts.read_metadata(reference / "metrics.parquet")["config_hash"]
    assert {"asym_version", "git_commit", "config", "run_id"} <= set(meta)


def test_kill_after_the_last_checkpoint_rewrites_only_metrics(setup, reference, tiny_policy_dir):
    """Killed after the final checkpoint but before metrics.parquet: the rerun trains nothing."""
    root, cfg, prompts = setup
    out = root / "final"
    shutil.copytree(reference, out)
    (out / "metrics.parquet").unlink()
    before = tree(out / "checkpoints")
    log = root / "logs" / "final.log"
    assert asym(train_args(cfg, prompts, tiny_policy_dir, out), log) == 0, log.read_text()
    assert tree(out / "checkpoints") == before
    assert_same_metrics(reference / "metrics.parquet", out / "metrics.parquet")


# ---------------------------------------------------------------------------
# Corrupted checkpoints: named and refused, never loaded; deleting the folder resumes
# ---------------------------------------------------------------------------


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip_byte(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [
    ("model.safetensors", _truncate, "truncated"),
    (STATE_FILE, _truncate, "truncated"),
    (STATE_FILE, _flip_byte, "corrupted"),
    ("config.json", lambda p: p.unlink(), "missing"),
])
def test_corrupt_latest_checkpoint_is_named_and_refused(damage, setup, reference, tiny_policy_dir):
    fname, hurt, word = damage
    root, cfg, prompts = setup
    out = root / f"corrupt_{fname}_{word}"
    shutil.copytree(reference, out)
    (out / "metrics.parquet").unlink()
    # Make it a run interrupted after step 6's checkpoint ... with step 6 damaged.
    latest = out / "checkpoints" / "step_000006"
    hurt(latest / fname)
    before = tree(out)
    log = root / "logs" / f"corrupt_{fname}_{word}.log"
    rc = asym(train_args(cfg, prompts, tiny_policy_dir, out), log)
    text = log.read_text()
    assert rc == 2, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in text, text
    assert str(latest / fname) in lines[0] and word in lines[0]
    assert f"delete the folder {latest} to resume from the previous checkpoint (step 4)" in lines[0]
    assert tree(out) == before, "a refused resume must not write anything"
    # Doing what the message says resumes from step 4 and gives the reference numbers.
    shutil.rmtree(latest)
    assert asym(train_args(cfg, prompts, tiny_policy_dir, out), log) == 0, log.read_text()
    assert_same_metrics(reference / "metrics.parquet", out / "metrics.parquet")


def test_corrupt_checkpoint_is_refused_by_eval(setup, reference):
    root, cfg, prompts = setup
    out = root / "corrupt_eval"
    shutil.copytree(reference, out)
    _truncate(out / "checkpoints" / "step_000006" / "model.safetensors")
    log = root / "logs" / "corrupt_eval.log"
    rc = asym(["eval", "--config", str(cfg), "--run", str(out), "--prompts", str(prompts),
               "--out", str(root / "corrupt_eval_out" / "samples.parquet"), "--no-progress"], log)
    text = log.read_text()
    assert rc == 2 and text.startswith("error: ") and len(text.strip().splitlines()) == 1, text
    assert "model.safetensors: truncated" in text
    assert not (root / "corrupt_eval_out" / "samples.parquet").exists()


# ---------------------------------------------------------------------------
# Evaluation: no finished (checkpoint, benchmark) part is redone or lost
# ---------------------------------------------------------------------------


def _eval_args(cfg: Path, prompts: Path, out: Path, *source: str) -> list[str]:
    return ["eval", "--config", str(cfg), *source, "--prompts", str(prompts), "--out", str(out), "--no-progress"]


def test_kill_eval_after_first_part_then_resume(setup, reference):
    root, cfg, prompts = setup
    src = ("--run", str(reference), "--steps", "all")  # checkpoints 4 and 6, two benchmarks each
    ref_out = root / "eval_ref" / "samples.parquet"
    assert asym(_eval_args(cfg, prompts, ref_out, *src), root / "logs" / "eval_ref.log") == 0

    out = root / "eval_killed" / "samples.parquet"
    parts = out.parent / "parts"
    log = root / "logs" / "eval_killed.log"
    # Killed right after the first part of checkpoint 6 (both parts of checkpoint 4 are done).
    rc = asym(_eval_args(cfg, prompts, out, *src), log, {"ASYM_FAULT": "eval-part:6"})
    assert rc == KILLED, log.read_text()
    assert not out.exists()
    done = tree(parts)
    assert sorted(done) == ["step000004__arith_greedy.parquet", "step000004__arith_heldout.parquet",
                            "step000006__arith_heldout.parquet"]
    assert asym(_eval_args(cfg, prompts, out, *src), log) == 0, log.read_text()
    after = tree(parts)
    assert {k: after[k] for k in done} == done, "a finished part was redone"
    assert len(after) == 4
    ref_rows = artifacts.read_parquet(ref_out, artifacts.SAMPLES).to_pylist()
    assert_same_rows(artifacts.read_parquet(out, artifacts.SAMPLES).to_pylist(), ref_rows)
    assert {r["step"] for r in ref_rows} == {4, 6}
    meta = artifacts.read_metadata(out)
    assert {"asym_version", "git_commit", "config", "config_hash", "run_id"} <= set(meta)
    for p in parts.iterdir():
        assert {"asym_version", "git_commit", "config_hash", "spec_key"} <= set(artifacts.read_metadata(p))


def test_kill_base_eval_then_resume(setup, tiny_policy_dir):
    root, cfg, prompts = setup
    ref_out = root / "base_ref" / "samples.parquet"
    src = ("--model", str(tiny_policy_dir))
    assert asym(_eval_args(cfg, prompts, ref_out, *src), root / "logs" / "base_ref.log") == 0
    out = root / "base_killed" / "samples.parquet"
    log = root / "logs" / "base_killed.log"
    assert asym(_eval_args(cfg, prompts, out, *src), log, {"ASYM_FAULT": "eval-part:0"}) == KILLED
    first = tree(out.parent / "parts")
    assert list(first) == ["step000000__arith_heldout.parquet"] and not out.exists()
    assert asym(_eval_args(cfg, prompts, out, *src), log) == 0, log.read_text()
    after = tree(out.parent / "parts")
    assert after["step000000__arith_heldout.parquet"] == first["step000000__arith_heldout.parquet"]
    assert_same_rows(artifacts.read_parquet(out, artifacts.SAMPLES).to_pylist(),
                     artifacts.read_parquet(ref_out, artifacts.SAMPLES).to_pylist())


# ---------------------------------------------------------------------------
# The DAG: kill snakemake mid-run, rerun with --rerun-incomplete, same table
# ---------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def _snakemake(cfgfile: Path, workdir: Path, log: Path, extra: list[str] = ()) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "snakemake", "table2", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--cores", "2", "--configfile", str(cfgfile), *extra]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(cmd, cwd=workdir, stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            start_new_session=True, env=env)


def _smoke_config(tmp: Path, name: str) -> tuple[Path, Path]:
    """configs/smoke.yaml with two runs (GRPO and one AsymGRPO pair) checkpointing every step."""
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    results = tmp / name
    cfg["results_dir"] = str(results)
    cfg["grid"].update(methods=["grpo"], betas=[[0.9, 0.4]])
    cfg["train"]["checkpoint_every"] = 1
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, results


@pytest.mark.slow
def test_snakemake_killed_mid_run_then_rerun_incomplete(tmp_path):
    """Kill the whole snakemake process group while a training job runs; after
    `snakemake --unlock`, the rerun with --rerun-incomplete completes table2 with the
    numbers that the same stage commands give when nothing is interrupted."""
    if shutil.which("asym") is None:
        pytest.skip("the `asym` entry point is not installed (pip install -e .)")
    from asymcli import pipeline
    from asymcli.config import load_config

    cfgfile, results = _smoke_config(tmp_path, "killed")
    log = tmp_path / "killed.log"
    proc = _snakemake(cfgfile, tmp_path, log)
    # Wait until a run has written its first checkpoint (training is under way), then kill
    # snakemake and every job it started at once, as a node failure would.
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if list(results.glob("runs/*/checkpoints/step_*")):
            break
        time.sleep(0.1)
    assert proc.poll() is None, "snakemake finished before it could be killed:\n" + log.read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (results / "agg" / "table2.parquet").exists()

    # The reference: the same stage commands, uninterrupted, on a copy of the finished
    # prep/base outputs (run here, in forked children, while nothing else runs).
    ref = tmp_path / "ref"
    for sub in ("data", "base"):
        shutil.copytree(results / sub, ref / sub)
    cfg = load_config(cfgfile)
    ref_cfg = tmp_path / "ref.yaml"
    ref_cfg.write_text(cfgfile.read_text().replace(str(results), str(ref)))
    prompts, model = ref / "data" / "prompts.parquet", ref / "base" / "model"
    runs = pipeline.ids(pipeline.table_runs(cfg))
    for rid in runs:
        args = ["train", "--config", str(ref_cfg), *pipeline.train_args(rid).split(), "--prompts", str(prompts),
                "--model", str(model), "--out", str(ref / "runs" / rid), "--no-progress"]
        assert asym(args, tmp_path / f"ref_{rid}.log") == 0, (tmp_path / f"ref_{rid}.log").read_text()
        assert asym(["eval", "--config", str(ref_cfg), "--run", str(ref / "runs" / rid), "--prompts", str(prompts),
                     "--no-progress"], tmp_path / f"ref_eval_{rid}.log") == 0
    assert asym(["eval", "--config", str(ref_cfg), "--model", str(model), "--run-id", "base", "--prompts",
                 str(prompts), "--no-progress"], tmp_path / "ref_eval_base.log") == 0
    assert asym(["aggregate", "--config", str(ref_cfg), "--part", "table2", "--runs", ",".join(["base", *runs])],
                tmp_path / "ref_agg.log") == 0, (tmp_path / "ref_agg.log").read_text()

    unlock = _snakemake(cfgfile, tmp_path, tmp_path / "unlock.log", ["--unlock"])
    assert unlock.wait(timeout=120) == 0, (tmp_path / "unlock.log").read_text()[-3000:]
    rerun = _snakemake(cfgfile, tmp_path, tmp_path / "rerun.log", ["--rerun-incomplete"])
    assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    assert (results / "report" / "table2.md").exists()
    assert_same_rows(_table2_rows(results), _table2_rows(ref))
    for name in ("data/prompts.parquet", "base/base_stats.parquet", "base/sft_metrics.parquet",
                 "agg/table2.parquet", "agg/run_scores.parquet"):
        meta = artifacts.read_metadata(results / name)
        assert {"asym_version", "git_commit", "config", "config_hash"} <= set(meta), name
    outputs = list(results.glob("runs/*/metrics.parquet")) + list(results.glob("evals/*/samples.parquet"))
    assert len(outputs) == 2 * len(runs) + 1
    for p in outputs:
        assert {"asym_version", "git_commit", "config", "config_hash"} <= set(artifacts.read_metadata(p)), p


def _table2_rows(results: Path) -> list[dict]:
    rows = artifacts.read_parquet(results / "agg" / "table2.parquet").to_pylist()
    return sorted(rows, key=lambda r: [str(r[k]) for k in sorted(r)])
