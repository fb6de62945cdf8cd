"""Reliability, the rest: numerical guards and determinism through the CLI, checkpoint
retention, disk-full errors, resuming under a changed config, evaluation parts tied to the
checkpoint they came from, integrity digests, and `asym status` disk use."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from typer.testing import CliRunner

from asymcli import artifacts
from asymcli.cli import app
from asymcli.config import load_config, resolve_run
from asymcli.errors import ArtifactError
from asymcli.evaluation.evaluate import part_path
from asymcli.artifacts import COMPLETE_MARKER, list_checkpoints, verify_checkpoint
from asymcli.training.trainer import Trainer

from .test_faults import MODEL, TRAIN, assert_same_metrics

SMALL = dict(TRAIN, steps=3, checkpoint_every=1, eval_every=0)


@pytest.fixture(scope="module")
def ws(tmp_path_factory, arith_rows):
    root = tmp_path_factory.mktemp("reliability")
    prompts = root / "prompts.parquet"
    artifacts.write_parquet(prompts, arith_rows, artifacts.PROMPTS)
    return root, prompts


def config(root: Path, name: str, train: dict | None = None, **top) -> Path:
    data = {"results_dir": str(root / name / "results"), "model": MODEL, "train": dict(SMALL, **(train or {})),
            "eval": {"benchmarks": [{"name": "arith_heldout", "k": 1, "temperature": 0.0, "limit": 4}]}, **top}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def train(cfg: Path, prompts: Path, model: Path, out: Path, *extra: str):
    return CliRunner().invoke(app, ["train", "--config", str(cfg), "--method", "grpo", "--prompts", str(prompts),
                                    "--model", str(model), "--out", str(out), "--no-progress", *extra])


def one_line_error(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    lines = result.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
    return lines[0]


def steps_of(out: Path) -> list[int]:
    return [s for s, _ in list_checkpoints(out / "checkpoints")]


# ---------------------------------------------------------------------------
# Numerical guards through the CLI
# ---------------------------------------------------------------------------


def test_nan_stops_the_run_with_one_line_and_keeps_the_last_good_checkpoint(ws, tiny_policy_dir):
    root, prompts = ws
    # A huge entropy bonus: step 1 is finite, a later step's gradients overflow.
    cfg = config(root, "nan", {"lr": 0.1, "mini_batch_prompts": 4, "entropy_coef": 1e20, "grad_clip": 1e38,
                               "steps": 4})
    out = root / "nan_run"
    line = one_line_error(train(cfg, prompts, tiny_policy_dir, out))
    assert line.startswith("error: step ") and "non-finite value(s) in" in line
    step = int(line.split()[2].rstrip(":"))
    quantity = line.split(" in ", 1)[1].split(";")[0]
    assert quantity in {"rewards", "advantages", "loss", "gradients", "policy weights"}
    assert not (out / "metrics.parquet").exists()
    kept = steps_of(out)
    assert step >= 2 and kept == list(range(1, step)), (line, kept)
    for _, ckpt in list_checkpoints(out / "checkpoints"):  # what is kept is finite
        from safetensors.torch import load_file

        assert all(torch.isfinite(t).all() for t in load_file(ckpt / "model.safetensors").values())
    assert f"last good checkpoint is step {kept[-1]} in {out / 'checkpoints'}" in line


def test_same_seed_same_metrics_through_the_cli(ws, tiny_policy_dir):
    root, prompts = ws
    cfg = config(root, "det", {"steps": 2, "checkpoint_every": 0, "entropy_coef": 0.05, "eval_every": 2,
                               "eval_prompts": 4})
    a, b = root / "det_a", root / "det_b"
    assert train(cfg, prompts, tiny_policy_dir, a).exit_code == 0
    assert train(cfg, prompts, tiny_policy_dir, b).exit_code == 0
    assert_same_metrics(a / "metrics.parquet", b / "metrics.parquet")


# ---------------------------------------------------------------------------
# Retention bounds disk use
# ---------------------------------------------------------------------------


def test_retention_keeps_the_last_n_and_the_pinned_steps(ws, tiny_policy_dir):
    root, prompts = ws
    cfg = config(root, "keep", {"steps": 5, "keep_last": 2, "keep_steps": [1]})
    out = root / "keep_run"
    assert train(cfg, prompts, tiny_policy_dir, out).exit_code == 0
    assert steps_of(out) == [1, 4, 5]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000001", "step_000004", "step_000005"]


def test_retention_keeps_every_checkpoint_eval_needs(ws, tiny_policy_dir):
    root, prompts = ws
    cfg = config(root, "keep_all", {"steps": 4, "keep_last": 1})
    data = yaml.safe_load(cfg.read_text())
    data["eval"]["steps"] = "all"
    cfg.write_text(yaml.safe_dump(data))
    out = root / "keep_all_run"
    assert train(cfg, prompts, tiny_policy_dir, out).exit_code == 0
    assert steps_of(out) == [1, 2, 3, 4]


def test_retention_keeps_the_reported_checkpoint(ws, tiny_policy_dir):
    root, prompts = ws
    cfg = config(root, "keep_report", {"steps": 4, "keep_last": 1}, report={"checkpoint": "2"})
    out = root / "keep_report_run"
    assert train(cfg, prompts, tiny_policy_dir, out).exit_code == 0
    assert steps_of(out) == [2, 4]


def test_status_shows_disk_used_per_run(ws, tiny_policy_dir, monkeypatch):
    root, prompts = ws
    cfg = config(root, "status", {"steps": 1}, grid={"methods": ["grpo"], "betas": [], "seeds": [0]})
    results = root / "status" / "results"
    assert train(cfg, prompts, tiny_policy_dir, results / "runs" / "grpo_s0").exit_code == 0
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["status", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "grpo_s0" in line)
    assert "done" in row and ("KB" in row or "MB" in row), row


# ---------------------------------------------------------------------------
# A changed config never continues an old run; evaluation never reuses stale parts
# ---------------------------------------------------------------------------


def test_resume_refuses_a_changed_config_but_allows_more_steps(ws, tiny_policy_dir):
    root, prompts = ws
    cfg = config(root, "cfgchange", {"steps": 2})
    out = root / "cfgchange_run"
    assert train(cfg, prompts, tiny_policy_dir, out).exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    (out / "metrics.parquet").unlink()  # as Snakemake does before rerunning a job whose params changed
    changed = config(root, "cfgchange2", {"steps": 2, "lr": 2e-3})
    line = one_line_error(train(changed, prompts, tiny_policy_dir, out))
    assert "different config" in line and "train.lr 0.001 -> 0.002" in line and str(out / "checkpoints") in line
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == {
        p: m for p, m in before.items() if p.name != "metrics.parquet"}
    # Extending the run (steps is a resume-free setting) continues from the step-2 checkpoint.
    assert train(cfg, prompts, tiny_policy_dir, out, "--steps", "3").exit_code == 0
    assert [r["step"] for r in pq.read_table(out / "metrics.parquet").to_pylist()] == [1, 2, 3]


def test_eval_parts_are_redone_when_the_model_changes(ws, tiny_policy_dir):
    from asymcli.embedded.tiny import build_tokenizer, save_policy
    from asymcli.sampling.models import load_policy

    root, prompts = ws
    model = root / "changing_model"
    shutil.copytree(tiny_policy_dir, model)
    cfg = config(root, "evalchange")
    out = root / "evalchange" / "samples.parquet"
    args = ["eval", "--config", str(cfg), "--model", str(model), "--prompts", str(prompts), "--out", str(out),
            "--no-progress"]
    assert CliRunner().invoke(app, args).exit_code == 0
    part = part_path(out.parent, 0, "arith_heldout")
    first = part.stat().st_mtime_ns
    assert CliRunner().invoke(app, args).exit_code == 0
    assert part.stat().st_mtime_ns == first  # same model: the finished part is kept
    m, tok = load_policy(model, load_config(cfg).model)
    save_policy(m, build_tokenizer(), model)  # the base model is rebuilt (same shape, new files)
    assert CliRunner().invoke(app, args).exit_code == 0
    assert part.stat().st_mtime_ns != first  # a new model: its samples are drawn again


# ---------------------------------------------------------------------------
# Full disks, integrity digests
# ---------------------------------------------------------------------------


def test_disk_full_while_checkpointing_is_one_error_and_keeps_the_last_checkpoint(ws, tiny_policy_dir,
                                                                                 arith_rows, monkeypatch):
    root, _ = ws
    cfg = load_config(None, {"model": MODEL, "train": dict(SMALL, steps=2)})
    run = resolve_run(cfg, "grpo", seed=0)
    out = root / "diskfull"
    t = Trainer(cfg, run, [r for r in arith_rows if r["split"] == "train"], [], tiny_policy_dir, out,
                progress=False)
    real_save = torch.save

    def failing_save(obj, f, *a, **k):
        if "step_000002" in str(f):  # the step-2 checkpoint: as torch reports ENOSPC
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 123 vs 456: file write failed")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(ArtifactError, match=r"cannot write the step-2 checkpoint .*file write failed.*last complete "
                                            r"checkpoint is step 1"):
        t.train()
    assert steps_of(out) == [1]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_000001"]  # the partial one is removed


def test_disk_full_while_writing_parquet_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "x.parquet"
    artifacts.write_parquet(path, [{"k_correct": 0, "groups": 1, "group_size": 2}], artifacts.BASE_STATS)
    old = path.read_bytes()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(ArtifactError, match=r"x\.parquet: cannot write \(No space left on device\)"):
        artifacts.write_parquet(path, [{"k_correct": 1, "groups": 1, "group_size": 2}], artifacts.BASE_STATS)
    assert path.read_bytes() == old and [p.name for p in tmp_path.iterdir()] == ["x.parquet"]


def test_folder_digest_hashes_small_files_and_sizes_large_ones(tmp_path):
    (tmp_path / "small.json").write_text("{}")
    (tmp_path / "big.bin").write_bytes(b"\0" * 100)
    digest = artifacts.folder_digest(tmp_path, hash_max_bytes=10)
    assert set(digest["small.json"]) == {"size", "sha256"} and set(digest["big.bin"]) == {"size"}
    artifacts.verify_digest(tmp_path, digest)
    (tmp_path / "big.bin").write_bytes(b"\1" * 100)  # same size: not detectable without a hash (documented)
    artifacts.verify_digest(tmp_path, digest)
    (tmp_path / "big.bin").write_bytes(b"\0" * 99)
    with pytest.raises(ArtifactError, match=r"big\.bin: truncated or overwritten \(99 bytes, expected 100\)"):
        artifacts.verify_digest(tmp_path, digest)
    (tmp_path / "big.bin").write_bytes(b"\0" * 100)
    (tmp_path / "small.json").write_text("[]")
    with pytest.raises(ArtifactError, match=r"small\.json: corrupted"):
        artifacts.verify_digest(tmp_path, digest)


def test_unreadable_marker_and_old_markers(tmp_path, tiny_policy_dir):
    ckpts = tmp_path / "checkpoints"
    old, new = ckpts / "step_000001", ckpts / "step_000002"
    shutil.copytree(tiny_policy_dir, old)
    shutil.copytree(tiny_policy_dir, new)
    (old / COMPLETE_MARKER).write_text(json.dumps({"step": 1}))  # before digests existed: nothing to check
    verify_checkpoint(old)
    verify_checkpoint(tiny_policy_dir)  # a plain model folder: nothing to check
    (new / COMPLETE_MARKER).write_text("{not json")
    with pytest.raises(ArtifactError, match=r"step_000002/COMPLETE: unreadable checkpoint marker; delete the folder "
                                            r".*step_000002 to resume from the previous checkpoint \(step 1\)"):
        verify_checkpoint(new)


def test_fault_spec_parsing():
    from asymcli import faults

    assert faults.parse("rollout:3, update:5") == {("rollout", 3), ("update", 5)}
    for bad in ("rollout", "explode:1", "update:x"):
        with pytest.raises(ValueError, match="ASYM_FAULT"):
            faults.parse(bad)


def test_corrupt_run_json_is_named(tmp_path, tiny_policy_dir):
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "step_000001"
    shutil.copytree(tiny_policy_dir, ckpt)
    (ckpt / COMPLETE_MARKER).write_text(json.dumps({"step": 1}))
    (run / "run.json").write_bytes(b'{"run": {"method": "gr')
    cfg = config(tmp_path, "runjson")
    before = sorted(p for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(app, ["eval", "--config", str(cfg), "--run", str(run), "--no-progress"])
    assert "run.json: unreadable run description" in one_line_error(result)
    assert sorted(p for p in tmp_path.rglob("*")) == before
