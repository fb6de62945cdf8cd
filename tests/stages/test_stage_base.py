"""Stage base and `asym base`: a few warm-up steps of a very small model, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from asymcli import artifacts
from asymcli.cli import app
from asymcli.config import config_from_dict, config_to_dict
from asymcli.errors import ArtifactError, DataError
from asymcli.sampling.models import load_policy
from stages import base, prep

pytest.importorskip("asymcli.grading")

SMALL = {
    "results_dir": "RESULTS",
    "task": {"n_train": 24, "n_heldout": 2},
    "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 64,
              "max_position": 128},
    "base": {"steps": 4, "batch_size": 4, "warmup_steps": 1, "probe_prompts": 5},
    "train": {"group_size": 3, "max_new_tokens": 6, "threads": 1},
}


def _cfg_dict(tmp_path: Path) -> dict:
    return {**SMALL, "results_dir": str(tmp_path / "results")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("base")
    cfg = config_from_dict(_cfg_dict(tmp_path))
    prep.run(cfg)
    return cfg, base.run(cfg)


def test_outputs(built):
    cfg, paths = built
    root = Path(cfg.results_dir)
    assert paths == {"model": root / "base" / "model", "sft_metrics": root / "base" / "sft_metrics.parquet",
                     "base_stats": root / "base" / "base_stats.parquet"}
    model, tok = load_policy(paths["model"], cfg.model)
    assert model.config.hidden_size == 32 and tok.eos_token == "<|im_end|>"
    sft_rows = artifacts.read_parquet(paths["sft_metrics"], base.SFT_METRICS).to_pylist()
    assert [r["step"] for r in sft_rows] == [0, 1, 2, 3]
    stats = artifacts.read_parquet(paths["base_stats"], artifacts.BASE_STATS).to_pylist()
    assert [r["k_correct"] for r in stats] == [0, 1, 2, 3]
    assert sum(r["groups"] for r in stats) == 5
    assert {r["group_size"] for r in stats} == {3}
    meta = artifacts.read_metadata(paths["base_stats"])
    assert meta["config_hash"] == artifacts.config_hash(config_to_dict(cfg)) and meta["stage"] == "base"
    assert [p.name for p in (root / "base").iterdir() if p.name.startswith(".")] == []


def test_deterministic(built, tmp_path):
    cfg, paths = built
    again = base.run(cfg, Path(cfg.results_dir) / "data" / "prompts.parquet", tmp_path / "again")
    a, _ = load_policy(paths["model"], cfg.model)
    b, _ = load_policy(again["model"], cfg.model)
    for pa_, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa_, pb)
    for key in ("sft_metrics", "base_stats"):
        ta = artifacts.read_parquet(paths[key]).drop_columns(["seconds"] if key == "sft_metrics" else [])
        tb = artifacts.read_parquet(again[key]).drop_columns(["seconds"] if key == "sft_metrics" else [])
        assert ta.equals(tb)


def test_probe_rows_are_a_fixed_subset():
    rows = [{"i": i} for i in range(50)]
    assert base.probe_rows(rows, 10, 0) == base.probe_rows(rows, 10, 0)
    assert base.probe_rows(rows, 10, 0) != base.probe_rows(rows, 10, 1)
    assert base.probe_rows(rows, 99, 0) == rows


def test_hf_kind_records_stats_without_training(built, tmp_path):
    cfg, paths = built
    d = _cfg_dict(tmp_path)
    d["model"] = {**d["model"], "kind": "hf", "path": str(paths["model"])}
    hf_cfg = config_from_dict(d)
    out = base.run(hf_cfg, Path(cfg.results_dir) / "data" / "prompts.parquet", tmp_path / "hf")
    assert out["model"] == paths["model"]
    assert not (tmp_path / "hf" / "model").exists()
    assert artifacts.read_parquet(out["sft_metrics"], base.SFT_METRICS).num_rows == 0
    assert artifacts.read_parquet(out["base_stats"], artifacts.BASE_STATS).num_rows == 4


def test_missing_or_unsupervised_prompts(tmp_path):
    cfg = config_from_dict(_cfg_dict(tmp_path))
    with pytest.raises(ArtifactError, match="does not exist"):
        base.run(cfg)
    rows = [{"problem_id": "p", "split": "train", "source": "arith", "difficulty": "t1",
             "prompt": "Compute 1+1. Put the final answer in \\boxed{}.", "answer": "2", "solution": ""}]
    path = artifacts.write_parquet(tmp_path / "p.parquet", rows, artifacts.PROMPTS)
    with pytest.raises(DataError, match="no training row has a solution"):
        base.run(cfg, path, tmp_path / "out")
    held = [dict(rows[0], split="heldout")]
    path = artifacts.write_parquet(tmp_path / "h.parquet", held, artifacts.PROMPTS)
    with pytest.raises(DataError, match="no rows with split == 'train'"):
        base.run(cfg, path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_base(built, tmp_path):
    cfg, paths = built
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump(_cfg_dict(tmp_path)))
    prompts = Path(cfg.results_dir) / "data" / "prompts.parquet"
    res = CliRunner().invoke(app, ["base", "--config", str(cfg_file), "--prompts", str(prompts),
                                   "--out", str(tmp_path / "b"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-1] == str(tmp_path / "b" / "model")
    assert (tmp_path / "b" / "base_stats.parquet").exists()
    res = CliRunner().invoke(app, ["base", "--config", str(cfg_file), "--prompts", str(tmp_path / "nope.parquet")])
    assert res.exit_code == 2 and "nope.parquet" in res.output
