"""fp32 master weights: at the paper's lr 2e-6, AdamW steps on bf16 weights round away.

A bf16 weight of magnitude ~0.02 has a spacing of 2^-7 * 2^-6 ~ 1.2e-4 between neighbours;
an Adam update is ~lr = 2e-6, far below half of it, so stepping bf16 tensors directly
leaves almost every entry where it was. The backends (asymcli.training.distributed) step fp32
masters whatever the module's dtype, and the trainer computes at ``model.dtype`` through
autocast. Measured here (256x256, std 0.02, 10 AdamW steps at lr 2e-6): bf16 weights move
in ~4% of entries, fp32 masters in ~100%.

Marker ``deepspeed``: the same through DeepSpeed at ZeRO stages 0-3 (one CPU process).
This file is also that check's worker script (``python tests/training/test_master_weights.py OUT``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HAVE_DS = importlib.util.find_spec("deepspeed") is not None
N, STD, LR, STEPS = 256, 0.02, 2e-6, 10


def init_weight() -> torch.Tensor:
    return torch.randn((N, N), generator=torch.Generator().manual_seed(0)) * STD


def inputs(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Step k's input batch [32, N] and output weights [32, N] of the loss sum(r * (x W^T))."""
    g = torch.Generator().manual_seed(100 + k)
    return torch.randn((32, N), generator=g), torch.randn((32, N), generator=g)


def moved(before: torch.Tensor, after: torch.Tensor) -> float:
    """Fraction of entries that changed."""
    return float((before.float() != after.float()).float().mean())


def run_cfg(stage: int = 0):
    from asymcli.config import DeepSpeedConfig, TrainConfig

    return TrainConfig(lr=LR, weight_decay=0.0, grad_clip=1.0, deepspeed=DeepSpeedConfig(stage=stage))


def bf16_linear() -> torch.nn.Linear:
    """The layer as a bf16 checkpoint loads it (model.dtype: bfloat16)."""
    lin = torch.nn.Linear(N, N, bias=False)
    with torch.no_grad():
        lin.weight.copy_(init_weight())
    return lin.to(torch.bfloat16)


def backend_steps(backend) -> None:
    """STEPS updates through a backend, forward and backward in bf16 (the trainer's autocast)."""
    for k in range(STEPS):
        x, r = inputs(k)
        backend.zero_grad()
        with backend.compute(), torch.autocast("cpu", dtype=torch.bfloat16):
            loss = (backend.model(x).float() * r).sum()
        backend.backward(loss)
        backend.step()


def test_adamw_on_bf16_weights_rounds_the_updates_away():
    results = {}
    for dtype in (torch.bfloat16, torch.float32):
        w = torch.nn.Parameter(init_weight().to(dtype))
        start = w.detach().clone()
        opt = torch.optim.AdamW([w], lr=LR, weight_decay=0.0)
        for k in range(STEPS):
            x, r = inputs(k)
            opt.zero_grad()
            (x.to(dtype) @ w.T * r.to(dtype)).sum().backward()
            opt.step()
        results[dtype] = moved(start, w.detach())
    assert results[torch.bfloat16] < 0.10  # ~0.04: most updates are lost
    assert results[torch.float32] > 0.99


def test_torch_backend_steps_fp32_masters_of_a_bf16_module():
    from asymcli.training.distributed import TorchBackend, make_backend

    lin = bf16_linear()
    start = lin.weight.detach().float().clone()
    backend = make_backend(run_cfg(), lin)
    assert isinstance(backend, TorchBackend) and backend.model is lin
    assert lin.weight.dtype == torch.float32  # the masters
    backend_steps(backend)
    assert moved(start, lin.weight.detach()) > 0.99
    assert backend.optimizer.param_groups[0]["eps"] == 1e-8


def test_trainer_keeps_fp32_masters_and_computes_at_model_dtype(tiny_policy_dir, arith_rows, tmp_path):
    from asymcli.config import load_config, resolve_run
    from asymcli.sampling.models import load_policy
    from asymcli.training.trainer import Trainer
    from tests.training.test_trainer import ParityGrader, split

    cfg = load_config(None, {"model": {"dtype": "bfloat16"},
                             "train": {"steps": 2, "prompts_per_step": 4, "mini_batch_prompts": 4, "group_size": 4,
                                       "max_new_tokens": 8, "eval_every": 0, "checkpoint_every": 0,
                                       "lr": LR, "warmup_steps": 0, "device": "cpu"}})
    run = resolve_run(cfg, "grpo", seed=0)
    tr, he = split(arith_rows)
    trainer = Trainer(cfg, run, tr, he, tiny_policy_dir, tmp_path / "run", grader=ParityGrader(), progress=False)
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    assert trainer.compute_dtype == torch.bfloat16
    trainer.train()
    start, _ = load_policy(tiny_policy_dir, cfg.model.__class__(dtype="float32"))
    after = dict(trainer.model.named_parameters())
    name = next(n for n in after if n.endswith("q_proj.weight"))
    before = dict(start.named_parameters())[name]
    assert moved(before, after[name]) > 0.9  # ~4% if AdamW stepped the bf16 weights


@pytest.mark.deepspeed
@pytest.mark.skipif(not HAVE_DS, reason="deepspeed is not installed (pip install 'asym[deepspeed]')")
def test_every_deepspeed_stage_steps_fp32_masters(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, __file__, str(tmp_path)], env=env, cwd=root, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    res = json.loads((tmp_path / "moved.json").read_text())
    for stage in ("0", "1", "2", "3"):
        assert res[stage]["dtype"] == "torch.float32", stage
        assert res[stage]["bf16_config"] is False, stage
        assert res[stage]["moved"] > 0.99, (stage, res[stage])


def _worker(out: Path) -> None:
    """One process: a bf16 layer through DeepSpeed at each ZeRO stage, STEPS updates each."""
    from asymcli.training.distributed import DeepSpeedBackend, iter_full_params, make_backend

    res = {}
    for stage in (1, 2, 3, 0):  # stage 0 alone is the TorchBackend: DeepSpeed's stage 0 once the group exists
        backend = make_backend(run_cfg(stage), bf16_linear()) if stage else DeepSpeedBackend(bf16_linear(), run_cfg(0))
        assert isinstance(backend, DeepSpeedBackend)
        backend_steps(backend)
        weight = dict(iter_full_params(backend.model))["weight"]
        res[str(stage)] = {"dtype": str(weight.dtype), "moved": moved(init_weight().to(torch.bfloat16), weight),
                           "bf16_config": bool(backend.config.get("bf16", {}).get("enabled", False))}
    (out / "moved.json").write_text(json.dumps(res))


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
