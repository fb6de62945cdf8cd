"""Snakemake profiles under workflow/profiles/: local and SLURM.

The SLURM profile is checked by dry runs (``snakemake -n --profile workflow/profiles/slurm``):
the executor plugin loads, the DAG is the same as the local one, and each train/eval job
carries the resources of the config's ``resources:`` section (gpu, mem_mb, runtime,
slurm_partition, slurm_account). No SLURM cluster is reachable here, so no job is submitted.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "workflow" / "profiles"
SMOKE = REPO / "configs" / "smoke.yaml"
HAVE_SLURM_PLUGIN = importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None
needs_plugin = pytest.mark.skipif(not HAVE_SLURM_PLUGIN,
                                  reason="snakemake-executor-plugin-slurm is not installed (pip install 'asym[slurm]')")


def profile(name: str) -> dict:
    return yaml.safe_load((PROFILES / name / "config.yaml").read_text(encoding="utf-8"))


def dry_run(profile_name: str, configfile: Path, workdir: Path, *targets: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", *targets, "-n", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--profile", str(PROFILES / profile_name),
           "--configfile", str(configfile)]  # --configfile takes several values: last
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def job_counts(output: str) -> dict[str, int]:
    block = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M) if m.group(1) != "total"}


def job_resources(output: str, rule: str) -> list[dict[str, str]]:
    """The 'resources:' line of every job of ``rule`` in a dry run's listing, parsed."""
    out = []
    for block in re.split(r"\n(?=\[)", output):
        if re.search(rf"^(local)?rule {rule}:", block, re.M):
            line = re.search(r"^\s*resources: (.*)$", block, re.M).group(1)
            out.append(dict(kv.split("=", 1) for kv in line.split(", ")))
    return out


def test_slurm_profile_settings():
    p = profile("slurm")
    assert p["executor"] == "slurm"
    assert p["rerun-incomplete"] is True and p["retries"] >= 1 and p["latency-wait"] >= 30
    assert p["jobs"] >= 1 and {"mem_mb", "runtime"} <= set(p["default-resources"])
    # Per-rule resources come from the run config, not from the profile.
    assert "set-resources" not in p and "set-threads" not in p


def test_local_profile_settings():
    p = profile("local")
    assert p["cores"] == "all" and p["rerun-incomplete"] is True and p["printshellcmds"] is True
    assert "executor" not in p


@needs_plugin
def test_slurm_dry_run_plans_the_same_dag_as_local(tmp_path):
    slurm = dry_run("slurm", SMOKE, tmp_path / "slurm")
    local = dry_run("local", SMOKE, tmp_path / "local")
    assert "Using profile" in slurm and "workflow/profiles/slurm" in slurm
    counts = job_counts(slurm)
    assert counts == job_counts(local)
    assert counts["train"] == counts["eval_run"] >= 1


@needs_plugin
def test_slurm_jobs_take_resources_from_the_config(tmp_path):
    cfg = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    cfg["resources"].update(train_gpus=4, train_mem_mb=256000, train_runtime_min=2880, eval_gpus=1,
                            eval_mem_mb=64000, eval_runtime_min=600, slurm_partition="h100", slurm_account="rlvr")
    cfg["grid"].update(grid=[0.5, 0.9], methods=[])
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    out = dry_run("slurm", path, tmp_path / "work", "grid")
    train = job_resources(out, "train")
    assert len(train) == 5  # Figure 4d on a 2x2 grid + the config's (0.9, 0.4) pair
    for r in train:
        assert (r["gpu"], r["mem_mb"], r["runtime"]) == ("4", "256000", "2880")
        assert (r["slurm_partition"], r["slurm_account"]) == ("h100", "rlvr")
    for r in job_resources(out, "eval_run"):
        assert (r["gpu"], r["mem_mb"], r["runtime"], r["slurm_partition"]) == ("1", "64000", "600", "h100")
    # Rules without their own resources get the profile's defaults.
    (prep,) = job_resources(out, "prep")
    assert prep["runtime"] == str(profile("slurm")["default-resources"]["runtime"])
