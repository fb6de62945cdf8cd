"""AsymGRPOTrainer against the real TRL: the example of docs/integrations.md, run on the tiny random policy.

A few GRPOTrainer steps with a rule-based reward; the advantages TRL logs (its completions
Parquet) and the ones its loss receives must be the registry's for the logged rewards.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
pd = pytest.importorskip("pandas")

from asymcli.algorithm.advantages import compute_advantages  # noqa: E402
from asymcli.config import ModelConfig  # noqa: E402
from asymcli.integrations.trl import AsymGRPOConfig, AsymGRPOTrainer  # noqa: E402
from asymcli.embedded.tiny import build_model, build_tokenizer  # noqa: E402
from tests._readme import EXAMPLES, example_block

SMALL = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64,
                    max_position=128)
G = 4  # num_generations of the docs/integrations.md example


def tiny_setup(tmp_path: Path) -> dict:
    tok = build_tokenizer()
    prompts = [f"Compute {a}+{b}." for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (4, 4)]]
    return {"model": build_model(SMALL, tok, seed=0), "tokenizer": tok,
            "dataset": datasets.Dataset.from_dict({"prompt": prompts}), "output_dir": str(tmp_path)}


def test_readme_example_trains_with_the_registry_advantages(tmp_path, monkeypatch):
    used: list[torch.Tensor] = []  # the advantages each loss call received
    original = AsymGRPOTrainer._compute_loss

    def recording(self, model, inputs):
        used.append(inputs["advantages"].detach().clone())
        return original(self, model, inputs)

    monkeypatch.setattr(AsymGRPOTrainer, "_compute_loss", recording)
    ns = tiny_setup(tmp_path)
    exec(compile(example_block("python"), str(EXAMPLES), "exec"), ns)
    trainer = ns["trainer"]
    args = trainer.args
    assert (args.advantage_estimator, args.beta_pos, args.beta_neg) == ("asym", 0.9, 0.4)

    files = sorted((tmp_path / "completions").glob("completions_*.parquet"))
    assert len(files) == args.max_steps == len(used)
    differs_from_trl = False
    for path, adv_used in zip(files, used, strict=True):
        table = pd.read_parquet(path)
        rewards = torch.tensor(table["has_digit"].to_numpy(), dtype=torch.float64)
        groups = torch.arange(len(table)) // G
        expected = compute_advantages("asym", rewards, groups, beta_pos=0.9, beta_neg=0.4)
        logged = torch.tensor(table["advantage"].to_numpy(), dtype=torch.float64)
        torch.testing.assert_close(logged, expected, atol=1e-6, rtol=1e-6)
        # TRL shuffles the batch before the loss: compare as multisets.
        torch.testing.assert_close(adv_used.double().sort().values, expected.sort().values, atol=1e-6, rtol=1e-6)
        # TRL's own advantages (group std + 1e-4) would differ on any mixed group.
        r = rewards.view(-1, G)
        trl = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).reshape(-1)
        differs_from_trl |= not torch.allclose(trl, expected, atol=1e-3)
    assert differs_from_trl, "no mixed group in 3 steps: the test would not tell the estimators apart"

    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == args.max_steps and all(math.isfinite(x) for x in losses)
    steps = [h for h in history if "asym/none_solved_frac" in h]
    assert len(steps) == args.max_steps
    for h in steps:
        assert h["asym/none_solved_frac"] + h["asym/all_solved_frac"] + h["asym/mixed_frac"] == pytest.approx(1.0)
    assert any(h.get("asym/kappa_batch") is not None and math.isfinite(h["asym/kappa_batch"]) for h in steps)
    # The gain of batch k is measured at generation k+1: logged from the second step on.
    assert "asym/logprob_gain_correct" not in steps[0]
    assert any("asym/logprob_gain_correct" in h for h in steps[1:])


def test_config_rejects_what_would_not_be_used(tmp_path):
    common = {"output_dir": str(tmp_path), "report_to": "none", "bf16": False}
    with pytest.raises(ValueError, match="unknown estimator 'asymm'; known estimators: asym,"):
        AsymGRPOConfig(advantage_estimator="asymm", **common)
    with pytest.raises(ValueError, match="fixes beta_pos=0.5"):
        AsymGRPOConfig(advantage_estimator="pos_only", beta_pos=0.9, **common)
    with pytest.raises(ValueError, match="beta_neg must be a finite number >= 0"):
        AsymGRPOConfig(beta_neg=-1.0, **common)
    with pytest.raises(ValueError, match="multi_objective_aggregation='normalize_then_sum'"):
        AsymGRPOConfig(multi_objective_aggregation="normalize_then_sum", **common)
    assert AsymGRPOConfig(advantage_estimator="pos_only", **common).beta_pos is None  # = the fixed 0.5
    # TRL's reward scaling is replaced by the estimator: anything but 'none' is refused, not ignored.
    assert AsymGRPOConfig(**common).scale_rewards == "none"
    assert AsymGRPOConfig(scale_rewards=False, **common).scale_rewards == "none"
    for value in ("group", "batch", True):
        with pytest.raises(ValueError, match=f"scale_rewards={value!r} would not be used.*'grpo_unbiased'"):
            AsymGRPOConfig(scale_rewards=value, **common)


def test_trainer_needs_its_config_and_scores_unscored_rollouts_zero(tmp_path):
    from trl import GRPOConfig

    ns = tiny_setup(tmp_path)
    common = {"output_dir": str(tmp_path), "report_to": "none", "bf16": False, "num_generations": G,
              "per_device_train_batch_size": 2 * G}

    def reward(completions, **kwargs):
        return [0.0] * len(completions)

    with pytest.raises(TypeError, match="AsymGRPOTrainer needs args=AsymGRPOConfig"):
        AsymGRPOTrainer(model=ns["model"], processing_class=ns["tokenizer"], reward_funcs=reward,
                        args=GRPOConfig(**common), train_dataset=ns["dataset"])
    trainer = AsymGRPOTrainer(model=ns["model"], processing_class=ns["tokenizer"], reward_funcs=reward,
                              args=AsymGRPOConfig(advantage_estimator="ent_increase", **common),
                              train_dataset=ns["dataset"])
    # Two groups of 4; in the second a reward function returned None for one rollout.
    per_func = torch.tensor([[1.0], [0.0], [0.0], [0.0], [1.0], [1.0], [float("nan")], [0.0]])
    rewards, scored = trainer._rewards(per_func)
    groups = torch.arange(8) // G
    adv = trainer._advantages(rewards, groups, scored)
    assert adv[6] == 0
    keep = torch.tensor([0, 1, 2, 3, 4, 5, 7])
    torch.testing.assert_close(adv[keep], compute_advantages("ent_increase", rewards[keep], groups[keep]))
    with pytest.raises(ValueError, match="advantage_estimator='ent_increase'.*binary rewards"):
        trainer._advantages(torch.full((8,), 0.5), groups, torch.ones(8, dtype=torch.bool))
    # advantage_estimator="grpo_unbiased" is TRL's own scale_rewards="group" advantage, eps 1e-4 included.
    trainer.args.advantage_estimator = "grpo_unbiased"
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    got = trainer._advantages(r, groups, torch.ones(8, dtype=torch.bool))
    g = r.view(-1, G)
    trl = ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)).reshape(-1)
    torch.testing.assert_close(got, trl)


def test_a_beta_the_estimator_does_not_read_is_refused(tmp_path):
    """The issue's case: advantage_estimator="dr_grpo", beta_pos=0.9 accepted the beta and ignored it."""
    common = {"output_dir": str(tmp_path), "report_to": "none", "bf16": False}
    for name in ("dr_grpo", "grpo_unbiased"):
        with pytest.raises(ValueError, match=rf"advantage_estimator='{name}' has no betas, so beta_pos=0.9 would not"):
            AsymGRPOConfig(advantage_estimator=name, beta_pos=0.9, **common)
        with pytest.raises(ValueError, match="beta_neg=0.4 would not be used"):
            AsymGRPOConfig(advantage_estimator=name, beta_neg=0.4, **common)
        assert AsymGRPOConfig(advantage_estimator=name, **common).beta_pos is None
    with pytest.raises(TypeError):  # a misspelt key is TRL's dataclass error
        AsymGRPOConfig(beta_positive=0.9, **common)


def test_a_group_of_one_gets_the_estimators_endpoint(tmp_path):
    """A group reduced to one scored completion (the others unscored) no longer fails ent_*."""
    ns = tiny_setup(tmp_path)
    trainer = AsymGRPOTrainer(model=ns["model"], processing_class=ns["tokenizer"], reward_funcs=lambda **k: None,
                              args=AsymGRPOConfig(advantage_estimator="ent_increase", output_dir=str(tmp_path),
                                                  report_to="none", bf16=False, num_generations=G,
                                                  per_device_train_batch_size=2 * G), train_dataset=ns["dataset"])
    nan = float("nan")
    rewards, scored = trainer._rewards(torch.tensor([[1.0], [0.0], [0.0], [1.0], [0.0], [nan], [nan], [nan]]))
    adv = trainer._advantages(rewards, torch.arange(8) // G, scored)
    from asymcli.algorithm.advantages import channel_values
    assert adv[4] == pytest.approx(channel_values("ent_increase", G)[0][3])  # p = 0 at G = 4: the flip's endpoint
    assert (adv[5:] == 0).all()


def test_trl_example_script_trains_on_cpu(tmp_path):
    """examples/trl/asym_grpo.py as a user runs it: the tiny prebuilt base, asym's task and grader."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, str(root / "examples" / "trl" / "asym_grpo.py"), "--output-dir",
                          str(tmp_path), "--max-steps", "2"], capture_output=True, text=True, timeout=900, cwd=root)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    logged = [line for line in run.stdout.splitlines() if line.startswith("asym step ")]
    assert [line.split(":")[0] for line in logged] == ["asym step 1", "asym step 2"], run.stdout[-3000:]
    assert all("'asym/none_solved_frac'" in line and "'reward'" in line for line in logged)
    assert (tmp_path / "model.safetensors").exists()
