"""The floor of one testbed step: its FLOPs at this machine's own throughput, against a real step.

Issue 31, item 1. For the config's step (default: configs/mechanism.yaml, the mechanism
testbed) this script

1. builds the project's Trainer the way stages/train.py does (prompts from the prep stage's
   rows, the prebuilt default base, ``resolve_run``), takes ``--warmup`` steps, then times
   ``--repeats`` real ``Trainer.train_step`` calls part by part (wrappers around the trainer's
   methods: generation, grading, old log-probs, update, optimizer, post-update log-probs, the
   rest) and keeps the median of each part;
2. counts the FLOPs of every matrix product and attention of that step from the model's
   geometry and the step's actual token counts (the prompts and responses of a real step):
   generation with a KV cache (each distinct prompt prefilled once, then one token per live
   row per decode step), the old-log-prob forward, the update's forward + backward per
   mini-batch, the post-update log-prob forward; the head only at response positions,
   as the trainer does. Padding is not counted: the floor is the useful work;
3. times each of those matrix products alone (``F.linear`` / ``mm`` at exactly its shape,
   one thread, median of several runs) and SDPA at the step's batch/context sizes; the
   floor of a part is the sum of those times, i.e. its FLOPs divided by the throughput this
   machine reaches at those sizes. The optimizer's floor is one fused AdamW over a single
   flat fp32 tensor of the model's size; sampling and grading have no FLOPs to count;
4. profiles one more real step (``torch.profiler``) and splits each part's wall time into
   matrix products + attention, other ATen ops, and host time outside ATen ops (Python,
   dispatch above the op, the trainer's bookkeeping); the number of ATen op calls times the
   measured cost of one trivial op call estimates dispatch.

Prints the table and a JSON line (``$OUT/floor.json`` when OUT is set).

    python bench/floor.py                       # the testbed step, one thread (about 2 min)
    python bench/floor.py --config configs/default.yaml --repeats 3
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from asymcli.config import load_config, resolve_run  # noqa: E402
from asymcli.embedded.prebuilt import PREBUILT_DIR  # noqa: E402
from asymcli.training.trainer import Trainer  # noqa: E402
from stages.prep import build_prompts  # noqa: E402

PARTS = ["generation", "grading", "old_logprobs", "update_fwd_bwd", "optimizer", "post_update_logprobs", "other"]
LABEL = {"generation": "generation (prefill + decode + sampling)", "grading": "grading (decode text + grader)",
         "old_logprobs": "old log-probs (forward)", "update_fwd_bwd": "update: forward + backward (2 mini-batches)",
         "optimizer": "optimizer (grad clip + AdamW, x2)", "post_update_logprobs": "post-update log-prob pass",
         "other": "the rest (packing, advantages, diagnostics, weight checks)"}


def machine_line(threads: int) -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import transformers

    return (f"{cpu}, {os.cpu_count()} logical CPUs; torch {torch.__version__}, transformers "
            f"{transformers.__version__}, Python {platform.python_version()}; torch threads {threads}")


# ----------------------------------------------------------------------------- the real step


class PartTimer:
    """Wraps trainer methods with wall-clock timers (and profiler ranges); one dict per step."""

    def __init__(self, trainer: Trainer):
        self.t = trainer
        self.cur: dict[str, float] = collections.defaultdict(float)
        self.wall: dict[str, float] = collections.defaultdict(float)
        self.lp_calls = 0
        self.last_batch = None
        self.wrapped: list[str] = []

        def wrap(obj: Any, name: str, part: Callable[[], str], keep: bool = False) -> None:
            fn = getattr(obj, name, None)
            if fn is None:  # renamed by a trainer rewrite: its time lands in "other"
                return
            self.wrapped.append(name)

            def timed(*a: Any, **k: Any) -> Any:
                p = part()
                with torch.profiler.record_function(f"part::{p}"):
                    t0, w0 = time.process_time(), time.perf_counter()
                    out = fn(*a, **k)
                    self.cur[p] += time.process_time() - t0
                    self.wall[p] += time.perf_counter() - w0
                if keep:
                    self.last_batch = out
                return out

            setattr(obj, name, timed)

        def lp_part() -> str:
            self.lp_calls += 1
            return "old_logprobs" if self.lp_calls == 1 else "post_update_logprobs"

        wrap(trainer, "_generate", lambda: "generation")
        wrap(trainer, "rewards", lambda: "grading")
        wrap(trainer, "_logprobs_nograd", lp_part)
        wrap(trainer, "update", lambda: "update_fwd_bwd")
        wrap(trainer.backend, "step", lambda: "optimizer")
        orig_rollout = trainer.rollout

        def rollout(step: int) -> Any:
            out = orig_rollout(step)
            self.last_batch = out[0]
            return out

        trainer.rollout = rollout

    def step(self, step: int) -> tuple[dict[str, float], dict[str, float]]:
        """(CPU seconds per part, wall seconds per part) of one train_step."""
        self.cur = collections.defaultdict(float)
        self.wall = collections.defaultdict(float)
        self.lp_calls = 0
        t0, w0 = time.process_time(), time.perf_counter()
        with torch.profiler.record_function("part::step"):
            self.t.train_step(step)
        totals = (time.process_time() - t0, time.perf_counter() - w0)
        out = []
        for acc, total in zip((self.cur, self.wall), totals):
            parts = dict(acc)
            parts["update_fwd_bwd"] = parts.get("update_fwd_bwd", 0.0) - parts.get("optimizer", 0.0)
            parts["other"] = total - sum(v for k, v in parts.items())
            parts["total"] = total
            out.append(parts)
        return out[0], out[1]


def build_trainer(cfg_path: Path, method: str, threads: int, out_dir: Path) -> Trainer:
    cfg = load_config(cfg_path)
    tc = resolve_run(cfg, method)
    tc.eval_every = 0  # the step alone: no greedy evaluation inside it
    tc.threads = threads
    rows = build_prompts(cfg)
    rows = rows.to_pylist() if hasattr(rows, "to_pylist") else list(rows)
    train = [r for r in rows if r["split"] == "train"]
    heldout = [r for r in rows if r["split"] in ("heldout", "test")]
    return Trainer(cfg, tc, train, heldout, PREBUILT_DIR / "model", out_dir, progress=False)


# ----------------------------------------------------------------------------- micro-benchmarks


def bench(fn: Callable[[], Any], min_s: float = 0.002, repeats: int = 5) -> float:
    """Median CPU seconds of this thread for one call of ``fn`` (each sample a loop of at least
    ``min_s``). CPU time, not wall: on a shared machine another job's time slices are not
    counted, so the figure is what the call costs on a core of its own."""
    fn()
    n, t = 1, 0.0
    while True:
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        t = time.thread_time() - t0
        if t >= min_s:
            break
        n *= 4
    samples = [t / n]
    for _ in range(repeats - 1):
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        samples.append((time.thread_time() - t0) / n)
    return statistics.median(samples)


class GemmTimes:
    """Seconds of one matrix product at an exact shape, cached per shape."""

    def __init__(self) -> None:
        self.cache: dict[tuple, float] = {}

    def linear(self, M: int, K: int, N: int) -> float:
        """y[M,N] = x[M,K] @ W[N,K]^T (F.linear, the forward's product)."""
        key = ("lin", M, K, N)
        if key not in self.cache:
            x, w = torch.randn(M, K), torch.randn(N, K)
            self.cache[key] = bench(lambda: F.linear(x, w)) if M else 0.0
        return self.cache[key]

    def grad_input(self, M: int, K: int, N: int) -> float:
        """dx[M,K] = dy[M,N] @ W[N,K]."""
        key = ("dx", M, K, N)
        if key not in self.cache:
            dy, w = torch.randn(M, N), torch.randn(N, K)
            self.cache[key] = bench(lambda: torch.mm(dy, w)) if M else 0.0
        return self.cache[key]

    def grad_weight(self, M: int, K: int, N: int) -> float:
        """dW[N,K] = dy[M,N]^T @ x[M,K]."""
        key = ("dw", M, K, N)
        if key not in self.cache:
            dy, x = torch.randn(M, N), torch.randn(M, K)
            self.cache[key] = bench(lambda: torch.mm(dy.t(), x)) if M else 0.0
        return self.cache[key]


@functools.lru_cache(maxsize=None)
def sdpa_time(B: int, nh: int, n_kv: int, Lq: int, Lk: int, hd: int, causal: bool, backward: bool = False) -> float:
    """SDPA at [B, heads, Lq, hd] x [B, heads, Lk, hd] (K/V expanded to the query heads, as the
    trainer's forward does), forward or forward + backward."""
    q = torch.randn(B, nh, Lq, hd, requires_grad=backward)
    k = torch.randn(B, n_kv, Lk, hd).repeat_interleave(nh // n_kv, 1).requires_grad_(backward)
    v = torch.randn(B, n_kv, Lk, hd).repeat_interleave(nh // n_kv, 1).requires_grad_(backward)
    if not backward:
        return bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
    g = torch.randn(B, nh, Lq, hd)

    def fb() -> None:
        F.scaled_dot_product_attention(q, k, v, is_causal=causal).backward(g)

    return bench(fb)


# ----------------------------------------------------------------------------- the floor


def layer_shapes(g: dict[str, int]) -> list[tuple[int, int]]:
    """(K, N) of each weight product of one decoder layer: q, k, v, o, gate, up, down."""
    H, nh, nkv, hd, inter = g["hidden"], g["heads"], g["kv_heads"], g["head_dim"], g["inter"]
    return [(H, nh * hd), (H, nkv * hd), (H, nkv * hd), (nh * hd, H), (H, inter), (H, inter), (inter, H)]


def forward_floor(g: dict[str, int], seq_lens: list[int], resp_lens: list[int], gemm: GemmTimes,
                  backward: bool) -> tuple[float, float, float]:
    """(FLOPs, matmul seconds, attention seconds) of a packed forward over ``seq_lens`` tokens
    (head only at the response positions), plus its backward when ``backward``."""
    M, R = sum(seq_lens), sum(resp_lens)
    flops, mm_s = 0.0, 0.0
    for K, N in layer_shapes(g) * g["layers"]:
        flops += 2 * M * K * N * (3 if backward else 1)
        mm_s += gemm.linear(M, K, N)
        if backward:
            mm_s += gemm.grad_input(M, K, N) + gemm.grad_weight(M, K, N)
    flops += 2 * R * g["hidden"] * g["vocab"] * (3 if backward else 1)
    mm_s += gemm.linear(R, g["hidden"], g["vocab"])
    if backward:
        mm_s += gemm.grad_input(R, g["hidden"], g["vocab"]) + gemm.grad_weight(R, g["hidden"], g["vocab"])
    # causal attention: QK^T and AV over the keys at or before each query
    att_pairs = sum(n * (n + 1) // 2 for n in seq_lens)
    att_flops = 4 * g["heads"] * g["head_dim"] * att_pairs * g["layers"] * (3.5 if backward else 1)
    flops += att_flops
    B, Lbar = len(seq_lens), max(1, round(sum(seq_lens) / len(seq_lens)))
    # timed at the batch's mean length (no padding), scaled by its exact pair count
    t_att = sdpa_time(B, g["heads"], g["kv_heads"], Lbar, Lbar, g["head_dim"], True, backward)
    att_s = t_att * g["layers"] * att_pairs / (B * Lbar * (Lbar + 1) / 2)
    return flops, mm_s, att_s


def generation_floor(g: dict[str, int], prompt_lens_distinct: list[int], prompt_lens: list[int],
                     resp_lens: list[int], gemm: GemmTimes) -> tuple[float, float, float, int]:
    """(FLOPs, matmul s, attention s, decode steps) of KV-cached sampling: every distinct prompt
    prefilled once (head at its last token), then one token per live row per decode step."""
    f_pre, mm_pre, att_pre = forward_floor(g, prompt_lens_distinct, [1] * len(prompt_lens_distinct), gemm, False)
    flops, mm_s, att_s = f_pre, mm_pre, att_pre
    steps = max(resp_lens) - 1  # response token 0 comes from the prefill's logits
    for t in range(steps):
        live = [j for j, r in enumerate(resp_lens) if r >= t + 2]  # rows that still need token t+1
        n = len(live)
        if not n:
            break
        for K, N in layer_shapes(g) * g["layers"] + [(g["hidden"], g["vocab"])]:
            flops += 2 * n * K * N
            mm_s += gemm.linear(n, K, N)
        ctx = [prompt_lens[j] + t + 1 for j in live]
        flops += 4 * g["heads"] * g["head_dim"] * sum(ctx) * g["layers"]
        Lk = round(sum(ctx) / n)
        att_s += sdpa_time(n, g["heads"], g["kv_heads"], 1, Lk, g["head_dim"], False) * g["layers"]
    return flops, mm_s, att_s, steps


def optimizer_floor(n_params: int) -> float:
    """One fused AdamW step over a single flat fp32 tensor of ``n_params`` (no per-tensor cost)."""
    p = torch.nn.Parameter(torch.randn(n_params))
    p.grad = torch.randn(n_params)
    try:
        opt = torch.optim.AdamW([p], lr=1e-4, fused=True)
        opt.step()
    except (RuntimeError, TypeError):
        opt = torch.optim.AdamW([p], lr=1e-4, foreach=True)
    return bench(opt.step)


def dispatch_cost() -> float:
    """Seconds of one trivial ATen op call (an add of two 1-element tensors)."""
    a, b = torch.ones(1), torch.ones(1)
    return bench(lambda: torch.add(a, b), min_s=0.01)


# ----------------------------------------------------------------------------- the profile


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
ATTN_OPS = ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
            "aten::_scaled_dot_product_efficient_attention", "aten::_flash_attention_forward")


def profile_step(pt: PartTimer, step: int) -> dict[str, dict[str, float]]:
    """Per part: wall (under the profiler), ATen op calls, matmul/attention self time, other op
    self time, host time outside ATen ops."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        pt.step(step)
    events = [e for e in prof.events()]
    ranges = [(e.name.split("::", 1)[1], e.time_range.start, e.time_range.end)
              for e in events if e.name.startswith("part::") and e.name != "part::step"]
    step_ev = [e for e in events if e.name == "part::step"][0]
    out: dict[str, dict[str, float]] = {}

    def part_of(t: float) -> str:
        # innermost part range (optimizer sits inside update)
        best = None
        for name, s, e in ranges:
            if s <= t <= e and (best is None or e - s < best[1] - best[0]):
                best = (s, e, name)
        return best[2] if best else "other"

    part_range_wall: dict[str, float] = collections.defaultdict(float)
    for name, s, e in ranges:
        part_range_wall[name] += (e - s) / 1e6
    part_range_wall["update_fwd_bwd"] -= part_range_wall.get("optimizer", 0.0)
    part_range_wall["other"] = (step_ev.time_range.end - step_ev.time_range.start) / 1e6 - sum(
        v for k, v in part_range_wall.items() if k != "other")
    stats = {p: {"wall_s": part_range_wall.get(p, 0.0), "aten_calls": 0, "matmul_attn_s": 0.0, "other_ops_s": 0.0}
             for p in PARTS}
    for e in events:
        if not e.name.startswith("aten::"):
            continue
        p = part_of(e.time_range.start)
        st = stats.setdefault(p, {"wall_s": 0.0, "aten_calls": 0, "matmul_attn_s": 0.0, "other_ops_s": 0.0})
        parent = e.cpu_parent
        top = parent is None or not parent.name.startswith("aten::")
        if top:
            st["aten_calls"] += 1
        self_s = e.self_cpu_time_total / 1e6
        if e.name in MATMUL_OPS or e.name in ATTN_OPS:
            st["matmul_attn_s"] += self_s
        else:
            st["other_ops_s"] += self_s
    for st in stats.values():
        st["host_outside_ops_s"] = st["wall_s"] - st["matmul_attn_s"] - st["other_ops_s"]
    out.update(stats)
    return out


# ----------------------------------------------------------------------------- main


def step_floor(sb: Any, run: Any, trainer: Trainer, g: dict[str, int], n_params: int,
               ) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """(floor seconds per part, FLOPs per part, token counts) of one step's batch, every
    product timed afresh (so that a floor and the step it is compared with are measured
    minutes, not a whole run, apart)."""
    gemm = GemmTimes()
    sdpa_time.cache_clear()
    n_mb = run.prompts_per_step // run.mini_batch_prompts
    seq = sb.batch.attention_mask.sum(1).tolist()
    resp = sb.batch.resp_mask.sum(1).int().tolist()
    prm = [s - r for s, r in zip(seq, resp)]
    distinct: dict[int, int] = {}
    for gid, pl in zip(sb.group_ids.tolist(), prm):
        distinct[gid] = pl
    fl: dict[str, float] = {}
    flops: dict[str, float] = {}
    f, mm, att, steps = generation_floor(g, list(distinct.values()), prm, resp, gemm)
    fl["generation"], flops["generation"] = mm + att, f
    f, mm, att = forward_floor(g, seq, resp, gemm, False)
    fl["old_logprobs"] = fl["post_update_logprobs"] = mm + att
    flops["old_logprobs"] = flops["post_update_logprobs"] = f
    f_u = t_u = 0.0
    for _ in range(run.epochs):  # each mini-batch its own forward + backward
        per = len(seq) // n_mb
        mbs = (trainer.mini_batches(len(sb.prompt_rows)) if hasattr(trainer, "mini_batches")
               else [torch.arange(m * per, (m + 1) * per) for m in range(n_mb)])
        for rows in mbs:
            rows = rows.tolist()
            f, mm, att = forward_floor(g, [seq[i] for i in rows], [resp[i] for i in rows], gemm, True)
            f_u += f
            t_u += mm + att
    fl["update_fwd_bwd"], flops["update_fwd_bwd"] = t_u, f_u
    fl["optimizer"] = optimizer_floor(n_params) * n_mb * run.epochs
    flops["optimizer"] = 0.0
    fl["grading"] = fl["other"] = flops["grading"] = flops["other"] = 0.0
    fl["total"] = sum(fl[k] for k in PARTS)
    flops["total"] = sum(flops[k] for k in PARTS)
    counts = {"sequences": len(seq), "prompt_tokens": sum(prm), "distinct_prompt_tokens": sum(distinct.values()),
              "response_tokens": sum(resp), "tokens": sum(seq), "max_response": max(resp),
              "decode_steps_useful": steps, "decode_row_steps_useful": sum(max(0, r - 1) for r in resp)}
    return fl, flops, counts


def sampling_cost(rows: int, vocab: int) -> float:
    """CPU seconds of the static engine's sampler on one decode step's [rows, vocab] logits."""
    from asymcli.engines.base import SamplingParams
    from asymcli.engines.static import sample_tokens, sampling_mode

    logits, u = torch.randn(rows, vocab), torch.rand(rows)
    temp, top_p = torch.ones(()), torch.ones(())  # the workspace holds them as scalars
    mode = sampling_mode(SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=1, n=1))
    return bench(lambda: sample_tokens(logits, u, mode, temp, top_p))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "mechanism.yaml"))
    p.add_argument("--method", default="asym", help="the run's method (AsymGRPO 0.9/0.4 by default)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=2, help="steps before the timed ones")
    p.add_argument("--repeats", type=int, default=5, help="timed steps, each followed by its floor (medians reported)")
    p.add_argument("--no-profile", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    load0 = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="asym-floor-") as tmp:
        trainer = build_trainer(Path(a.config), a.method, a.threads, Path(tmp) / "run")
        torch.set_num_threads(a.threads)
        run = trainer.train_cfg
        cfgm = trainer.model.config
        g = {"hidden": cfgm.hidden_size, "layers": cfgm.num_hidden_layers, "heads": cfgm.num_attention_heads,
             "kv_heads": cfgm.num_key_value_heads,
             "head_dim": getattr(cfgm, "head_dim", None) or cfgm.hidden_size // cfgm.num_attention_heads,
             "inter": cfgm.intermediate_size, "vocab": cfgm.vocab_size}
        n_params = sum(x.numel() for x in {id(q): q for q in trainer.model.parameters()}.values())
        pt = PartTimer(trainer)
        step = 1
        for _ in range(a.warmup):
            pt.step(step)
            step += 1
        cpu_s, wall_s, floors, flops, counts = [], [], [], [], []
        for _ in range(a.repeats):
            c, w = pt.step(step)
            step += 1
            fl, f, n = step_floor(pt.last_batch, run, trainer, g, n_params)
            if "post_update_logprobs" not in c:
                # train.logprob_gain_every skipped the diagnostic pass on this step: its floor is 0 too
                fl["total"] -= fl["post_update_logprobs"]
                f["total"] -= f["post_update_logprobs"]
                fl["post_update_logprobs"] = f["post_update_logprobs"] = 0.0
            cpu_s.append(c)
            wall_s.append(w)
            floors.append(fl)
            flops.append(f)
            counts.append(n)
        prof = None if a.no_profile else profile_step(pt, step)
        engine = trainer.engine
        sync_every = getattr(engine, "sync_every", 1)

    keys = PARTS + ["total"]
    med = lambda rows, k: statistics.median(r.get(k, 0.0) for r in rows)  # noqa: E731
    measured = {k: med(cpu_s, k) for k in keys}
    measured_wall = {k: med(wall_s, k) for k in keys}
    floor = {k: med(floors, k) for k in keys}
    flops_med = {k: med(flops, k) for k in keys}
    ratio = {k: statistics.median(c.get(k, 0.0) / f[k] for c, f in zip(cpu_s, floors) if f[k] > 0)
             for k in keys if floor[k] > 0}
    gemm = GemmTimes()
    ref_M, ref_K, ref_N = 8192, 64, 256
    ref_gflops = 2 * ref_M * ref_K * ref_N / gemm.linear(ref_M, ref_K, ref_N) / 1e9
    disp = dispatch_cost()
    c0 = counts[len(counts) // 2]
    rows_exec = -(-c0["sequences"] // 8) * 8
    steps_exec = c0["max_response"] - 1
    if sync_every > 1:
        steps_exec = min(run.max_new_tokens - 1, -(-(c0["max_response"] - 1) // sync_every) * sync_every)
    samp = sampling_cost(rows_exec, g["vocab"]) * (steps_exec + 1)
    load1 = os.getloadavg()
    wall = time.perf_counter() - t_start

    line = machine_line(a.threads)
    print(f"# machine: {line}")
    print(f"# load average (1 min) at start {load0[0]:.2f}, at end {load1[0]:.2f}; wall {wall:.0f} s")
    print(f"# config {Path(a.config).name}, method {a.method}: {run.prompts_per_step} prompts x G={run.group_size}, "
          f"max_new_tokens {run.max_new_tokens}, {run.prompts_per_step // run.mini_batch_prompts} mini-batches x "
          f"{run.epochs} epoch(s), engine {run.engine}, eval off; {a.repeats} timed steps after {a.warmup} warm-up; "
          f"each step's floor timed right after it; medians")
    print(f"# a step's tokens (median step): {c0['sequences']} sequences, {c0['tokens']} tokens "
          f"({c0['prompt_tokens']} prompt, {c0['response_tokens']} response, longest response {c0['max_response']}); "
          f"{c0['distinct_prompt_tokens']} distinct-prompt tokens prefilled; decode row-steps: "
          f"{c0['decode_row_steps_useful']} useful, {rows_exec * steps_exec} as the {run.engine} engine runs them "
          f"({rows_exec} rows x {steps_exec} steps)")
    print(f"# reference: F.linear {ref_M}x{ref_K}x{ref_N} at {ref_gflops:.0f} GFLOP/s (CPU time); one trivial ATen op "
          f"call {disp * 1e6:.2f} us; the sampler alone, {rows_exec} rows x {steps_exec + 1} draws: {samp:.3f} s")
    print(f"# measured = CPU seconds of the process ({a.threads} torch thread{'s' if a.threads > 1 else ''}), wall in parentheses; floor = FLOPs at the "
          f"throughput timed at the same shapes (CPU seconds)")
    print()
    print("| part | measured s (wall) | floor s | ratio | GFLOP | floor GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for k in keys:
        m, fl = measured[k], floor[k]
        r = f"{ratio[k]:.1f}" if k in ratio else "–"
        gf = flops_med[k] / 1e9
        rate = f"{gf / fl:.0f}" if fl > 0 and gf > 0 else "–"
        print(f"| {LABEL.get(k, 'step')} | {m:.3f} ({measured_wall[k]:.3f}) | {fl:.3f} | {r} | "
              f"{gf:.2f} | {rate} |")
    if prof:
        print()
        print("Where the rest goes (one more step under torch.profiler; its shares of each part's profiled wall time, "
              "applied to the part's measured CPU seconds above):")
        print("| part | ATen op calls | matmul + attention s | other ATen ops s | outside ATen ops s "
              "| op calls x trivial op s |")
        print("|---|---|---|---|---|---|")
        for k in PARTS:
            st = prof.get(k)
            if not st or st["wall_s"] <= 0:
                continue
            sc = measured[k] / st["wall_s"]
            print(f"| {LABEL[k]} | {st['aten_calls']:.0f} | {st['matmul_attn_s'] * sc:.3f} | "
                  f"{st['other_ops_s'] * sc:.3f} | {st['host_outside_ops_s'] * sc:.3f} | {st['aten_calls'] * disp:.3f} |")
    rec = {"what": "floor", "config": a.config, "method": a.method, "threads": a.threads, "machine": line,
           "load_start": load0, "load_end": load1, "wall_s": round(wall, 1), "measured_cpu": measured,
           "measured_wall": measured_wall, "floor": floor, "ratio": ratio, "flops": flops_med, "counts": counts,
           "cpu_samples": cpu_s, "wall_samples": wall_s, "floor_samples": floors, "profile": prof,
           "ref_gflops": ref_gflops, "dispatch_s": disp, "sampling_s": samp, "sync_every": sync_every,
           "wrapped": pt.wrapped, "geometry": g, "n_params": n_params}
    print(json.dumps(rec, default=float))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "floor.json").write_text(json.dumps(rec, default=float, indent=1))


if __name__ == "__main__":
    main()
