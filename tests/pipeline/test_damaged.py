"""Damaged artifacts (issue 21, item 8): `asym status` names them, `asym run-grid` moves them
into a ``damaged/`` folder beside them and reruns the jobs that make them (asymcli/pipeline/damage.py
``run_damage`` / ``set_aside``, asymcli/pipeline/ ``set_aside_damage``).

The end-to-end tests (slow) finish a tiny two-run grid through `asym run-grid`, then cut
files to 300 bytes, as was done by hand in the issue: a run's metrics.parquet, the other
run's samples.parquet, a final checkpoint's weights.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from asymcli import artifacts, pipeline
from asymcli.pipeline import damage
from asymcli.config import Config, config_from_dict
from asymcli.errors import AsymError
from tests.pipeline.test_pipeline_fakes import write_metrics, write_samples

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"}


def truncate(path: Path, size: int = 300) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)


# ---------------------------------------------------------------------------- the checks (fast)


def test_parquet_damage_reads_the_footer_and_the_schema(tmp_path):
    path = write_metrics(tmp_path, "grpo_s0", 0.5)
    assert artifacts.parquet_damage(path, artifacts.METRICS) is None
    assert artifacts.parquet_damage(tmp_path / "absent.parquet") is None  # absent: pending, not damaged
    # a wrong schema: another artifact under this name
    assert "missing column 'reward_mean'" in artifacts.parquet_damage(
        write_samples(tmp_path, "grpo_s0", 0.5), artifacts.METRICS)
    truncate(path)
    why = artifacts.parquet_damage(path, artifacts.METRICS)
    assert why.startswith(f"{path}: truncated or corrupted Parquet file (300 bytes")


def test_checkpoint_damage_sizes_and_hashes(tmp_path):
    ck = tmp_path / "step_000003"
    ck.mkdir()
    (ck / "model.safetensors").write_bytes(b"w" * 1000)
    (ck / "trainer_state.pt").write_bytes(b"s" * 100)
    (ck / "COMPLETE").write_text(json.dumps({"step": 3, "files": artifacts.folder_digest(ck)}))
    assert artifacts.checkpoint_damage(ck) is None
    (ck / "trainer_state.pt").write_bytes(b"S" * 100)  # same size, other bytes
    assert artifacts.checkpoint_damage(ck, hashes=False) is None
    assert "sha256 differs" in artifacts.checkpoint_damage(ck)
    truncate(ck / "model.safetensors")
    assert "model.safetensors: truncated or overwritten (300 bytes, expected 1000)" in \
        artifacts.checkpoint_damage(ck, hashes=False)
    (ck / "COMPLETE").write_text("{not json")
    assert "unreadable checkpoint marker" in artifacts.checkpoint_damage(ck)


def _checkpoint(run_dir: Path, step: int) -> Path:
    ck = run_dir / "checkpoints" / f"step_{step:06d}"
    ck.mkdir(parents=True)
    (ck / "model.safetensors").write_bytes(b"w" * 1000)
    (ck / "COMPLETE").write_text(json.dumps({"step": step, "files": artifacts.folder_digest(ck)}))
    return ck


def test_run_damage_says_what_rebuilds_each_artifact(tmp_path):
    run_dir, eval_dir = tmp_path / "runs" / "grpo_s0", tmp_path / "evals" / "grpo_s0"
    _checkpoint(run_dir, 2)
    last = _checkpoint(run_dir, 4)
    metrics = write_metrics(tmp_path, "grpo_s0", 0.5)
    samples = write_samples(tmp_path, "grpo_s0", 0.5)
    assert damage.run_damage(run_dir, eval_dir, "grpo_s0", 4) == []
    truncate(metrics)
    truncate(samples)
    (d_metrics, d_samples) = damage.run_damage(run_dir, eval_dir, "grpo_s0", 4)
    assert d_metrics.kind == "metrics" and d_metrics.path == metrics and d_metrics.aside == run_dir / "damaged"
    assert "rebuilds it from checkpoint step 4" in d_metrics.then
    assert d_samples.kind == "samples" and d_samples.aside == eval_dir / "damaged"
    assert "evaluated again" in d_samples.describe() and str(samples) in d_samples.describe()
    # the final checkpoint damaged too: the run resumes from step 2, the metrics are retrained
    truncate(last / "model.safetensors")
    (d_ck, d_metrics, _) = damage.run_damage(run_dir, eval_dir, "grpo_s0", 4, hashes=False)
    assert d_ck.kind == "checkpoint" and d_ck.path == last and "resumes from its checkpoint step 2" in d_ck.then
    assert d_metrics.then == "the run retrains: it resumes from its checkpoint step 2"
    # a damaged final checkpoint beside intact metrics: the metrics go with it (the train job must rerun)
    write_metrics(tmp_path, "grpo_s0", 0.5)
    (d_ck, _) = damage.run_damage(run_dir, eval_dir, "grpo_s0", 4)
    assert d_ck.also == [metrics] and "metrics.parquet is moved with it" in d_ck.then


def test_set_aside_keeps_the_copy_and_the_reason(tmp_path):
    run_dir = tmp_path / "runs" / "grpo_s0"
    last = _checkpoint(run_dir, 4)
    metrics = write_metrics(tmp_path, "grpo_s0", 0.5)
    truncate(last / "model.safetensors")
    (d,) = damage.run_damage(run_dir, tmp_path / "evals" / "grpo_s0", "grpo_s0", 4)
    where = damage.set_aside(d)
    assert where == run_dir / "damaged" / "step_000004"
    assert (where / "model.safetensors").stat().st_size == 300 and not last.exists()
    assert (run_dir / "damaged" / "metrics.parquet").exists() and not metrics.exists()
    reason = (run_dir / "damaged" / "REASON.txt").read_text()
    assert "step_000004, metrics.parquet: damaged" in reason and "(300 bytes, expected 1000)" in reason
    # a second damage of the same file replaces the kept copy and adds to REASON.txt
    write_metrics(tmp_path, "grpo_s0", 0.5)
    truncate(metrics, 200)
    (d,) = damage.run_damage(run_dir, tmp_path / "evals" / "grpo_s0", "grpo_s0", 4)
    damage.set_aside(d)
    assert (run_dir / "damaged" / "metrics.parquet").stat().st_size == 200
    assert (run_dir / "damaged" / "REASON.txt").read_text().count("set aside") == 2


def _fake_results(root: Path) -> Config:
    for rid, acc in (("grpo_s0", 0.5), ("reinforce_s0", 0.4), ("base", 0.3)):
        write_samples(root, rid, acc)
        if rid != "base":
            write_metrics(root, rid, acc)
    return config_from_dict({"results_dir": str(root), "grid": {"methods": ["grpo", "reinforce"],
                                                                "betas": [], "seeds": [0]}})


def test_status_names_damaged_artifacts(tmp_path):
    from rich.console import Console

    root = tmp_path / "results"
    cfg = _fake_results(root)
    truncate(root / "runs" / "grpo_s0" / "metrics.parquet")
    truncate(root / "evals" / "reinforce_s0" / "samples.parquet")
    artifacts.write_parquet(root / "agg" / "table2.parquet", [{"step": 1}], pa.schema([("step", pa.int64())]))
    truncate(root / "agg" / "table2.parquet", 10)
    st = pipeline.collect_status(cfg)
    rows = {r.run_id: r for r in st.runs}
    assert rows["grpo_s0"].train_state == "damaged" and not rows["grpo_s0"].trained
    assert rows["grpo_s0"].eval_state == "done"
    assert rows["reinforce_s0"].train_state == "done" and rows["reinforce_s0"].eval_state == "damaged"
    assert st.pending == ["reinforce_s0"]
    assert [d.path.name for d in st.damage] == ["table2.parquet"]
    buf = io.StringIO()
    pipeline.render_status(st, Console(file=buf, width=120))
    out = buf.getvalue()
    assert (f"damaged {root}/runs/grpo_s0/metrics.parquet: truncated or corrupted Parquet file (300 bytes"
            in out)
    assert f"the next run-grid moves it to {root}/runs/grpo_s0/damaged/, then the run retrains" in out
    assert f"damaged {root}/evals/reinforce_s0/samples.parquet" in out
    assert "3 damaged artifact(s)" in out


def test_run_grid_stops_on_a_damaged_input_of_every_run(tmp_path, monkeypatch):
    root = tmp_path / "results"
    cfg = _fake_results(root)
    prompts = root / "data" / "prompts.parquet"
    prompts.parent.mkdir(parents=True)
    prompts.write_bytes(b"PAR1" + b"\0" * 296)
    plan = pipeline.GridPlan(cfg, {}, "table2", ["grpo_s0", "reinforce_s0"])
    with pytest.raises(AsymError, match="prompts.parquet: truncated or corrupted .* input of every run"):
        pipeline.set_aside_damage(plan, echo=lambda s: None)
    assert prompts.exists()  # nothing moved
    prompts.unlink()
    truncate(root / "evals" / "base" / "samples.parquet")
    said = []
    (d,) = pipeline.set_aside_damage(plan, echo=said.append)
    assert (root / "evals" / "base" / "damaged" / "samples.parquet").exists()
    assert "moved it to" in said[0] and "evaluated again" in said[0]
    # Snakemake does not rebuild a missing file under an up-to-date report: run-grid names it
    assert pipeline.rebuild_targets([d]) == [root / "evals" / "base" / "samples.parquet"]
    cmd = pipeline.snakemake_command("c.yaml", "table2", files=pipeline.rebuild_targets([d]))
    assert cmd[3:5] == ["table2", str(root / "evals" / "base" / "samples.parquet")]


def test_rebuild_targets_of_a_damaged_checkpoint_is_its_runs_metrics(tmp_path):
    run_dir = tmp_path / "runs" / "grpo_s0"
    _checkpoint(run_dir, 2)
    last = _checkpoint(run_dir, 4)
    metrics = write_metrics(tmp_path, "grpo_s0", 0.5)
    truncate(last / "model.safetensors")
    truncate(run_dir / "checkpoints" / "step_000002" / "model.safetensors")
    found = damage.run_damage(run_dir, tmp_path / "evals" / "grpo_s0", "grpo_s0", 4)
    assert [d.path.name for d in found] == ["step_000002", "step_000004"]
    assert pipeline.rebuild_targets(found) == [metrics]
    assert "the run retrains: it trains from scratch" not in found[1].then  # no metrics damage entry
    assert "the run trains from scratch to write it again" in found[1].then


def test_run_grid_dry_run_names_the_damage_and_moves_nothing(tmp_path, monkeypatch):
    root = tmp_path / "results"
    cfg = _fake_results(root)
    metrics = root / "runs" / "grpo_s0" / "metrics.parquet"
    truncate(metrics)
    monkeypatch.chdir(tmp_path)
    said = []
    plan = pipeline.GridPlan(cfg, {"results_dir": str(root), "grid": {"methods": ["grpo", "reinforce"],
                                                                      "betas": [], "seeds": [0]}},
                             "table2", ["grpo_s0", "reinforce_s0"])
    pipeline.run_grid(plan, dry_run=True, echo=said.append)
    assert any(line.startswith(f"run-grid: damaged {metrics}: truncated") and "a real run moves it to" in line
               for line in said), said
    assert metrics.stat().st_size == 300 and not (metrics.parent / "damaged").exists()


# ---------------------------------------------------------------------------- end to end (slow)

TINY = """\
name: damaged
results_dir: results
task: {n_train: 32, n_heldout: 4, tiers: [t1]}
model: {hidden_size: 16, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 32}
base: {steps: 2, batch_size: 4, warmup_steps: 1, probe_prompts: 4}
train: {steps: 3, lr: 5.0e-5, prompts_per_step: 2, mini_batch_prompts: 2, group_size: 2, max_new_tokens: 8,
        warmup_steps: 1, eval_every: 0, eval_prompts: 4, checkpoint_every: 2, threads: 1}
eval: {benchmarks: [{name: arith_heldout, k: 1, temperature: 0.4, limit: 4}], batch_size: 8}
grid: {methods: [grpo, reinforce], betas: [], grid: [], seeds: [0]}
resources: {train_threads: 1, eval_threads: 1}
"""

TIMINGS = {"rollout_s", "update_s", "tokens_per_s", "eval_s"}


def asym(work: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["asym", *args], cwd=work, env=ENV, capture_output=True, text=True, timeout=timeout)


def run_grid(work: Path) -> subprocess.CompletedProcess:
    return asym(work, "run-grid", "--config", "tiny.yaml", "--cores", "2")


def rows(path: Path, drop: set[str] = frozenset()) -> list[dict]:
    """The rows of a Parquet file, NaN as "nan" (comparable), without the ``drop`` columns."""
    def plain(v):
        return "nan" if isinstance(v, float) and math.isnan(v) else v

    return [{k: plain(v) for k, v in r.items() if k not in drop} for r in pq.read_table(path).to_pylist()]


def mtimes(results: Path) -> dict[str, int]:
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in results.rglob("*.parquet")
            if not {"parts", "agg", "damaged"} & set(p.parts)}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    if shutil.which("asym") is None:
        pytest.skip("the asym command is not installed")
    work = tmp_path_factory.mktemp("damaged")
    (work / "tiny.yaml").write_text(TINY)
    r = run_grid(work)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return work


@pytest.mark.slow
def test_damaged_metrics_and_samples_are_named_then_rebuilt(finished, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(finished, work, symlinks=True)  # mtimes kept
    res = work / "results"
    metrics, samples = res / "runs" / "grpo_s0" / "metrics.parquet", res / "evals" / "reinforce_s0" / "samples.parquet"
    want_metrics, want_samples = rows(metrics), rows(samples)
    before = mtimes(res)
    final_mtime = (res / "runs" / "grpo_s0" / "checkpoints" / "step_000003" / "COMPLETE").stat().st_mtime_ns
    truncate(metrics)
    truncate(samples)
    # what the issue saw: report names the file; status must too, and not call the run done
    st = asym(work, "status", "--config", "tiny.yaml")
    assert st.returncode == 0, st.stderr
    assert "damaged results/runs/grpo_s0/metrics.parquet: truncated or corrupted Parquet file (300 bytes" in st.stdout
    assert "damaged results/evals/reinforce_s0/samples.parquet: truncated or corrupted Parquet file (300 bytes" in st.stdout
    assert "the train job rebuilds it from checkpoint step 3" in st.stdout
    grpo_row = next(line for line in st.stdout.splitlines() if line.lstrip().startswith("grpo_s0"))
    assert grpo_row.split("│")[1].strip() == "damaged", grpo_row  # the train column
    # run-grid rebuilds them instead of failing at aggregation
    r = run_grid(work)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "run-grid: damaged results/runs/grpo_s0/metrics.parquet" in r.stdout
    assert "Nothing to be done" not in (res / "logs" / "run-grid.log").read_text()
    assert rows(metrics) == want_metrics  # rebuilt from the final checkpoint: every value, timings too
    assert rows(samples) == want_samples
    final = res / "runs" / "grpo_s0" / "checkpoints" / "step_000003" / "COMPLETE"
    assert final.stat().st_mtime_ns == final_mtime  # no step was trained again
    after = mtimes(res)
    changed = {k for k in before if after.get(k) != before[k]}
    # grpo's evaluation follows its new metrics.parquet (Snakemake's mtime rule), from its kept parts
    assert changed == {"runs/grpo_s0/metrics.parquet", "evals/grpo_s0/samples.parquet",
                       "evals/reinforce_s0/samples.parquet"}, changed
    for kept, rid in ((res / "runs" / "grpo_s0" / "damaged"), "grpo_s0"), ((res / "evals" / "reinforce_s0" / "damaged"), "reinforce_s0"):
        assert [p.stat().st_size for p in kept.glob("*.parquet")] == [300]
        assert "truncated or corrupted Parquet file (300 bytes" in (kept / "REASON.txt").read_text()
    assert (res / "report" / "table2.md").exists()
    st = asym(work, "status", "--config", "tiny.yaml")
    assert "damaged" not in st.stdout and "3/3 evaluations done" in st.stdout, st.stdout


@pytest.mark.slow
def test_a_damaged_final_checkpoint_is_trained_again(finished, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(finished, work, symlinks=True)
    res = work / "results"
    run_dir = res / "runs" / "reinforce_s0"
    want = rows(run_dir / "metrics.parquet", TIMINGS)
    last = run_dir / "checkpoints" / "step_000003"
    truncate(last / "model.safetensors")
    st = asym(work, "status", "--config", "tiny.yaml")
    assert f"damaged results/runs/reinforce_s0/checkpoints/step_000003/model.safetensors: truncated" in st.stdout
    assert "the run resumes from its checkpoint step 2 to write it again" in st.stdout, st.stdout
    r = run_grid(work)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert artifacts.checkpoint_damage(last) is None  # written again
    assert rows(run_dir / "metrics.parquet", TIMINGS) == want  # step 3 retrained from step 2: same numbers
    assert (run_dir / "damaged" / "step_000003" / "model.safetensors").stat().st_size == 300
    assert (run_dir / "damaged" / "metrics.parquet").exists()


@pytest.mark.slow
def test_a_deleted_run_is_trained_and_evaluated_again(finished, tmp_path):
    """A run folder deleted to retrain it (and its evaluation) under a present report: run-grid
    names the missing files to Snakemake, which would otherwise find 'Nothing to be done'."""
    work = tmp_path / "work"
    shutil.copytree(finished, work, symlinks=True)
    res = work / "results"
    metrics, samples = res / "runs" / "grpo_s0" / "metrics.parquet", res / "evals" / "grpo_s0" / "samples.parquet"
    want_metrics, want_samples = rows(metrics, TIMINGS), rows(samples)
    shutil.rmtree(res / "runs" / "grpo_s0")
    shutil.rmtree(res / "evals" / "grpo_s0")
    r = run_grid(work)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Nothing to be done" not in (res / "logs" / "run-grid.log").read_text()
    assert rows(metrics, TIMINGS) == want_metrics and rows(samples) == want_samples  # the same run again
    st = asym(work, "status", "--config", "tiny.yaml")
    assert "pending" not in st.stdout and "3/3 evaluations done" in st.stdout, st.stdout
