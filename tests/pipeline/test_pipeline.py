"""asymcli.pipeline: run lists, fingerprints, the resolved config, option parsing,
run-grid (plan, command line, dry run, errors), status."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from asymcli import artifacts, pipeline
from asymcli.config import METHODS, config_from_dict, load_config, parse_run_id, run_id
from asymcli.errors import ConfigError
from tests.pipeline.test_pipeline_fakes import write_fake_results

REPO = pipeline.REPO_ROOT


def cfg_of(**grid):
    return config_from_dict({"grid": {"methods": ["grpo", "reinforce"], "betas": [[0.9, 0.4]], "grid": [],
                                      "seeds": [0], **grid}})


# ---------------------------------------------------------------------------
# Run lists and ids
# ---------------------------------------------------------------------------


def test_table_and_grid_runs():
    cfg = cfg_of(grid=[0.1, 0.5], seeds=[0, 1])
    table = pipeline.ids(pipeline.table_runs(cfg))
    assert table == ["grpo_s0", "reinforce_s0", "asym_bp0.9_bn0.4_s0", "grpo_s1", "reinforce_s1", "asym_bp0.9_bn0.4_s1"]
    grid = pipeline.ids(pipeline.grid_pair_runs(cfg))
    assert "asym_bp0.1_bn0.5_s1" in grid and "asym_bp0.9_bn0.4_s0" in grid and "grpo_s0" not in grid
    assert len(grid) == 2 * (4 + 1)
    assert set(pipeline.ids(pipeline.all_runs(cfg))) == set(table) | set(grid)


def test_run_id_regex_matches_run_ids_only():
    rx = re.compile(f"^{pipeline.run_id_regex()}$")
    cfg = config_from_dict({"grid": {"methods": [m for m in METHODS if m != "asym"],
                                     "betas": [[0.9, 0.4], [1, 0], [0.05, 1.5]], "seeds": [0, 12]}})
    for rid in pipeline.ids(pipeline.all_runs(cfg)):
        assert rx.match(rid), rid
    for bad in ("base", "asym_s0", "grpo", "grpo_sx", "foo_s0", "grpo_s0/x"):
        assert not rx.match(bad), bad


def test_train_args_round_trip():
    assert pipeline.train_args("asym_bp0.9_bn0.4_s2") == "--method asym --beta-pos 0.9 --beta-neg 0.4 --seed 2"
    assert pipeline.train_args("clip_higher_s0") == "--method clip_higher --seed 0"
    m, bp, bn, s = parse_run_id("asym_bp1_bn0_s3")
    assert run_id(m, bp, bn, s) == "asym_bp1_bn0_s3"


def test_rule_resources():
    cfg = config_from_dict({"resources": {"train_gpus": 4, "train_mem_mb": 1000, "train_runtime_min": 7,
                                          "slurm_partition": "gpu"}})
    assert pipeline.rule_resources(cfg, "train") == {"gpu": 4, "mem_mb": 1000, "runtime": 7, "slurm_partition": "gpu"}
    assert "slurm_partition" in pipeline.rule_resources(cfg, "eval")
    assert "slurm_account" not in pipeline.rule_resources(cfg, "eval")


# ---------------------------------------------------------------------------
# Rerun fingerprints and the resolved config
# ---------------------------------------------------------------------------


def test_fingerprints_depend_on_their_slice_only():
    a = cfg_of()
    b = cfg_of(betas=[[0.9, 0.4], [0.8, 0.4]], methods=["grpo"], seeds=[0, 1], grid=[0.3])
    for stage in ("prep", "base", "eval"):
        assert pipeline.fingerprint(a, stage) == pipeline.fingerprint(b, stage)
    assert pipeline.fingerprint(a, "train", "grpo_s0") == pipeline.fingerprint(b, "train", "grpo_s0")
    c = dataclasses.replace(a, train=dataclasses.replace(a.train, lr=1e-4))
    assert pipeline.fingerprint(a, "train", "grpo_s0") != pipeline.fingerprint(c, "train", "grpo_s0")
    assert pipeline.fingerprint(a, "prep") == pipeline.fingerprint(c, "prep")
    # a method override changes that method's runs only
    d = config_from_dict({"grid": {"methods": ["grpo", "reinforce"]}, "methods": {"grpo": {"lr": 1e-4}}})
    assert pipeline.fingerprint(a, "train", "grpo_s0") != pipeline.fingerprint(d, "train", "grpo_s0")
    assert pipeline.fingerprint(a, "train", "reinforce_s0") == pipeline.fingerprint(d, "train", "reinforce_s0")
    # the runs' betas are in the run id; the train section's default betas are not used by baselines
    e = dataclasses.replace(a, train=dataclasses.replace(a.train, beta_pos=0.3))
    assert pipeline.fingerprint(a, "train", "asym_bp0.9_bn0.4_s0") == pipeline.fingerprint(e, "train", "asym_bp0.9_bn0.4_s0")
    assert pipeline.fingerprint(a, "train", "dr_grpo_s0") == pipeline.fingerprint(a, "train", "dr_grpo_s0")


def test_resolved_config_is_written_only_when_it_changes(tmp_path):
    cfg = config_from_dict({"results_dir": str(tmp_path / "r")})
    p = pipeline.write_resolved_config(cfg)
    assert load_config(p) == cfg
    os.utime(p, ns=(1, 1))
    pipeline.write_resolved_config(cfg)
    assert p.stat().st_mtime_ns == 1
    cfg2 = dataclasses.replace(cfg, name="other")
    pipeline.write_resolved_config(cfg2)
    assert p.stat().st_mtime_ns != 1 and load_config(p) == cfg2


def test_workflow_config_names_the_file():
    with pytest.raises(ConfigError, match=r"^my\.yaml: 'train\.group_size' must be >= 2"):
        pipeline.workflow_config({"train": {"group_size": 1}}, ["my.yaml"])


def test_status_and_reruns_read_checkpoints_without_torch():
    """One checkpoint-folder rule (artifacts.list_checkpoints) for the trainer, `asym status` and
    reruns; the latter two never import torch."""
    import subprocess
    import sys

    code = ("import sys; from asymcli import pipeline, artifacts; from asymcli.training import reruns; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1500:]
    checkpointing = pytest.importorskip("asymcli.training.checkpointing")  # the trainer's checkpoint mixin
    assert checkpointing.list_checkpoints is artifacts.list_checkpoints


# ---------------------------------------------------------------------------
# Option parsing
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text,msg", [
    ("0.9", "expected one pair"), ("0.9,0.4,0.1", "expected one pair"), ("a,b", "'a' is not a number"),
    ("0.9,", "comma-separated numbers"), ("-1,0.4", ">= 0"), ("nan,0.4", "finite"), ("inf,0", "finite"),
])
def test_bad_betas(text, msg):
    with pytest.raises(ConfigError, match=re.escape(msg)):
        pipeline.parse_pair(text)


def test_grid_overrides():
    assert pipeline.grid_overrides() == {}
    assert pipeline.grid_overrides(["0.9,0.4"]) == {"betas": [[0.9, 0.4]], "grid": []}
    assert pipeline.grid_overrides(None, "0.1,0.5") == {"betas": [], "grid": [0.1, 0.5]}
    assert pipeline.grid_overrides(["1,0"], None, "grpo, reinforce", "0,1,2") == {
        "betas": [[1.0, 0.0]], "grid": [], "methods": ["grpo", "reinforce"], "seeds": [0, 1, 2]}
    for args, msg in [((None, "0.1,0.1"), "twice"), ((None, None, "asym"), "--betas/--grid"),
                      ((None, None, "foo"), "unknown method 'foo'"), ((None, None, None, "1,-2"), "--seeds"),
                      ((None, None, ""), "--methods")]:
        with pytest.raises(ConfigError, match=re.escape(msg)):
            pipeline.grid_overrides(*args)


def test_plan_grid_keeps_the_config_baselines(tmp_path):
    plan = pipeline.plan_grid(REPO / "configs" / "smoke.yaml", betas=["0.8,0.4"])
    assert plan.target == "table2"
    assert plan.runs == ["grpo_s0", "reinforce_s0", "asym_bp0.8_bn0.4_s0"]
    assert plan.raw["grid"]["methods"] == ["grpo", "reinforce"] and plan.raw["grid"]["betas"] == [[0.8, 0.4]]
    assert plan.raw["train"]["steps"] == 3  # the rest of the file is kept
    plan = pipeline.plan_grid(REPO / "configs" / "smoke.yaml", grid="0.1,0.9", methods="grpo", seeds="3")
    assert plan.target == "all" and "asym_bp0.1_bn0.9_s3" in plan.runs and "grpo_s3" in plan.runs
    assert pipeline.plan_grid(None).cfg.name == "default"  # configs/default.yaml, as the Snakefile
    with pytest.raises(ConfigError, match="--target 'x'"):
        pipeline.plan_grid(None, target="x")


def test_snakemake_command():
    cmd = pipeline.snakemake_command("c.yaml", "table2", cores="2", workdir="/w")
    assert cmd[:4] == [sys.executable, "-m", "snakemake", "table2"]
    assert cmd[cmd.index("--snakefile") + 1] == str(REPO / "Snakefile")
    assert cmd[cmd.index("--directory") + 1] == "/w" and cmd[cmd.index("--cores") + 1] == "2"
    assert "--rerun-incomplete" in cmd and "--keep-going" in cmd and "--dry-run" not in cmd
    dry = pipeline.snakemake_command(None, "all", dry_run=True, extra=["--forceall"])
    assert "--dry-run" in dry and "--configfile" not in dry and dry[-1] == "--forceall"


# ---------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------


def asym(*args, cwd):
    return subprocess.run([sys.executable, "-m", "asymcli.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args,msg", [
    (["--betas", "0.9"], "--betas '0.9': expected one pair BETA_POS,BETA_NEG"),
    (["--betas", "0.9,x"], "'x' is not a number"),
    (["--grid", "0.1,-0.5"], ">= 0"),
    (["--methods", "grpo,nope"], "unknown method 'nope'"),
    (["--seeds", "0,a"], "--seeds"),
    (["--target", "tables"], "--target 'tables': must be one of table2, grid, figures, all"),
    (["--cores", "-1"], "--cores '-1'"),
    (["--config", "missing.yaml"], "missing.yaml: config file does not exist"),
])
def test_run_grid_bad_options(tmp_path, args, msg):
    res = asym("run-grid", *args, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and msg in res.stderr, res.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_run_grid_bad_config_value(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid:\n  betas: [[0.9, 0.4, 0.1]]\n")
    res = asym("run-grid", "--config", str(bad), "--dry-run", cwd=tmp_path)
    assert res.returncode == 2 and "'grid.betas[0]' must be a [beta_pos, beta_neg] pair" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_run_grid_dry_run_plans_and_writes_no_results(tmp_path):
    res = asym("run-grid", "--config", str(REPO / "configs" / "smoke.yaml"), "--betas", "0.9,0.4",
               "--betas", "0.7,0.7", "--seeds", "0,1", "--dry-run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "run-grid: target table2, 8 run(s)" in out and "asym_bp0.7_bn0.7_s1" in out
    assert re.search(r"^train\s+8$", out, flags=re.M) and re.search(r"^eval_run\s+8$", out, flags=re.M)
    assert not (tmp_path / "results").exists()


def test_status(tmp_path, monkeypatch):
    root = write_fake_results(tmp_path / "results")
    # a run still training: a complete checkpoint, no metrics.parquet; a half-written checkpoint
    ck = root / "runs" / "clip_higher_s0" / "checkpoints"
    (ck / "step_000020").mkdir(parents=True)
    (ck / "step_000020" / "COMPLETE").write_text("{}")
    (ck / "step_000040").mkdir()
    (root / "evals" / "clip_higher_s0" / "parts").mkdir(parents=True)
    (root / "evals" / "clip_higher_s0" / "parts" / "step000020__math500.parquet").write_bytes(b"x")
    cfg = config_from_dict({"results_dir": str(root), "grid": {"methods": ["grpo", "clip_higher", "dr_grpo"],
                                                               "betas": [[0.9, 0.4]], "seeds": [0]}})
    st = pipeline.collect_status(cfg)
    rows = {r.run_id: r for r in st.runs}
    assert rows["grpo_s0"].train_state == "done" and rows["grpo_s0"].eval_state == "done"
    assert rows["clip_higher_s0"].train_state == "step 20/60" and rows["clip_higher_s0"].checkpoints == [20]
    assert rows["clip_higher_s0"].eval_state == "1 part(s)"
    assert rows["dr_grpo_s0"].train_state == "pending" and rows["dr_grpo_s0"].disk_bytes == 0
    assert rows["grpo_s0"].disk_bytes > 0
    assert not rows["pos_only_s0"].in_grid and rows["pos_only_s0"].evaluated  # found, not asked for
    assert st.pending == ["clip_higher_s0", "dr_grpo_s0"]
    assert st.base_model is False and st.prompts is False
    # the command
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"results_dir": str(root), "grid": {"methods": ["grpo", "dr_grpo"]}}))
    res = asym("status", "--config", str(conf), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "grpo_s0" in res.stdout and "pending" in res.stdout and "(not in config)" in res.stdout
    assert re.search(r"\d+/\d+ evaluations done", res.stdout)


def test_human_bytes():
    assert [pipeline.human_bytes(n) for n in (0, 512, 2048, 5 * 1024**3)] == ["-", "512 B", "2.0 KB", "5.0 GB"]


def test_library_does_not_import_snakemake_or_stages():
    code = ("import sys, asymcli.pipeline, asymcli.analysis.aggregate, asymcli.analysis.report; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('snakemake', 'stages')]; print(bad)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(REPO))
    assert res.stdout.strip() == "[]", res.stdout + res.stderr
