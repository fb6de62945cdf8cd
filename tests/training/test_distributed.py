"""Data-parallel training backends (asymcli.training.distributed).

- Always run: the single-process helpers, the DeepSpeed config mapping, TorchBackend (the
  trainer's own AdamW step) and its optimizer-state round trip.
- Marker ``deepspeed`` (skipped unless deepspeed imports): one ``torchrun`` launch of 2 CPU
  processes (gloo) runs one PPO mini-batch step under ZeRO stage 2 and under stage 3, each
  rank with half the sequences in 2 micro-batches and the mini-batch-wide token-mean
  denominator, and must give the single-process step's loss, grad norm and updated weights.
  Under stage 3 it also writes the consolidated HF folder and DeepSpeed's sharded state,
  reloads both into a fresh engine, and checks that the next step matches the original.

- Marker ``deepspeed``: a whole ``asym train`` launched with torchrun on 2 CPU processes
  equals the 1-process run on the same prompts, metric by metric (rollouts made equal by
  ``train.rollout_shards``; the diagnostics all-reduced over ranks).

This file is also the worker script of those launches (``python -m torch.distributed.run ...
tests/training/test_distributed.py OUT``, or ``... tests/training/test_distributed.py train ARGS``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

HAVE_DS = importlib.util.find_spec("deepspeed") is not None
ATOL = 1e-5
N_SEQ, MICRO = 8, 2  # sequences in the mini-batch; micro-batches per rank (and single-process)
LR, CLIP = 1e-2, 0.05  # a clip that bites, so the global-norm clipping is compared too


def run_cfg(stage: int = 0, offload_optimizer: bool = False, offload_params: bool = False):
    from asymcli.config import DeepSpeedConfig, TrainConfig

    return TrainConfig(lr=LR, grad_clip=CLIP, weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.99,
                       deepspeed=DeepSpeedConfig(stage=stage, offload_optimizer=offload_optimizer,
                                                 offload_params=offload_params))


def tiny_qwen3(seed: int = 0):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    cfg = Qwen3Config(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
                      tie_word_embeddings=True, eos_token_id=1, pad_token_id=0)
    torch.manual_seed(seed)
    return Qwen3ForCausalLM(cfg).float()


def fixed_batch():
    """8 prompt+response sequences of mixed lengths, advantages, perturbed old log-probs."""
    from asymcli.training.policy import pack

    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(2, 40, (int(n),), generator=g).tolist() for n in torch.randint(2, 7, (N_SEQ,), generator=g)]
    resps = [torch.randint(2, 40, (int(n),), generator=g).tolist() for n in torch.randint(1, 9, (N_SEQ,), generator=g)]
    batch = pack(prompts, resps, 0)
    adv = torch.randn(N_SEQ, generator=g)
    noise = torch.randn(batch.resp_ids.shape, generator=g) * 0.3
    return batch, adv, noise


def old_logprobs(model, batch, noise):
    from asymcli.training.policy import response_logprobs

    with torch.no_grad():
        lp, _ = response_logprobs(model, batch)
    return (lp + noise) * batch.resp_mask


def mini_batch_step(backend, batch, adv, old, rows: list[int], denom: float) -> float:
    """The trainer's update() for one mini-batch: micro-batches, global denominator, step."""
    from asymcli.algorithm.objective import policy_loss
    from asymcli.training.policy import response_logprobs

    backend.zero_grad()
    total = 0.0
    chunks = [rows[i : i + len(rows) // MICRO] for i in range(0, len(rows), len(rows) // MICRO)]
    for k, idx in enumerate(chunks):
        idx = torch.tensor(idx)
        sub = batch.select(idx)
        T = sub.resp_ids.shape[1]
        with backend.compute():
            logp, _ = response_logprobs(backend.model, sub)
            loss, _ = policy_loss(logp, old[idx, :T], adv[idx], sub.resp_mask, clip_eps_low=0.2,
                                  clip_eps_high=0.28, loss_agg="token-mean", agg_denom=denom)
            backend.backward(loss, last=k == len(chunks) - 1)
        total += float(loss.detach())
    backend.grad_norm = backend.step()
    return total


def full_state(module) -> dict[str, torch.Tensor]:
    from asymcli.training.distributed import iter_full_params

    return {name: t.clone() for name, t in iter_full_params(module)}


# ---------------------------------------------------------------------------
# Single-process
# ---------------------------------------------------------------------------


def test_single_process_helpers():
    from asymcli.training import distributed as D

    assert D.world() == 1 and D.rank() == 0 and D.is_main()
    assert D.shard([1, 2, 3]) == [1, 2, 3]
    assert D.all_reduce_sum({"a": 2, "b": 1.5}) == {"a": 2.0, "b": 1.5}
    assert D.all_gather_object({"x": 1}) == [{"x": 1}]
    D.barrier()
    D.init_distributed("cpu")  # no-op without a launcher


def test_deepspeed_config_maps_the_run():
    from asymcli.training.distributed import deepspeed_config

    cfg = deepspeed_config(run_cfg(stage=3, offload_optimizer=True, offload_params=True), client_optimizer=False)
    z = cfg["zero_optimization"]
    assert z["stage"] == 3 and z["offload_optimizer"]["device"] == "cpu" and z["offload_param"]["device"] == "cpu"
    assert cfg["gradient_clipping"] == CLIP and cfg["gradient_accumulation_steps"] == 1
    assert cfg["optimizer"] == {"type": "AdamW", "params": {"lr": LR, "betas": [0.9, 0.99], "eps": 1e-8,
                                                            "weight_decay": 0.01}}
    cfg2 = deepspeed_config(run_cfg(stage=2), bf16=True)
    assert "optimizer" not in cfg2 and cfg2["zero_allow_untested_optimizer"] and cfg2["bf16"] == {"enabled": True}
    assert "offload_optimizer" not in cfg2["zero_optimization"]


def test_deepspeed_config_rejects_impossible_offloads():
    from asymcli.training.distributed import deepspeed_config
    from asymcli.errors import ConfigError

    with pytest.raises(ConfigError, match="offload_params needs stage 3"):
        deepspeed_config(run_cfg(stage=2, offload_params=True))
    with pytest.raises(ConfigError, match="offload_optimizer needs a ZeRO stage"):
        deepspeed_config(run_cfg(stage=0, offload_optimizer=True))


def test_torch_backend_is_the_plain_adamw_step(tmp_path):
    from asymcli.training.distributed import TorchBackend, make_backend

    batch, adv, noise = fixed_batch()
    model, ref = tiny_qwen3(), tiny_qwen3()
    old = old_logprobs(model, batch, noise)
    backend = make_backend(run_cfg(), model)
    assert isinstance(backend, TorchBackend) and backend.model is model
    denom = float(batch.resp_mask.sum())
    loss = mini_batch_step(backend, batch, adv, old, list(range(N_SEQ)), denom)

    # By hand: one backward over the whole mini-batch, clip, AdamW.
    from asymcli.algorithm.objective import policy_loss
    from asymcli.training.policy import response_logprobs

    opt = torch.optim.AdamW(ref.parameters(), lr=LR, betas=(0.9, 0.99), weight_decay=0.01)
    logp, _ = response_logprobs(ref, batch)
    ref_loss, _ = policy_loss(logp, old, adv, batch.resp_mask, clip_eps_low=0.2, clip_eps_high=0.28)
    ref_loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), CLIP)
    opt.step()
    assert loss == pytest.approx(ref_loss.item(), abs=ATOL)
    assert backend.grad_norm == pytest.approx(float(norm), rel=1e-5)
    for (n, a), b in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0, msg=n)

    backend.save_state(tmp_path)
    again = TorchBackend(tiny_qwen3(), run_cfg())
    again.load_state(tmp_path)
    assert again.optimizer.state_dict()["state"].keys() == backend.optimizer.state_dict()["state"].keys()
    backend.set_lr(0.5)
    assert all(g["lr"] == 0.5 for g in backend.optimizer.param_groups)


def test_torch_backend_skips_a_non_finite_step():
    from asymcli.training.distributed import TorchBackend

    model = tiny_qwen3()
    backend = TorchBackend(model, run_cfg())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    backend.zero_grad()
    (model.lm_head.weight.sum() * float("nan")).backward()
    assert math.isnan(backend.step())
    for n, p in model.named_parameters():
        torch.testing.assert_close(p, before[n], msg=n)


def test_torch_backend_save_hf_is_loadable(tmp_path):
    from transformers import AutoModelForCausalLM

    from asymcli.training.distributed import TorchBackend

    model = tiny_qwen3()
    TorchBackend(model, run_cfg()).save_hf(tmp_path)
    back = AutoModelForCausalLM.from_pretrained(tmp_path)
    torch.testing.assert_close(back.lm_head.weight, model.lm_head.weight)


# ---------------------------------------------------------------------------
# Two processes, ZeRO 2 and 3 (CPU, gloo)
# ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(out: Path) -> None:
    """Runs in each of the 2 launched processes; rank 0 writes the results."""
    from asymcli.training import distributed as D

    D.init_distributed("cpu")
    assert D.world() == 2
    batch, adv, noise = fixed_batch()
    old = old_logprobs(tiny_qwen3(), batch, noise)
    rows = D.shard(list(range(N_SEQ)))
    local_tokens = float(batch.resp_mask[torch.tensor(rows)].sum())
    denom = D.all_reduce_sum({"tokens": local_tokens})["tokens"]  # the whole mini-batch's tokens
    results: dict[str, object] = {"shard": rows, "denom": denom}
    for stage in (2, 3):
        backend = D.make_backend(run_cfg(stage=stage), tiny_qwen3())
        assert isinstance(backend, D.DeepSpeedBackend)
        part = mini_batch_step(backend, batch, adv, old, rows, denom)
        loss = D.all_reduce_sum({"loss": part})["loss"]
        state = full_state(backend.model)  # collective under ZeRO-3
        results[f"stage{stage}"] = {"loss": loss, "grad_norm": backend.grad_norm}
        if D.is_main():
            torch.save(state, out / f"weights_stage{stage}.pt")
        if stage == 3:
            # Checkpoint: consolidated HF folder + sharded optimizer state; resume; next step.
            ckpt = out / "ckpt"
            backend.save_hf(ckpt)
            backend.save_state(ckpt)
            D.barrier()
            from transformers import AutoModelForCausalLM

            resumed = D.make_backend(run_cfg(stage=3), AutoModelForCausalLM.from_pretrained(ckpt).float())
            resumed.load_state(ckpt)
            mini_batch_step(backend, batch, adv, old, rows, denom)
            mini_batch_step(resumed, batch, adv, old, rows, denom)
            a, b = full_state(backend.model), full_state(resumed.model)
            results["resume_max_diff"] = max(float((a[k] - b[k]).abs().max()) for k in a)
    if D.is_main():
        (out / "results.json").write_text(json.dumps(results))
    D.barrier()


@pytest.mark.deepspeed
@pytest.mark.skipif(not HAVE_DS, reason="deepspeed is not installed (pip install 'asym[deepspeed]')")
def test_two_process_zero_step_equals_single_process(tmp_path):
    from transformers import AutoModelForCausalLM

    from asymcli.training.distributed import TorchBackend

    batch, adv, noise = fixed_batch()
    model = tiny_qwen3()
    old = old_logprobs(model, batch, noise)
    ref = TorchBackend(model, run_cfg())
    ref_loss = mini_batch_step(ref, batch, adv, old, list(range(N_SEQ)), float(batch.resp_mask.sum()))
    ref_state = {n: p.detach() for n, p in model.named_parameters()}

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), __file__, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["shard"] == [0, 1, 2, 3] and res["denom"] == float(batch.resp_mask.sum())
    for stage in (2, 3):
        got = res[f"stage{stage}"]
        assert got["loss"] == pytest.approx(ref_loss, abs=ATOL), stage
        assert got["grad_norm"] == pytest.approx(ref.grad_norm, rel=1e-4), stage
        weights = torch.load(tmp_path / f"weights_stage{stage}.pt")
        assert set(weights) == set(ref_state)
        for name, t in ref_state.items():
            torch.testing.assert_close(weights[name], t, atol=ATOL, rtol=0, msg=f"stage {stage}: {name}")
    # ZeRO-3 consolidated save is a plain HF folder with the updated weights.
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    for name, p in saved.named_parameters():
        torch.testing.assert_close(p.detach(), ref_state[name], atol=ATOL, rtol=0, msg=name)
    assert (tmp_path / "ckpt" / "deepspeed" / "state").is_dir()
    assert res["resume_max_diff"] < ATOL


# ---------------------------------------------------------------------------
# A whole `asym train`: 2 processes (torchrun, CPU, gloo) against 1 process
# ---------------------------------------------------------------------------

TRAIN_TIMING = {"rollout_s", "update_s", "tokens_per_s", "eval_s"}


def _train_main(args: list[str]) -> None:
    """`asym train ARGS` with the stand-in reward of tests/training/test_trainer.py (a random tiny
    policy never solves arithmetic; parity gives mixed groups, so every statistic is live)."""
    import asymcli.grading
    from asymcli.cli import app
    from tests.training.test_trainer import ParityGrader

    asymcli.grading.Grader = ParityGrader
    app(args, prog_name="asym")


@pytest.mark.deepspeed
@pytest.mark.skipif(not HAVE_DS, reason="deepspeed is not installed (pip install 'asym[deepspeed]')")
def test_two_process_asym_train_equals_single_process(tiny_policy_dir, arith_rows, tmp_path):
    """Same prompts, same rollouts (``train.rollout_shards: 2`` on both), two mini-batches
    per step in uneven micro-batches, greedy evaluation and a checkpoint: every metric of
    the 2-process run (DeepSpeed stage 0 over gloo; diagnostics all-reduced over the ranks)
    equals the 1-process run's within float tolerance."""
    import yaml

    from asymcli import artifacts

    prompts = artifacts.write_parquet(tmp_path / "prompts.parquet", arith_rows, artifacts.PROMPTS)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results"), "train": {
        "steps": 3, "prompts_per_step": 4, "mini_batch_prompts": 2, "group_size": 4, "micro_batch_seqs": 3,
        "max_new_tokens": 10, "eval_every": 2, "eval_prompts": 6, "checkpoint_every": 2, "lr": 5e-3, "epochs": 2,
        "clip_eps_low": 0.02, "clip_eps_high": 0.02,
        "warmup_steps": 1, "rollout_shards": 2, "device": "cpu"}}))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    args = ["train", "--config", str(cfg), "--method", "asym", "--prompts", str(prompts),
            "--model", str(tiny_policy_dir), "--no-progress"]
    one = [sys.executable, __file__, *args, "--out", str(tmp_path / "one")]
    two = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), __file__, *args, "--out", str(tmp_path / "two")]
    for cmd in (one, two):
        proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    a = artifacts.read_parquet(tmp_path / "one" / "metrics.parquet", artifacts.METRICS).to_pylist()
    b = artifacts.read_parquet(tmp_path / "two" / "metrics.parquet", artifacts.METRICS).to_pylist()
    assert [r["step"] for r in a] == [r["step"] for r in b] == [0, 1, 2, 3]
    assert any(r["mixed_frac"] > 0 for r in a[1:]) and any(not math.isnan(r["kappa"]) for r in a[1:])
    for x, y in zip(a, b):
        for key in x:
            if key in TRAIN_TIMING:
                continue
            if key == "eval_bench":
                assert [e["benchmark"] for e in x[key]] == [e["benchmark"] for e in y[key]]
                # flat lists: pytest.approx rejects nested structures since pytest 9.2
                assert [e["n"] for e in x[key]] == [e["n"] for e in y[key]]
                assert [e["acc"] for e in x[key]] == pytest.approx([e["acc"] for e in y[key]])
            elif isinstance(x[key], list):
                assert x[key] == pytest.approx(y[key], rel=1e-4, abs=1e-6), (x["step"], key)
            elif isinstance(x[key], float) and math.isnan(x[key]):
                assert math.isnan(y[key]), (x["step"], key, y[key])
            else:
                assert x[key] == pytest.approx(y[key], rel=1e-4, abs=1e-6), (x["step"], key, x[key], y[key])
    assert (tmp_path / "two" / "checkpoints" / "step_000003" / "deepspeed").is_dir()


if __name__ == "__main__":
    if sys.argv[1] == "train":
        _train_main(sys.argv[1:])
    else:
        _worker(Path(sys.argv[1]))
