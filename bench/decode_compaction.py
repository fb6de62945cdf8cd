"""The stacked decoder with and without dropping finished rows, in one call.

Samples the testbed's rollouts (configs/mechanism.yaml: prompts per step x G, at most
max_new_tokens, temperature 1) from K copies of the shipped default base (each nudged by its
own 1e-3 noise, as K runs of a bundle differ) with ``generate_stacked(..., compact=False)``
and ``compact=True`` alternately, checks that both give the same tokens, and prints the
median CPU seconds per run of each and, last, ``compacted vs uncompacted: X.XX×``.

    python bench/decode_compaction.py             # K = 1 and 4, 5 calls each (about 30 s)
    python bench/decode_compaction.py --k 8 --calls 9

One torch thread, portable numerics (the AVX2 pin), as the trainer runs it.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asymcli.platform import apply_numerics, platform_info  # noqa: E402

apply_numerics(True)

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "mechanism.yaml"))
    ap.add_argument("--k", type=int, nargs="+", default=[1, 4], help="bundle sizes")
    ap.add_argument("--calls", type=int, default=5, help="timed calls per mode (after one warm-up)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from asymcli import artifacts
    from asymcli.config import load_config
    from asymcli.embedded.prebuilt import PREBUILT_DIR
    from asymcli.engines import stacked as sk
    from asymcli.engines.base import SamplingParams
    from asymcli.sampling.models import encode_prompts, load_policy
    from stages import prep

    cfg = load_config(args.config)
    tc = cfg.train
    with tempfile.TemporaryDirectory() as tmp:
        rows = artifacts.read_parquet(prep.run(cfg, Path(tmp) / "prompts.parquet"), artifacts.PROMPTS).to_pylist()
    model, tok = load_policy(PREBUILT_DIR / "model", cfg.model)
    ids = encode_prompts(tok, [r["prompt"] for r in rows if r["split"] == "train"], cfg.model)
    width = max(map(len, ids))
    n = tc.prompts_per_step
    info = platform_info()
    print(f"# {info['cpu']} ({info['torch_capability']}), torch {info['torch']}, 1 thread; "
          f"{n} prompts x G={tc.group_size}, at most {tc.max_new_tokens} new tokens; "
          f"load {os.getloadavg()[0]:.2f}")
    ratios = []
    for K in args.k:
        models = []
        for k in range(K):
            m = copy.deepcopy(model)
            g = torch.Generator().manual_seed(k)
            with torch.no_grad():
                for p in m.parameters():
                    p.add_(torch.randn(p.shape, generator=g) * 1e-3)
            models.append(m)
        times: dict[bool, list[float]] = {False: [], True: []}
        lengths: list[int] = []
        for call in range(args.calls + 1):
            prompts = [[ids[(call * n + i * (k + 1)) % len(ids)] for i in range(n)] for k in range(K)]
            params = [SamplingParams(n=tc.group_size, max_new_tokens=tc.max_new_tokens, temperature=1.0,
                                     seed=call * 100 + k) for k in range(K)]
            got = {}
            for compact in (False, True):
                t0 = time.process_time()
                out = sk.generate_stacked(models, prompts, params, width, eos_ids=[tok.eos_token_id],
                                          pad_id=tok.pad_token_id, compact=compact)
                if call:
                    times[compact].append((time.process_time() - t0) / K)
                got[compact] = [[(o.token_ids, o.logprobs) for o in run] for run in out]
            if got[False] != got[True]:
                sys.exit(f"K={K}, call {call}: compacted decoding gave other tokens")
            lengths += [len(t) for run in got[True] for t, _ in run]
        a, b = statistics.median(times[False]), statistics.median(times[True])
        ratios.append(a / b)
        print(f"K={K}: uncompacted {a:.3f} s, compacted {b:.3f} s per run (CPU, median of {args.calls}); "
              f"responses mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)} tokens; same tokens")
    print(f"compacted vs uncompacted: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
