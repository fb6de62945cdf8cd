"""The evaluation stage: samples schema, resume per (checkpoint, benchmark), step selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from asymcli import artifacts
from asymcli.config import load_config
from asymcli.errors import AsymError, ConfigError
from asymcli.evaluation.evaluate import part_path, select_steps
from stages import evaluate as stage


@pytest.fixture()
def setup(tmp_path, tiny_policy_dir, arith_rows):
    prompts = tmp_path / "data" / "prompts.parquet"
    artifacts.write_parquet(prompts, arith_rows, artifacts.PROMPTS)
    cfg = load_config(None, {
        "results_dir": str(tmp_path),
        "train": {"max_new_tokens": 8},
        "eval": {"benchmarks": [{"name": "arith_heldout", "k": 2, "temperature": 0.4},
                                {"name": "arith_greedy", "k": 1, "temperature": 0.0,
                                 "path": str(prompts), "columns": {}}]},
    })
    return cfg, prompts


def test_select_steps():
    assert select_steps([10, 20, 30], "final") == [30]
    assert select_steps([30, 10], "all") == [10, 30]
    assert select_steps([10, 20], [20]) == [20]
    with pytest.raises(ConfigError, match=r"step\(s\) \[15\] do not exist; available steps: \[10, 20\]"):
        select_steps([10, 20], [15])


def test_base_eval_rows_and_resume(setup, tiny_policy_dir, tmp_path):
    cfg, prompts = setup
    cfg.eval.benchmarks = cfg.eval.benchmarks[:1]
    out = stage.run(cfg, model=tiny_policy_dir, prompts=prompts, progress=False)
    assert out == tmp_path / "evals" / "base" / "samples.parquet"
    rows = artifacts.read_parquet(out, artifacts.SAMPLES).to_pylist()
    n_heldout = 6 * 4
    assert len(rows) == n_heldout * 2
    assert {r["step"] for r in rows} == {0} and {r["method"] for r in rows} == {"base"}
    assert {r["sample_idx"] for r in rows} == {0, 1}
    assert all(r["verdict"] in {"correct", "wrong", "no_answer", "unparsable", "timeout"} for r in rows)
    # Resume: a finished part is not redone (its file is untouched); a missing one is.
    part = part_path(out.parent, 0, "arith_heldout")
    mtime = part.stat().st_mtime_ns
    stage.run(cfg, model=tiny_policy_dir, prompts=prompts, progress=False)
    assert part.stat().st_mtime_ns == mtime
    part.unlink()
    stage.run(cfg, model=tiny_policy_dir, prompts=prompts, progress=False)
    assert part.exists() and len(artifacts.read_parquet(out).to_pylist()) == len(rows)


def test_corrupt_part_is_redone(setup, tiny_policy_dir):
    cfg, prompts = setup
    cfg.eval.benchmarks = cfg.eval.benchmarks[:1]
    out = stage.run(cfg, model=tiny_policy_dir, prompts=prompts, progress=False)
    part = part_path(out.parent, 0, "arith_heldout")
    part.write_bytes(part.read_bytes()[:100])
    out2 = stage.run(cfg, model=tiny_policy_dir, prompts=prompts, progress=False)
    assert artifacts.read_parquet(out2, artifacts.SAMPLES).num_rows == 48


def test_bad_inputs(setup, tmp_path):
    cfg, prompts = setup
    with pytest.raises(AsymError, match="exactly one of --run"):
        stage.run(cfg, prompts=prompts)
    with pytest.raises(AsymError, match="run folder does not exist"):
        stage.run(cfg, run_dir=tmp_path / "nope", prompts=prompts)
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(AsymError, match="no complete checkpoint"):
        stage.run(cfg, run_dir=tmp_path / "empty_run", prompts=prompts)
    with pytest.raises(AsymError, match="not in the config's eval.benchmarks"):
        stage.run(cfg, model=setup_model(tmp_path), benchmarks=["math500"], prompts=prompts)


def setup_model(tmp_path: Path) -> Path:
    from asymcli.config import ModelConfig
    from asymcli.embedded.tiny import build_model, build_tokenizer, save_policy

    tok = build_tokenizer()
    folder = tmp_path / "m"
    save_policy(build_model(ModelConfig(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1,
                                        intermediate_size=32), tok), tok, folder)
    return folder


def test_curve_limit_is_not_part_of_the_spec_key():
    """The trainer's curve subset never changes a checkpoint's samples: finished parts stay valid."""
    from asymcli.config import BenchmarkSpec
    from asymcli.evaluation.evaluate import spec_key

    assert spec_key(BenchmarkSpec(name="math500"), 64, 1) == spec_key(BenchmarkSpec(name="math500", curve_limit=50), 64, 1)
    assert spec_key(BenchmarkSpec(name="math500"), 64, 1) != spec_key(BenchmarkSpec(name="math500", limit=50), 64, 1)
