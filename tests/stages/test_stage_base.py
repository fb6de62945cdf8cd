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


def _row(i: int, answer: str, split: str = "train", family: str = "t1") -> dict:
    return {"problem_id": f"{split}-{i}", "split": split, "source": "arith", "difficulty": family,
            "prompt": f"Compute {answer}+0. Put the final answer in \\boxed{{}}.", "answer": answer,
            "solution": f"\\boxed{{{answer}}}", "metadata": None}


def test_constant_answer_baseline_is_graded_by_the_reward():
    from asymcli.grading import Grader

    # "7" is 3 of the 5 training golds; "7.0" is graded equal to it (the grader's path, not ==)
    train = [_row(0, "7"), _row(1, "7"), _row(2, "7.0"), _row(3, "12"), _row(4, "3"),
             _row(5, "5", family="t2"), _row(6, "4", family="t2")]  # t2: a tie, the smaller string
    held = [_row(0, "7", "heldout"), _row(1, "8", "heldout"), _row(2, "9", "test"), _row(3, "9", "heldout")]
    got = base.constant_answer_baseline(train, held, Grader())
    assert got["t1"] == {"answer": "7", "train": {"right": 3, "graded": 5, "rows": 5, "frac": 0.6},
                         "heldout": {"right": 1, "graded": 4, "rows": 4, "frac": 0.25}}
    assert got["t2"]["answer"] == "4" and got["t2"]["train"]["frac"] == 0.5
    assert got["t2"]["heldout"] == {"right": 0, "graded": 0, "rows": 0, "frac": None}
    capped = base.constant_answer_baseline(train, held, Grader(), cap=2)["t1"]
    assert capped["train"]["graded"] == 2 and capped["train"]["rows"] == 5


def test_the_warning_appears_when_the_constant_does_as_well_as_the_base():
    const = {"t1": {"answer": "1", "train": {"right": 56, "graded": 100, "rows": 100, "frac": 0.56},
                    "heldout": {"right": 57, "graded": 98, "rows": 98, "frac": 57 / 98}}}
    below = base.accuracy_lines({"t1": [223, 512]}, "task.tiers", const)  # base 0.436 < 0.56
    assert below[1] == ("the most common answer on t1, '1', alone is right on 56% of training prompts (56/100); "
                        "58% of held-out prompts (57/98)")
    assert len(below) == 3 and below[2].startswith("warning: on t1, always answering '1' is rewarded on 0.560")
    assert "collapse" in below[2] and "usable only if you accept" in below[2]
    above = base.accuracy_lines({"t1": [300, 512]}, "task.tiers", const)  # base 0.586 > 0.56
    assert len(above) == 2 and not any("warning" in line for line in above)
    tie = base.accuracy_lines({"t1": [56, 100]}, "task.tiers", const)  # as well as the base: warned
    assert "warning" in tie[-1]
    never = {"t1": dict(const["t1"], train={"right": 0, "graded": 9, "rows": 9, "frac": 0.0})}
    assert len(base.accuracy_lines({"t1": [0, 64]}, "task.tiers", never)) == 2  # right on none: no shortcut
    capped = {"t1": dict(const["t1"], train={"right": 5, "graded": 10, "rows": 30, "frac": 0.5})}
    assert "(5/10 graded of 30)" in base.accuracy_lines({"t1": [1, 8]}, "task.tiers", capped)[1]


def test_base_run_records_and_reports_the_constant_answer(built, tmp_path):
    cfg, paths = built
    rows = [_row(i, "1" if i % 4 else str(i)) for i in range(12)] + [_row(i, "1", "heldout") for i in range(3)]
    prompts = artifacts.write_parquet(tmp_path / "p.parquet", rows, artifacts.PROMPTS)
    d = _cfg_dict(tmp_path)
    d["model"] = {**d["model"], "kind": "hf", "path": str(paths["model"])}  # no warm-up: the built base
    lines: list[str] = []
    out = base.run(config_from_dict(d), prompts, tmp_path / "hf", log=lines.append)
    const = artifacts.read_metadata(out["base_stats"])["constant_answer"]
    assert const == {"t1": {"answer": "1", "train": {"right": 9, "graded": 12, "rows": 12, "frac": 0.75},
                            "heldout": {"right": 3, "graded": 3, "rows": 3, "frac": 1.0}}}
    i = next(i for i, line in enumerate(lines) if line.startswith("base: base accuracy on t1"))
    assert lines[i + 1] == ("base: the most common answer on t1, '1', alone is right on 75% of training "
                            "prompts (9/12); 100% of held-out prompts (3/3)")
    acc = artifacts.read_metadata(out["base_stats"])["base_accuracy"]["t1"]
    assert any(line.startswith("base: warning: on t1") for line in lines) == (acc <= 0.75)


def test_shipped_name_one_per_config_or_per_base_seed():
    from stages.base import shipped_name

    default = config_from_dict({"name": "default"})
    assert shipped_name(default, "configs/default.yaml", None) == (
        "default-base", "asym base --config configs/default.yaml --write-prebuilt")
    bases = config_from_dict({"name": "headline", "grid": {"bases": [1, 2, 3]}})
    assert shipped_name(bases, "configs/headline.yaml", 2) == (
        "headline-base2", "asym base --config configs/headline.yaml --base-seed 2 --write-prebuilt")
    # one base seed given to a one-base config: still that config's single shipped base
    assert shipped_name(default, "c.yaml", 5)[0] == "default-base"
