"""The grading section of the config reaches every grader the pipeline builds."""

from __future__ import annotations

import pytest

from asymcli.config import config_from_dict, load_config, resolve_run
from asymcli.errors import ConfigError


def test_multi_box_default_and_choice() -> None:
    assert config_from_dict({}).grading.multi_box == "set"
    assert config_from_dict({"grading": {"multi_box": "last"}}).grading.multi_box == "last"


def test_bad_multi_box_names_the_key() -> None:
    with pytest.raises(ConfigError, match="grading.multi_box"):
        config_from_dict({"grading": {"multi_box": "first"}})


def test_trainer_builds_its_grader_from_the_config(tiny_policy_dir, arith_rows, tmp_path) -> None:
    from asymcli.training.trainer import Trainer

    cfg = load_config(None, {"model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1,
                                       "intermediate_size": 64},
                             "train": {"steps": 1, "prompts_per_step": 2, "mini_batch_prompts": 2},
                             "grading": {"multi_box": "last"}})
    run = resolve_run(cfg, "grpo", None, None, 0)
    train = [r for r in arith_rows if r["split"] == "train"]
    held = [r for r in arith_rows if r["split"] != "train"]
    trainer = Trainer(cfg, run, train, held, tiny_policy_dir, tmp_path / "run", progress=False)
    assert trainer.grader.multi_box == "last"
    assert trainer.grader.grade(r"\boxed{1} and \boxed{2}", "2").correct
