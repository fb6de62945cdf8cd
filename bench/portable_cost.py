"""The speed cost of portable numerics (numerics.portable, asymcli/platform.py) on the testbed step.

The testbed step: one PPO mini-batch update of the default config's tiny model (ModelConfig()
defaults, 0.13M parameters) on one thread, as the trainer does it: response log-probs with grad,
the clipped loss, backward, grad clipping, AdamW. The batch is train.mini_batch_prompts x
train.group_size = 16 x 8 sequences of 24 prompt + 48 response tokens (the default's
max_new_tokens).

One call measures both modes, each in its own fresh process (torch picks its kernels once per
process): "native" (the portable variables removed from the environment: this CPU's best
kernels) and "portable" (asymcli.platform.PORTABLE_ENV set before torch loads). Rounds
alternate native, portable, native, ... so that load from other processes hits both alike.
Prints one JSON line: each mode's capability and median step time, and the ratio
portable / native (> 1: portable is slower). ``--compatible`` adds a third mode, the pin with
``MKL_CBWR=COMPATIBLE`` (MKL's SSE2 branch, the only one its documentation promises gives the
same results on Intel and other vendors' CPUs: docs/reliability.md, "Across CPU vendors").

    python bench/portable_cost.py                 # 3 rounds x 15 timed steps per mode
    python bench/portable_cost.py --rounds 5 --steps 30
    python bench/portable_cost.py --compatible
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(steps: int, warmup: int) -> None:
    import time

    import torch

    from asymcli.algorithm.objective import policy_loss
    from asymcli.config import ModelConfig, TrainConfig
    from asymcli.embedded.tiny import build_model, build_tokenizer
    from asymcli.training.policy import pack, response_logprobs

    torch.set_num_threads(1)
    t = TrainConfig()
    tok = build_tokenizer()
    model = build_model(ModelConfig(), tok, seed=0)
    g = torch.Generator().manual_seed(0)
    B = t.mini_batch_prompts * t.group_size
    vocab = len(tok)
    prompts = torch.randint(1, vocab, (B, 24), generator=g).tolist()
    responses = torch.randint(1, vocab, (B, t.max_new_tokens), generator=g).tolist()
    batch = pack(prompts, responses, pad_id=tok.pad_token_id)
    adv = torch.randn(B, generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr)
    with torch.no_grad():
        old, _ = response_logprobs(model, batch)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        logp, _ = response_logprobs(model, batch)
        loss, _ = policy_loss(logp, old, adv, batch.resp_mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "times": times}))


def run_mode(mode: str, steps: int, warmup: int) -> dict:
    from asymcli.platform import MARKER, OVERRIDDEN, PORTABLE_ENV

    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_ENV and k not in (MARKER, OVERRIDDEN)}
    if mode in ("portable", "compatible"):
        env.update(PORTABLE_ENV)
    if mode == "compatible":
        env["MKL_CBWR"] = "COMPATIBLE"
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, __file__, "--child", "--steps", str(steps), "--warmup", str(warmup)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compatible", action="store_true", help="also time the pin with MKL_CBWR=COMPATIBLE")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.steps, a.warmup)
        return
    from asymcli.platform import platform_info

    modes = ("native", "portable", "compatible") if a.compatible else ("native", "portable")
    res: dict[str, dict] = {m: {"times": []} for m in modes}
    for _ in range(a.rounds):
        for mode in modes:
            r = run_mode(mode, a.steps, a.warmup)
            res[mode]["capability"] = r["capability"]
            res[mode]["times"] += r["times"]
    med = {m: statistics.median(r["times"]) for m, r in res.items()}
    info = platform_info()
    print(json.dumps({
        "cpu": info["cpu"], "cpu_flags": info["cpu_flags"], "torch": info["torch"],
        "steps_per_mode": len(res["native"]["times"]), "rounds": a.rounds,
        "native_capability": res["native"]["capability"], "portable_capability": res["portable"]["capability"],
        "native_median_s": round(med["native"], 4), "portable_median_s": round(med["portable"], 4),
        "ratio_portable_over_native": round(med["portable"] / med["native"], 3),
        **({"compatible_median_s": round(med["compatible"], 4),
            "ratio_compatible_over_portable": round(med["compatible"] / med["portable"], 3)} if a.compatible else {}),
    }))


if __name__ == "__main__":
    main()
