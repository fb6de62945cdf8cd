"""Stage prep and `asym prep`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from asymcli import artifacts
from asymcli.cli import app
from asymcli.config import config_from_dict, config_to_dict
from asymcli.errors import ConfigError
from stages import prep


def _cfg(tmp_path: Path, **task):
    return config_from_dict({"results_dir": str(tmp_path / "results"),
                             "task": {"n_train": 40, "n_heldout": 5, **task}})


def test_run_writes_prompts_with_provenance(tmp_path):
    cfg = _cfg(tmp_path)
    path = prep.run(cfg)
    assert path == tmp_path / "results" / "data" / "prompts.parquet"
    table = artifacts.read_parquet(path, artifacts.PROMPTS)
    splits = table.column("split").to_pylist()
    assert splits.count("train") == 40 and splits.count("heldout") == 20
    meta = artifacts.read_metadata(path)
    assert meta["config"] == config_to_dict(cfg)
    assert meta["config_hash"] == artifacts.config_hash(config_to_dict(cfg))
    assert meta["stage"] == "prep"


def test_run_is_deterministic_and_honours_out_and_limit(tmp_path):
    a = prep.run(_cfg(tmp_path), tmp_path / "a.parquet")
    b = prep.run(_cfg(tmp_path), tmp_path / "b.parquet")
    assert artifacts.read_parquet(a).equals(artifacts.read_parquet(b))
    c = prep.run(_cfg(tmp_path, limit=7, tiers=["t1", "t3"]), tmp_path / "c.parquet")
    rows = artifacts.read_parquet(c).to_pylist()
    assert sum(r["split"] == "train" for r in rows) == 7
    assert {r["difficulty"] for r in rows} <= {"t1", "t3"}


def test_worked_fraction_comes_from_the_config(tmp_path):
    rows = artifacts.read_parquet(prep.run(_cfg(tmp_path, worked_frac={"t2": 0.0}))).to_pylist()
    t2 = [r for r in rows if r["split"] == "train" and r["difficulty"] == "t2"]
    assert t2 and all(r["solution"] == f"\\boxed{{{r['answer']}}}" for r in t2)
    t4 = [r for r in rows if r["split"] == "train" and r["difficulty"] == "t4"]
    assert all("=" in r["solution"] for r in t4)  # unnamed tiers are fully worked
    with pytest.raises(ConfigError, match="task.worked_frac.t1"):
        prep.run(_cfg(tmp_path, worked_frac={"t1": 2}))


def test_unknown_tier_writes_nothing(tmp_path):
    with pytest.raises(ConfigError, match="t7"):
        prep.run(_cfg(tmp_path, tiers=["t1", "t7"]))
    assert not (tmp_path / "results").exists()


def test_benchmark_kind_reads_a_local_file(tmp_path):
    pytest.importorskip("asymcli.evaluation.benchmarks")
    src = tmp_path / "math_train.jsonl"
    rows = [
        {"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "level": "Level 1"},
        {"problem": "What is $2 \\cdot 3$?", "solution": "We get $\\boxed{6}$.", "level": "Level 2"},
        {"problem": "Solve $x+1=3$.", "solution": "So $x=\\boxed{2}$.", "level": "Level 1"},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _cfg(tmp_path, kind="benchmark", source="math_train", path=str(src), limit=2)
    table = artifacts.read_parquet(prep.run(cfg), artifacts.PROMPTS)
    got = table.to_pylist()
    assert len(got) == 2
    assert {r["split"] for r in got} == {"train"}
    assert [r["answer"] for r in got] == ["2", "6"]
    assert "What is $1+1$?" in got[0]["prompt"] and "\\boxed{}" in got[0]["prompt"]
    assert got[0]["solution"].endswith("$\\boxed{2}$.")


def test_cli_prep(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "res"), "task": {"n_train": 8, "n_heldout": 2}}))
    runner = CliRunner()
    res = runner.invoke(app, ["prep", "--config", str(cfg_file)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "res" / "data" / "prompts.parquet"
    assert res.output.strip() == str(out)
    assert artifacts.read_parquet(out, artifacts.PROMPTS).num_rows == 16
    res = runner.invoke(app, ["prep", "--config", str(cfg_file), "--out", str(tmp_path / "p.parquet")])
    assert res.exit_code == 0 and (tmp_path / "p.parquet").exists()


def test_cli_prep_user_error_is_one_line(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "res"), "task": {"tiers": ["t9"]}}))
    res = CliRunner().invoke(app, ["prep", "--config", str(cfg_file)])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "t9" in lines[0]
    assert not (tmp_path / "res").exists()
