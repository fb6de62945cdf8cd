"""Rollout throughput of the "static" engine, on the shared baseline's workload.

Random-weight model built from a config (nothing is downloaded), random prompt ids,
n samples per prompt, EOS disabled so every sequence runs to --new-tokens (as the
baseline's min_new_tokens forces). Prints one JSON line per measurement (appended to
$OUT/rollout_bench.jsonl when OUT is set).

    # GPU (defaults: Qwen3-0.6B shape, 32 prompts x 8 samples, 128-token prompts, 512 new tokens)
    python bench/rollout_bench.py --baseline-jsonl $OUT/hf_baseline.jsonl
    # CPU (tiny shape; HF generate timed in the same process for the ratio)
    python bench/rollout_bench.py --shape tiny --prompts 4 --group 4 --prompt-len 32 --new-tokens 64 --hf

Variants (--variants): graphs = CUDA graphs + SDPA decode (the default engine), eager =
no CUDA graphs, matmul = matmul decode attention, triton = the split-KV Triton decode
kernel (triton_b8w2: its 8-slot, 2-warp setting), top_p = top_p 0.95 (sorting sampler). A variant that fails prints its error and
the others go on.
--check compares the engine's per-token log-probs with a direct HF forward.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asymcli.engines.base import SamplingParams, make_engine  # noqa: E402

SHAPES = {
    # The shared baseline's qwen3-0.6b, with Qwen3-0.6B's rope_theta.
    "qwen3-0.6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True),
    # CPU-sized: same structure (GQA 2:1, q/k norm, tied head), small enough for seconds.
    "tiny": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=64, vocab_size=4096, tie_word_embeddings=True),
}
PEAK_BF16_DENSE = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "L40S": 362e12}


def emit(path_name: str, **kw) -> dict:
    line = json.dumps(kw)
    print(line, flush=True)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], path_name), "a") as f:
            f.write(line + "\n")
    return kw


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_info(device: torch.device) -> dict:
    import transformers

    info = {"torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "device": device.type}
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        info.update(gpu=name, cuda=torch.version.cuda,
                    peak_bf16_dense_flops=next((v for k, v in PEAK_BF16_DENSE.items() if k in name), None))
        try:
            import triton

            info["triton"] = triton.__version__
        except ImportError:
            info["triton"] = None
    else:
        info.update(cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    return info


def build_model(shape: str, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """Random-weight Qwen3 of ``shape``, initialised directly on ``device``."""
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    cfg = Qwen3Config(**SHAPES[shape], max_position_embeddings=8192, rope_theta=1e6,
                      bos_token_id=None, eos_token_id=0, pad_token_id=0)
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen3ForCausalLM(cfg)
    model = model.to(dtype)
    model.generation_config = GenerationConfig(eos_token_id=0, pad_token_id=0)
    return model.eval(), sum(p.numel() for p in model.parameters())


def random_prompts(n: int, length: int, vocab: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lo, hi = (1000, 100000) if vocab > 100000 else (1, vocab)
    return torch.randint(lo, hi, (n, length), generator=g).tolist()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_static(model, prompts, a, device, **engine_kw) -> dict:
    from types import SimpleNamespace

    tok = SimpleNamespace(eos_token_id=None, pad_token_id=0)
    top_p = engine_kw.pop("_top_p", None)
    block = engine_kw.pop("_block", None)
    if block:  # a tuning point of the Triton decode kernel: (key slots per iteration, warps)
        from asymcli.engines import decode_attention as da

        da.BLOCK_N, da.NUM_WARPS = block
    engine = make_engine("static", model, tok, eos_token_ids=[], max_batch_seqs=len(prompts) * a.group, **engine_kw)
    params = SamplingParams(temperature=a.temperature, top_p=top_p or a.top_p, max_new_tokens=a.new_tokens,
                            n=a.group, seed=0)
    t0 = time.perf_counter()
    engine.generate(prompts, params)  # first call: workspace, graph capture
    sync(device)
    first_s = time.perf_counter() - t0
    times, outs = [], None
    for rep in range(a.repeats):
        t0 = time.perf_counter()
        outs = engine.generate(prompts, SamplingParams(**{**params.__dict__, "seed": rep + 1}))
        sync(device)
        times.append(time.perf_counter() - t0)
    new = sum(len(o.token_ids) for o in outs)
    dt = min(times)
    res = dict(seconds=round(dt, 3), first_call_seconds=round(first_s, 2), new_tokens_total=new,
               tokens_per_s=round(new / dt), engine_dtype=str(engine.dtype).replace("torch.", ""))
    if device.type == "cuda":
        res["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 1)
    engine.close()
    return res, outs


def time_hf_generate(model, prompts, a, device) -> dict:
    """Plain HF generate, called exactly as the shared baseline calls it."""
    ids = torch.tensor([p for p in prompts for _ in range(a.group)], device=device)
    kw = dict(do_sample=True, temperature=a.temperature, top_p=a.top_p, top_k=0, max_new_tokens=a.new_tokens,
              min_new_tokens=a.new_tokens, pad_token_id=0)
    with torch.no_grad():
        model.generate(input_ids=ids[:2], attention_mask=torch.ones_like(ids[:2]),
                       **{**kw, "max_new_tokens": 4, "min_new_tokens": 4})
        sync(device)
        t0 = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kw)
        sync(device)
        dt = time.perf_counter() - t0
    new = (out.shape[1] - ids.shape[1]) * ids.shape[0]
    return dict(seconds=round(dt, 3), new_tokens_total=new, tokens_per_s=round(new / dt))


def check_logprobs(model, prompts, outs, a, n_check: int = 4) -> dict:
    """Engine log-probs vs log_softmax(HF forward logits / T) at the sampled tokens."""
    diffs = []
    dev = next(model.parameters()).device
    with torch.no_grad():
        for o in outs[: n_check * a.group : a.group]:
            ids = torch.tensor([prompts[o.prompt_index] + o.token_ids], device=dev)
            P = len(prompts[o.prompt_index])
            logits = model(ids).logits[0, P - 1 : -1].float() / (a.temperature or 1.0)
            ref = torch.log_softmax(logits, -1).gather(1, ids[0, P:, None]).squeeze(1).cpu()
            diffs.append((torch.tensor(o.logprobs) - ref).abs())
    d = torch.cat(diffs)
    return dict(logprob_abs_diff_mean=round(float(d.mean()), 5), logprob_abs_diff_max=round(float(d.max()), 4),
                tokens_checked=int(d.numel()))


def baseline_tokens_per_s(path: str | None, what: str) -> float | None:
    if not path or not os.path.exists(path):
        return None
    found = None
    for line in Path(path).read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("what") == what:
            found = rec
    return found["tokens_per_s"] if found else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default=None, help="default: qwen3-0.6b on CUDA, tiny on CPU")
    p.add_argument("--device", default="auto")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--group", type=int, default=8, help="samples per prompt (n)")
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=512)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=2, help="timed calls after the first (best is reported)")
    p.add_argument("--variants", default="graphs", help="comma list of graphs,eager,matmul,top_p")
    p.add_argument("--hf", action="store_true", help="also time HF generate in this process (the ratio on CPU)")
    p.add_argument("--check", action="store_true", help="compare log-probs with a direct HF forward")
    p.add_argument("--baseline-jsonl", default=None, help="the shared baseline's output, for the ratio")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    shape = a.shape or ("qwen3-0.6b" if device.type == "cuda" else "tiny")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    info = device_info(device)
    t0 = time.perf_counter()
    model, n_params = build_model(shape, device, dtype)
    build_s = time.perf_counter() - t0
    prompts = random_prompts(a.prompts, a.prompt_len, SHAPES[shape]["vocab_size"])
    common = dict(what="rollout", shape=shape, params=n_params, sequences=a.prompts * a.group, prompts=a.prompts,
                  group=a.group, prompt_len=a.prompt_len, new_tokens=a.new_tokens, temperature=a.temperature,
                  model_build_s=round(build_s, 1), **info)
    hf_tps = None
    if a.hf:
        r = time_hf_generate(model, prompts, a, device)
        hf_tps = r["tokens_per_s"]
        emit("rollout_bench.jsonl", **common, engine="hf_generate(same process)", top_p=a.top_p, **r)
    base_tps = baseline_tokens_per_s(a.baseline_jsonl, "hf_generate")
    variants = {"graphs": {}, "eager": {"cuda_graphs": False}, "matmul": {"decode_attention": "matmul"},
                "triton": {"decode_attention": "triton"}, "triton_b8w2": {"decode_attention": "triton", "_block": (8, 2)},
                "top_p": {"_top_p": 0.95}}
    for name in [v for v in a.variants.split(",") if v]:
        kw = dict(variants[name])
        try:
            r, outs = time_static(model, prompts, a, device, **kw)
        except Exception as exc:  # noqa: BLE001 - report it, measure the other variants
            traceback.print_exc()
            emit("rollout_bench.jsonl", **common, engine=f"static[{name}]", error=f"{type(exc).__name__}: {exc}"[:300])
            continue
        extra = {}
        if hf_tps:
            extra["ratio_vs_hf_same_process"] = round(r["tokens_per_s"] / hf_tps, 2)
        if base_tps:
            extra["ratio_vs_shared_baseline"] = round(r["tokens_per_s"] / base_tps, 2)
            extra["baseline_tokens_per_s"] = base_tps
        if a.check and name == "graphs":
            extra.update(check_logprobs(model, prompts, outs, a))
        emit("rollout_bench.jsonl", **common, engine=f"static[{name}]", top_p=kw.get("_top_p", a.top_p), **r, **extra)


if __name__ == "__main__":
    main()
