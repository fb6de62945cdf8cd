"""Reruns after a config edit (asymcli/training/reruns.py, `asym train --fresh-on-change`) and the
stale runs `asym status` names. The whole-DAG check (edit train.lr, run-grid retrains
exactly the affected runs) is tests/pipeline/test_live.py::test_editing_train_lr_retrains_exactly_the_affected_runs.
"""

from __future__ import annotations

import io

import pytest

from asymcli import artifacts, pipeline
from asymcli.training import checkpointing, reruns
from asymcli.config import load_config
from asymcli.errors import ArtifactError


def test_resume_free_keys_match_the_trainer():
    assert reruns.RESUME_FREE_KEYS == checkpointing.RESUME_FREE_KEYS


def test_config_changes_name_the_setting():
    saved = {"run": {"lr": 5e-5, "steps": 10, "beta_pos": float("nan")}, "model": {"hidden_size": 16}, "task": {}}
    now = {"run": {"lr": 1e-4, "steps": 20, "beta_pos": float("nan")}, "model": {"hidden_size": 32}, "task": {}}
    assert reruns.config_changes(saved, now) == ["train.lr 5e-05 -> 0.0001", "model.hidden_size 16 -> 32"]
    assert reruns.config_changes(None, now) == []


def test_loggers_do_not_change_the_train_fingerprint():
    a = load_config(None)
    b = load_config(None, {"train": {"loggers": ["tensorboard"]}})
    assert pipeline.fingerprint(a, "train", "grpo_s0") == pipeline.fingerprint(b, "train", "grpo_s0")
    c = load_config(None, {"train": {"lr": 1e-4}})
    assert pipeline.fingerprint(a, "train", "grpo_s0") != pipeline.fingerprint(c, "train", "grpo_s0")


def cfg_for(tmp_path, **train):
    t = {"steps": 2, "prompts_per_step": 2, "mini_batch_prompts": 2, "group_size": 2, "max_new_tokens": 6,
         "eval_every": 0, "checkpoint_every": 1, "lr": 1e-3, "warmup_steps": 1}
    t.update(train)
    return load_config(None, {"results_dir": str(tmp_path), "train": t,
                              "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1,
                                        "intermediate_size": 64},
                              "grid": {"methods": ["grpo"], "betas": [], "seeds": [0]}})


@pytest.fixture
def prompts(tmp_path, arith_rows):
    path = tmp_path / "data" / "prompts.parquet"
    artifacts.write_parquet(path, arith_rows, artifacts.PROMPTS)
    return path


def test_changed_config_refuses_by_hand_and_starts_over_with_fresh_on_change(tmp_path, prompts, tiny_policy_dir):
    from stages import train as stage

    out = tmp_path / "runs" / "grpo_s0"
    kw = dict(seed=0, prompts=prompts, model=tiny_policy_dir, out=out, progress=False)
    first = artifacts.read_parquet(stage.run(cfg_for(tmp_path), "grpo", **kw), artifacts.METRICS).to_pylist()
    note = artifacts_note(out)
    assert (note["step"], note["total"]) == (2, 2)

    changed = cfg_for(tmp_path, lr=2e-3)
    st = pipeline.collect_status(changed)
    (row,) = [r for r in st.runs if r.run_id == "grpo_s0"]
    assert row.stale == "retrains from scratch: train.lr 0.001 -> 0.002"
    from rich.console import Console

    buf = io.StringIO()
    pipeline.render_status(st, Console(file=buf, width=200))
    assert "stale grpo_s0: the next run-grid retrains from scratch: train.lr 0.001 -> 0.002" in buf.getvalue()
    longer = cfg_for(tmp_path, steps=4)
    (row,) = [r for r in pipeline.collect_status(longer).runs if r.run_id == "grpo_s0"]
    assert row.stale == "continues: train.steps 2 -> 4"

    # By hand, as before: refuse and name the setting.
    with pytest.raises(ArtifactError, match=r"different config \(train\.lr 0\.001 -> 0\.002\)"):
        stage.run(changed, "grpo", **kw)
    # Snakemake deletes the job's output before rerunning it; the rerun then starts over.
    (out / "metrics.parquet").unlink()
    rows = artifacts.read_parquet(stage.run(changed, "grpo", fresh_on_change=True, **kw), artifacts.METRICS).to_pylist()
    assert [r["step"] for r in rows] == [1, 2] and rows[-1]["lr"] == pytest.approx(2e-3)
    prev = out / "previous"
    kept = artifacts.read_parquet(prev / "metrics.parquet", artifacts.METRICS).to_pylist()
    assert [r["step"] for r in kept] == [r["step"] for r in first]
    assert [r["reward_mean"] for r in kept] == [r["reward_mean"] for r in first]
    assert sorted(p.name for p in (prev / "checkpoints").iterdir()) == ["step_000001", "step_000002"]
    assert "train.lr 0.001 -> 0.002" in (prev / "REASON.txt").read_text()
    assert [s for s, _ in artifacts.list_checkpoints(out / "checkpoints")] == [1, 2]
    (row,) = [r for r in pipeline.collect_status(changed).runs if r.run_id == "grpo_s0"]
    assert row.stale is None and row.trained


def artifacts_note(out):
    from asymcli.progress import PROGRESS_FILE, read_note

    return read_note(out / PROGRESS_FILE)


def test_a_shorter_run_retrains_instead_of_returning_the_longer_one(tmp_path, prompts, tiny_policy_dir):
    """Runs at 3 steps, then the config asks for 2: resuming would hand back the 3-step run as
    the 2-step one. `asym status` says it retrains, `asym train` by hand refuses, and the
    Snakemake rule's --fresh-on-change trains 2 steps afresh."""
    from stages import train as stage

    out = tmp_path / "runs" / "grpo_s0"
    kw = dict(seed=0, prompts=prompts, model=tiny_policy_dir, out=out, progress=False)
    stage.run(cfg_for(tmp_path, steps=3), "grpo", **kw)
    shorter = cfg_for(tmp_path, steps=2)
    (row,) = [r for r in pipeline.collect_status(shorter).runs if r.run_id == "grpo_s0"]
    assert row.stale == ("retrains from scratch: train.steps is 2 but the run is already at step 3 "
                         "(its last checkpoint)")
    with pytest.raises(ArtifactError, match=r"already at step 3, past train\.steps = 2; set train\.steps >= 3"):
        stage.run(shorter, "grpo", **kw)
    (out / "metrics.parquet").unlink()
    rows = artifacts.read_parquet(stage.run(shorter, "grpo", fresh_on_change=True, **kw), artifacts.METRICS).to_pylist()
    assert [r["step"] for r in rows] == [1, 2]
    assert [s for s, _ in artifacts.list_checkpoints(out / "checkpoints")] == [1, 2]
    assert "already at step 3" in (out / "previous" / "REASON.txt").read_text()


def test_a_grading_change_is_a_config_change_and_the_default_section_is_absent():
    """The grader sets the reward: a non-default grading section joins the run description
    (and so the rerun fingerprint and the resume check); the default leaves both as before."""
    import dataclasses

    from asymcli import pipeline
    from asymcli.training import reruns
    from asymcli.config import load_config

    cfg = load_config(pipeline.DEFAULT_CONFIG)
    tol = dataclasses.replace(cfg, grading=dataclasses.replace(cfg.grading, rel_tol=1e-4))
    a, b = reruns.expected_run_config(cfg, "grpo_s0"), reruns.expected_run_config(tol, "grpo_s0")
    assert "grading" not in a and b["grading"]["rel_tol"] == 1e-4
    assert reruns.config_changes(a, b) == ["grading.rel_tol None -> 0.0001"]
    assert reruns.config_changes(b, a) == ["grading.rel_tol 0.0001 -> None"]
    assert reruns.config_changes(a, dict(a)) == []
    assert '"grading"' not in pipeline.fingerprint(cfg, "train", "grpo_s0")
    for stage, rid in (("train", "grpo_s0"), ("eval", None), ("base", None)):
        assert pipeline.fingerprint(tol, stage, rid) != pipeline.fingerprint(cfg, stage, rid), stage
