"""Throughput and MFU of one PPO-style update step, the shared baseline's train workload.

One step = for each micro-batch: ``response_logprobs`` (with grad) -> ``policy_loss`` ->
backward; then grad-norm clipping and an AdamW step; as the trainer's ``update`` does.
The batch is ``--prompts x --group`` sequences of ``--prompt-len`` prompt tokens plus
``--new-tokens`` response tokens (``--vary-lengths``: response lengths uniform in
[1, new-tokens], i.e. RL-like ragged batches). Random-weight model, nothing downloaded.
Prints one JSON line per variant (appended to $OUT/train_step_bench.jsonl when OUT is set).

    # GPU (defaults: Qwen3-0.6B shape, 64 x (128 + 512) tokens, fp32 master weights + bf16 autocast)
    python bench/train_step_bench.py --baseline-jsonl $OUT/hf_baseline.jsonl
    # CPU (tiny shape, fp32)
    python bench/train_step_bench.py --shape tiny --prompts 2 --group 4 --prompt-len 32 --new-tokens 96 --micro 4

MFU = 6 * params * tokens_per_s / peak bf16 dense FLOP/s (H100/H200: 989 TFLOP/s), tokens =
prompt + response tokens of the step, params counting the tied embedding once. (The shared
baseline prints 8 * params for its checkpointed step; both conventions are reported.)

Variants (--variants): fused_compile = functional Qwen forward + torch.compile (the fast
path), fused = same, eager, hf = the module's own forward (eager).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_bench import SHAPES, baseline_tokens_per_s, build_model, device_info, emit, pick_device, sync  # noqa: E402

from asymcli.algorithm.objective import policy_loss  # noqa: E402
from asymcli.training.policy import pack, response_logprobs  # noqa: E402


def make_batch(a, vocab: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    lo, hi = (1000, 100000) if vocab > 100000 else (1, vocab)
    B = a.prompts * a.group
    prompts = torch.randint(lo, hi, (B, a.prompt_len), generator=g).tolist()
    if a.vary_lengths:
        lens = torch.randint(1, a.new_tokens + 1, (B,), generator=g).tolist()
    else:
        lens = [a.new_tokens] * B
    responses = [torch.randint(lo, hi, (n,), generator=g).tolist() for n in lens]
    batch = pack(prompts, responses, pad_id=0).to(device)
    adv = torch.randn(B, generator=g).to(device)
    return batch, adv


def run_variant(model, batch, adv, old_logp, opt, a, device, impl: str, compile_: bool) -> float:
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    B = batch.input_ids.shape[0]
    denom = float(batch.resp_mask.sum())

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        for s in range(0, B, a.micro):
            idx = torch.arange(s, min(s + a.micro, B), device=device)
            sub = batch.select(idx)
            T = sub.resp_ids.shape[1]
            with autocast:
                logp, ent = response_logprobs(model, sub, impl=impl, compile=compile_, max_tokens=a.max_tokens)
            loss, _ = policy_loss(logp.float(), old_logp[idx, :T], adv[idx], sub.resp_mask,
                                  clip_eps_low=0.2, clip_eps_high=0.28, agg_denom=denom)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(a.warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync(device)
    return (time.perf_counter() - t0) / a.steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default=None, help="default: qwen3-0.6b on CUDA, tiny on CPU")
    p.add_argument("--device", default="auto")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=512)
    p.add_argument("--vary-lengths", action="store_true")
    p.add_argument("--micro", type=int, default=16, help="sequences per micro-batch (backward each)")
    p.add_argument("--max-tokens", type=int, default=16384, help="padded tokens per forward group")
    p.add_argument("--param-dtype", choices=["float32", "bfloat16"], default="float32",
                   help="float32 = fp32 master weights with bf16 autocast on CUDA (the trainer's setting)")
    p.add_argument("--variants", default=None, help="comma list of fused,hf,fused_compile (default: all on CUDA, compiled last; fused,hf on CPU)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--baseline-jsonl", default=None)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    shape = a.shape or ("qwen3-0.6b" if device.type == "cuda" else "tiny")
    variants = a.variants or ("fused,hf,fused_compile" if device.type == "cuda" else "fused,hf")
    info = device_info(device)
    t0 = time.perf_counter()
    model, n_params = build_model(shape, device, getattr(torch, a.param_dtype))
    model.train()
    build_s = time.perf_counter() - t0
    batch, adv = make_batch(a, SHAPES[shape]["vocab_size"], device)
    tokens = int(batch.attention_mask.sum())
    resp_tokens = int(batch.resp_mask.sum())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=device.type == "cuda")
    with torch.no_grad():
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
        with autocast:
            old_logp = torch.cat([torch.nn.functional.pad(
                response_logprobs(model, batch.select(slice(s, s + a.micro)))[0],
                (0, batch.resp_ids.shape[1] - batch.select(slice(s, s + a.micro)).resp_ids.shape[1]))
                for s in range(0, batch.input_ids.shape[0], a.micro)])
    peak = info.get("peak_bf16_dense_flops")
    base_tps = baseline_tokens_per_s(a.baseline_jsonl, "hf_train_step")
    common = dict(what="train_step", shape=shape, params=n_params, sequences=batch.input_ids.shape[0],
                  prompt_len=a.prompt_len, new_tokens=a.new_tokens, vary_lengths=a.vary_lengths, tokens=tokens,
                  response_tokens=resp_tokens, micro=a.micro, param_dtype=a.param_dtype,
                  autocast_bf16=device.type == "cuda", model_build_s=round(build_s, 1), **info)
    for name in [v for v in variants.split(",") if v]:
        impl, compile_ = {"fused_compile": ("fused", True), "fused": ("fused", False), "hf": ("hf", False)}[name]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t_first = time.perf_counter()
        note = None
        try:
            dt = run_variant(model, batch, adv, old_logp, opt, a, device, impl, compile_)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next variant
            traceback.print_exc()
            if not compile_:
                emit("train_step_bench.jsonl", **common, variant=name, error=f"{type(exc).__name__}: {exc}"[:300])
                continue
            note = f"compile failed, eager fallback ({type(exc).__name__})"
            dt = run_variant(model, batch, adv, old_logp, opt, a, device, impl, False)
        tps = tokens / dt
        rec = dict(variant=name, seconds_per_step=round(dt, 3), tokens_per_s=round(tps),
                   first_steps_and_timing_s=round(time.perf_counter() - t_first, 1))
        if note:
            rec["note"] = note
        if peak:
            rec["mfu_6N"] = round(6 * n_params * tps / peak, 3)
        if device.type == "cuda":
            rec["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 1)
        if base_tps:
            rec.update(baseline_tokens_per_s=base_tps, ratio_vs_shared_baseline=round(tps / base_tps, 2))
            if peak:
                rec["baseline_mfu_6N"] = round(6 * n_params * base_tps / peak, 3)
        emit("train_step_bench.jsonl", **common, **rec)


if __name__ == "__main__":
    main()
