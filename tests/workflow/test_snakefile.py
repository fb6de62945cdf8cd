"""The Snakemake workflow: schema, dry runs of every shipped config, lint, rerun semantics.

The DAG tests run real Snakemake with a stand-in `asym` package (tests/pipeline/test_pipeline_fakes)
whose prep/base/train/eval write synthetic artifacts instantly, while aggregate and report
are the real commands. The true end-to-end smoke run is ``test_smoke_dag_end_to_end``
(marked slow).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from asymcli import pipeline
from asymcli.config import load_config
from tests.pipeline.test_pipeline_fakes import install_fake_asym

REPO = pipeline.REPO_ROOT
PAPER = sorted((REPO / "configs" / "paper").glob("*.yaml"))
CONFIGS = [REPO / "configs" / "default.yaml", REPO / "configs" / "smoke.yaml", REPO / "configs" / "mechanism.yaml",
           REPO / "configs" / "headline.yaml", *PAPER]


def snakemake(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(pipeline.SNAKEFILE),
           "--directory", str(cwd), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a snakemake run / dry run."""
    counts: dict[str, int] = {}
    block = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())  # a bundle's name has dots: eval_bundle_2of3_asym_bp0.9_...
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


# ---------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------


def test_committed_schema_is_the_generated_one():
    committed = pipeline.SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == pipeline.schema_text(), (
        "workflow/schemas/config.schema.json is stale; regenerate with "
        "python -c \"from asymcli import pipeline; pipeline.write_schema()\"")


def test_committed_config_reference_is_the_generated_one():
    committed = pipeline.CONFIG_DOCS.read_text(encoding="utf-8")
    assert committed == pipeline.config_docs_text(), (
        "docs/config.md is stale; regenerate with "
        "python -c \"from asymcli import pipeline; pipeline.write_schema()\"")


def test_schema_documents_every_key():
    schema = json.loads(pipeline.SCHEMA_FILE.read_text())

    def walk(node: dict, path: str) -> None:
        for key, prop in node.get("properties", {}).items():
            assert "description" in prop, f"{path}{key} has no description"
            if prop.get("type") == "object" and "properties" in prop:
                walk(prop, f"{path}{key}.")
            else:
                assert "default" in prop, f"{path}{key} has no default"
            if prop.get("type") == "array" and "properties" in prop.get("items", {}):
                walk(prop["items"], f"{path}{key}[].")

    walk(schema, "")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate_against_schema(path):
    import jsonschema

    schema = json.loads(pipeline.SCHEMA_FILE.read_text())
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


# ---------------------------------------------------------------------------
# Dry runs (no models are loaded, nothing is written under results_dir)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_dry_run_plans_table2(path, tmp_path):
    res = snakemake("-n", "table2", "--configfile", str(path), "--config", f"results_dir={tmp_path}/results",
                    cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    counts = job_counts(res.stdout + res.stderr)
    cfg = load_config(path)
    n = len(pipeline.table_runs(cfg))
    bundles = pipeline.train_bundles(cfg)  # one job per bundle, one per unbundled run
    bundled = sum(len(v) for v in bundles.values())
    assert counts.get("train", 0) == n - bundled
    assert sum(v for k, v in counts.items() if k.startswith("train_bundle_")) == len(bundles)
    evals = pipeline.eval_bundles(cfg)  # the same for evaluation
    assert counts.get("eval_run", 0) == n - sum(len(v) for v in evals.values())
    assert sum(v for k, v in counts.items() if k.startswith("eval_bundle_")) == len(evals)
    bases = len(cfg.grid.bases) or 1
    assert counts["eval_base"] == bases and counts["prep"] == 1
    assert counts.get("base", 0) == (bases if cfg.model.kind == "tiny" else 0)
    assert not (tmp_path / "results").exists(), "a dry run must not write results"


def test_dry_run_default_config_all_targets(tmp_path):
    res = snakemake("-n", "all", "--config", f"results_dir={tmp_path}/r", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout + res.stderr)
    cfg = load_config(pipeline.DEFAULT_CONFIG)
    bundles = pipeline.train_bundles(cfg)  # the default trains GRPO and AsymGRPO as a bundle of two
    assert counts.get("train", 0) + sum(len(v) for v in bundles.values()) == len(pipeline.all_runs(cfg))
    assert sum(v for k, v in counts.items() if k.startswith("train_bundle_")) == len(bundles)
    for rule in ("aggregate_table2", "aggregate_grid", "aggregate_curves", "report_table2",
                 "report_grid", "report_figures", "report_index"):
        assert counts[rule] == 1


def test_paper_grid_target_trains_the_cartesian_grid(tmp_path):
    path = REPO / "configs" / "paper" / "qwen3-4b.yaml"
    res = snakemake("-n", "grid", "--configfile", str(path), "--config", f"results_dir={tmp_path}/r", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = load_config(path)
    assert job_counts(res.stdout + res.stderr)["train"] == len(pipeline.grid_pair_runs(cfg))
    assert len(cfg.grid.grid) ** 2 <= len(pipeline.grid_pair_runs(cfg))


def test_train_rule_passes_resources_and_run_options(tmp_path):
    path = REPO / "configs" / "paper" / "qwen3-4b.yaml"
    target = f"{tmp_path}/r/runs/asym_bp0.9_bn0.4_s0/metrics.parquet"
    res = snakemake("-n", "-p", target, "--configfile", str(path), "--config", f"results_dir={tmp_path}/r",
                    cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "gpu=4" in out and "mem_mb=256000" in out and "runtime=2880" in out
    # 4 GPUs per run: one process per GPU under torchrun (DeepSpeed data parallel)
    assert re.search(r"torchrun --standalone --nproc_per_node 4 -m asymcli\.cli train --config "
                     r"\S+config\.resolved\.yaml --method asym --beta-pos 0\.9 "
                     r"--beta-neg 0\.4 --seed 0 .*--model Qwen/Qwen3-4B", out)


def test_jobs_run_the_interpreter_that_runs_snakemake(tmp_path):
    """The bug of a full-path call (`.venv/bin/asym run-grid` in a shell without the venv):
    jobs must not look `asym` up on PATH but run Snakemake's own interpreter."""
    # PATH without any folder that holds an asym (the venv's bin/, with its python, among them)
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if d and not shutil.which("asym", path=d))
    env = {**os.environ, "PATH": path, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    assert shutil.which("asym", path=env["PATH"]) is None
    prompts = tmp_path / "r" / "data" / "prompts.parquet"
    res = snakemake("--cores", "1", str(prompts), "--printshellcmds", "--configfile", str(REPO / "configs" / "smoke.yaml"),
                    "--config", f"results_dir={tmp_path}/r", cwd=tmp_path, env=env)
    log = tmp_path / "r" / "logs" / "prep.log"
    assert res.returncode == 0, res.stderr[-3000:] + (log.read_text() if log.exists() else "")
    assert prompts.exists() and "asym prep --config" in res.stdout + res.stderr


def test_invalid_config_fails_with_one_clear_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  group_size: 1\n")
    res = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "invalid config: " in out and "'train.group_size' must be >= 2" in out


def test_configfile_replaces_the_default_config(tmp_path):
    # smoke.yaml does not set grid.grid; merged over default.yaml it would inherit its grid
    res = snakemake("-n", "grid", "--configfile", str(REPO / "configs" / "smoke.yaml"),
                    "--config", f"results_dir={tmp_path}/r", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert job_counts(res.stdout + res.stderr)["train"] == 1  # only smoke's (0.9, 0.4)


def test_lint_only_asks_for_software_environments(tmp_path):
    """`snakemake --lint` passes but for one justified warning: rules declare no conda env /
    container because they call the installed `asym` (torch/vLLM builds are machine
    specific: CPU wheel here, CUDA there), not a per-rule tool."""
    res = snakemake("--lint", "--config", f"results_dir={tmp_path}/r", cwd=tmp_path)
    out = res.stdout + res.stderr
    titles = set(re.findall(r"^\s+\* (.+?):\s*$", out, flags=re.M))
    assert titles <= {"Specify a conda environment or container for each rule."}, titles


# ---------------------------------------------------------------------------
# Running the DAG with a stand-in asym: artifacts, rerun semantics, sharing with run-grid
# ---------------------------------------------------------------------------

MINI = {
    "name": "mini",
    "results_dir": "results",
    "eval": {"benchmarks": [{"name": "arith_heldout", "k": 2, "temperature": 0.4}]},
    "grid": {"methods": ["grpo", "reinforce"], "betas": [[0.9, 0.4]], "grid": [], "seeds": [0]},
}


@pytest.fixture()
def fake_env(tmp_path):
    shim = install_fake_asym(tmp_path / "shim")
    env = dict(os.environ)
    env["FAKE_ASYM_LOG"] = str(tmp_path / "calls.log")
    env["PYTHONPATH"] = os.pathsep.join([str(shim), str(REPO), env.get("PYTHONPATH", "")])
    return env


def write_config(path: Path, **changes) -> Path:
    data = json.loads(json.dumps(MINI))
    for key, value in changes.items():
        section, field = key.split("__")
        data.setdefault(section, {})[field] = value
    path.write_text(yaml.safe_dump(data))
    return path


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_several_bases_each_seed_trains_from_its_own(tmp_path, fake_env):
    """grid.bases: one base job per base seed (base/b{k}/), seed s trains from bases[s % n],
    every base is evaluated (base_b{k}) and Table 2's base row pools them."""
    work = tmp_path / "work"
    work.mkdir()
    cfg = write_config(tmp_path / "mb.yaml", grid__bases=[3, 5], grid__seeds=[0, 1, 2])
    res = snakemake("--cores", "2", "table2", "--configfile", str(cfg), cwd=work, env=fake_env)
    assert res.returncode == 0, res.stderr[-4000:]
    ran = calls(tmp_path)
    bases = sorted(c for c in ran if c.startswith("base"))
    assert len(bases) == 2 and any("--base-seed 3" in c for c in bases) and any("--base-seed 5" in c for c in bases)
    results = work / "results"
    for c in ran:
        if c.startswith("train"):
            seed = int(re.search(r"--seed (\d+)", c).group(1))
            assert f"--model results/base/b{[3, 5][seed % 2]}/model " in c, c
    evals = [c for c in ran if c.startswith("eval") and "--run-id" in c]
    assert sorted(re.search(r"--run-id (\S+)", c).group(1) for c in evals) == ["base_b3", "base_b5"]
    assert (results / "evals" / "base_b3" / "samples.parquet").exists()
    assert "Base model" in (results / "report" / "table2.md").read_text()
    c = load_config(cfg)
    # the train fingerprint names the base only with several bases
    assert '"base":5' in pipeline.fingerprint(c, "train", "grpo_s1")
    assert '"base"' not in pipeline.fingerprint(load_config(write_config(tmp_path / "one.yaml")), "train", "grpo_s1")
    assert pipeline.model_path(c, 2).endswith("base/b3/model") and pipeline.base_run_ids(c) == ["base_b3", "base_b5"]


def test_dag_runs_then_reruns_only_what_changed(tmp_path, fake_env):
    work = tmp_path / "work"
    work.mkdir()
    cfg = write_config(tmp_path / "mini.yaml")
    res = snakemake("--cores", "2", "all", "--configfile", str(cfg), cwd=work, env=fake_env)
    assert res.returncode == 0, res.stderr[-4000:]
    results = work / "results"
    for files in pipeline.REPORT_PARTS.values():
        for f in files:
            assert (results / "report" / f).exists(), f
    assert (results / "agg" / "table2.parquet").exists()
    assert (results / "config.resolved.yaml").exists()
    assert load_config(results / "config.resolved.yaml") == load_config(cfg)
    ran = calls(tmp_path)
    assert sum(c.startswith("train") for c in ran) == 3 and sum(c.startswith("eval") for c in ran) == 4
    table = (results / "report" / "table2.md").read_text()
    assert "AsymGRPO (βpos=0.9, βneg=0.4)" in table and "GRPO" in table and "Base model" in table

    # a second call does nothing
    res = snakemake("-n", "all", "--configfile", str(cfg), cwd=work, env=fake_env)
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr, res.stdout[-2000:]
    resolved_mtime = (results / "config.resolved.yaml").stat().st_mtime_ns

    # changing one beta pair: only that pair trains and evaluates; tables are rebuilt
    cfg2 = write_config(tmp_path / "mini2.yaml", grid__betas=[[0.8, 0.4]])
    res = snakemake("-n", "table2", "--configfile", str(cfg2), cwd=work, env=fake_env)
    counts = job_counts(res.stdout + res.stderr)
    assert counts.get("train") == 1 and counts.get("eval_run") == 1, counts
    assert "prep" not in counts and "base" not in counts and "eval_base" not in counts
    assert "asym_bp0.8_bn0.4_s0" in res.stdout + res.stderr

    # adding a seed: only the new seed's runs
    cfg3 = write_config(tmp_path / "mini3.yaml", grid__seeds=[0, 1])
    counts = job_counts(snakemake("-n", "table2", "--configfile", str(cfg3), cwd=work, env=fake_env).stdout)
    assert counts.get("train") == 3, counts

    # a training setting every run shares: every run retrains (params trigger)
    cfg4 = write_config(tmp_path / "mini4.yaml", train__lr=1e-4)
    counts = job_counts(snakemake("-n", "table2", "--configfile", str(cfg4), cwd=work, env=fake_env).stdout)
    assert counts.get("train") == 3 and "prep" not in counts, counts

    # a report setting: no training or evaluation, only aggregation and report
    cfg5 = write_config(tmp_path / "mini5.yaml", report__ema=0.5)
    counts = job_counts(snakemake("-n", "table2", "--configfile", str(cfg5), cwd=work, env=fake_env).stdout)
    assert set(counts) == {"aggregate_table2", "report_table2", "table2"}, counts

    # dry runs never rewrote the resolved config
    assert (results / "config.resolved.yaml").stat().st_mtime_ns == resolved_mtime


def test_eval_bundles_run_as_one_job_and_rerun_as_runs(tmp_path, fake_env):
    """resources.eval_bundle: bundled runs are evaluated by one `asym eval --runs` job into
    their own evals/{run}/, with eval_runtime_min per run; a second call does nothing; a
    retrained member reruns its bundle and no other (the others' parts are kept:
    tests/stages/test_stage_evaluate.py), a missing samples file asked for too."""
    work = tmp_path / "work"
    work.mkdir()
    cfg = write_config(tmp_path / "eb.yaml", resources__eval_bundle=2, grid__seeds=[0, 1])
    bundles = pipeline.eval_bundles(load_config(cfg))
    assert sorted(len(v) for v in bundles.values()) == [2, 2, 2]  # 6 Table 2 runs
    # a bundle job asks for eval_runtime_min per run (its runs are evaluated one after another)
    runtime, rule, runtimes = load_config(cfg).resources.eval_runtime_min, None, {}
    for line in snakemake("-n", "table2", "--configfile", str(cfg), cwd=work, env=fake_env).stdout.splitlines():
        if m := re.match(r"^(?:local)?rule (\S+):$", line):
            rule = m.group(1)
        elif m := re.search(r"^\s+resources: .*\bruntime=(\d+)", line):
            runtimes[rule] = int(m.group(1))
    assert {r: t for r, t in runtimes.items() if r.startswith("eval")} == \
        {"eval_base": runtime, **{f"eval_bundle_{n}": 2 * runtime for n in bundles}}, runtimes
    res = snakemake("--cores", "2", "table2", "--configfile", str(cfg), cwd=work, env=fake_env)
    assert res.returncode == 0, res.stderr[-4000:]
    ran = [c for c in calls(tmp_path) if c.startswith("eval")]
    assert sorted(c.split("--runs ")[1].split()[0] for c in ran if "--runs" in c) == \
        sorted(",".join(v) for v in bundles.values())
    assert len(ran) == 3 + 1  # the bundles and the base model
    results = work / "results"
    for rids in bundles.values():
        for rid in rids:
            assert (results / "evals" / rid / "samples.parquet").exists()
    res = snakemake("-n", "table2", "--configfile", str(cfg), cwd=work, env=fake_env)
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout[-2000:]
    # one run trains again (its slice changed): its eval bundle reruns, the other bundles do not
    cfg2 = write_config(tmp_path / "eb2.yaml", resources__eval_bundle=2, grid__seeds=[0, 1],
                        methods__grpo={"lr": 5e-4})
    counts = job_counts(snakemake("-n", "table2", "--configfile", str(cfg2), cwd=work, env=fake_env).stdout)
    grpo = [n for n, r in bundles.items() if any(x.startswith("grpo_") for x in r)]
    assert len(grpo) < len(bundles) and counts.get("train") == 2 and "eval_run" not in counts, counts
    assert sorted(k for k in counts if k.startswith("eval_bundle_")) == sorted(f"eval_bundle_{n}" for n in grpo), counts
    # a bundled run's missing samples file, asked for (Snakemake remakes a missing intermediate
    # file only when something asks for it, not for a finished table2): its bundle's job alone
    name, rids = next(iter(bundles.items()))
    (results / "evals" / rids[1] / "samples.parquet").unlink()
    target = str((results / "evals" / rids[1] / "samples.parquet").relative_to(work))
    counts = job_counts(snakemake("-n", target, "--configfile", str(cfg), cwd=work, env=fake_env).stdout)
    assert counts == {f"eval_bundle_{name}": 1}, counts


def test_run_grid_shares_artifacts_with_snakemake(tmp_path, fake_env, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    cfg = write_config(tmp_path / "mini.yaml", grid__betas=[[0.5, 0.5]])
    res = subprocess.run([sys.executable, "-m", "asymcli.cli", "run-grid", "--config", str(cfg),
                          "--betas", "0.9,0.4", "--cores", "2"],
                         cwd=work, env=fake_env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:] + res.stdout[-2000:]
    assert "Table 2 (Avg@k)" in res.stdout and "AsymGRPO (βpos=0.9, βneg=0.4)" in res.stdout
    assert not (work / "results" / "runs" / "asym_bp0.5_bn0.5_s0").exists()  # --betas replaced the pair
    # the same config given straight to snakemake finds everything up to date
    cfg_same = write_config(tmp_path / "same.yaml")
    res = snakemake("-n", "table2", "--configfile", str(cfg_same), cwd=work, env=fake_env)
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout[-3000:]
    # and status (results_dir is relative to the working directory) sees it all
    monkeypatch.chdir(work)
    st = pipeline.collect_status(load_config("results/config.resolved.yaml"))
    assert not st.pending


@pytest.mark.slow
def test_smoke_dag_end_to_end(tmp_path):
    """The real pipeline on configs/smoke.yaml: prep, base, 3 training runs, evaluation,
    aggregate, report (needs the prep/base/train/eval stages)."""
    work = tmp_path / "work"
    work.mkdir()
    if shutil.which("asym") is None:
        pytest.skip("the asym command is not installed")
    res = snakemake("--cores", "2", "table2", "--configfile", str(REPO / "configs" / "smoke.yaml"),
                    "--config", f"results_dir={work}/results", cwd=work, timeout=1800)
    assert res.returncode == 0, res.stderr[-6000:]
    table = (work / "results" / "report" / "table2.md").read_text()
    assert "GRPO" in table and "AsymGRPO" in table
    res = snakemake("-n", "table2", "--configfile", str(REPO / "configs" / "smoke.yaml"),
                    "--config", f"results_dir={work}/results", cwd=work)
    assert "Nothing to be done" in res.stdout + res.stderr
