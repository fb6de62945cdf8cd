"""Benchmark of the embedded default's prep + base stages on this machine.

Runs prep and base into a scratch folder (or --out), then measures the base model:
held-out greedy and sampled (T = train.temperature) accuracy per tier, and the
group-accuracy distribution (G = train.group_size) per tier and on the base stage's
probe prompts. Prints wall times and the machine load.

    python bench/base_bench.py [--config FILE] [--set base.steps=800 --set model.num_layers=3]
                               [--heldout 100] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asymcli import artifacts  # noqa: E402
from asymcli.config import load_config  # noqa: E402


def _set(overrides: dict, dotted: str) -> None:
    key, _, value = dotted.partition("=")
    node = overrides
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = yaml.safe_load(value)


def _fallback_grader() -> None:
    """Until asymcli.grading exists: exact match of the last \\boxed{...} (bench only)."""
    try:
        import asymcli.grading  # noqa: F401
        return
    except ImportError:
        pass
    import re
    import types
    from dataclasses import dataclass

    @dataclass
    class Verdict:
        correct: bool
        reason: str
        extracted: str

    class Grader:
        def grade_many(self, responses, golds):
            out = []
            for r, g in zip(responses, golds):
                m = re.findall(r"\\boxed\{([^{}]*)\}", r)
                ext = m[-1].strip() if m else ""
                out.append(Verdict(ext == g, "correct" if ext == g else ("wrong" if m else "no_answer"), ext))
            return out

    mod = types.ModuleType("asymcli.grading")
    mod.Grader, mod.Verdict = Grader, Verdict
    sys.modules["asymcli.grading"] = mod
    print("(asymcli.grading not found: bench uses exact match of the last \\boxed{})")


def _hist_line(counts: list[int]) -> str:
    n = sum(counts) or 1
    G = len(counts) - 1
    return (f"k=0..{G}: {counts}  none {counts[0] / n:.2f}  mixed {1 - (counts[0] + counts[G]) / n:.2f}"
            f"  all {counts[G] / n:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", action="append", default=[], help="dotted override, e.g. base.steps=800")
    ap.add_argument("--heldout", type=int, default=100, help="held-out problems per tier to measure")
    ap.add_argument("--frac", action="append", default=[],
                    help="tier=fraction of its training rows with a worked solution, the rest answer-only")
    ap.add_argument("--out", default=None, help="folder for prompts + base outputs (default: a temp folder)")
    args = ap.parse_args()
    overrides: dict = {}
    for s in args.set:
        _set(overrides, s)
    cfg = load_config(args.config, overrides)
    from asymcli.embedded import tasks

    for item in args.frac:
        tier, _, frac = item.partition("=")
        tasks.DEFAULT_WORKED_FRAC[tier] = float(frac)
    _fallback_grader()

    import torch

    from asymcli.engines.base import SamplingParams, make_engine
    from asymcli.grading import Grader
    from asymcli.sampling.models import decode_responses, encode_prompts, load_policy
    from stages import base, prep

    out = Path(args.out or tempfile.mkdtemp(prefix="asym-base-bench-"))
    print(f"load before: {os.getloadavg()}  torch threads {torch.get_num_threads()}  out {out}")
    t0 = time.perf_counter()
    prompts = prep.run(cfg, out / "data" / "prompts.parquet")
    t_prep = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), time.process_time()
    paths = base.run(cfg, prompts, out / "base", log=print)
    t_base, c_base = time.perf_counter() - t1, time.process_time() - c1
    sft_meta = artifacts.read_metadata(paths["sft_metrics"])
    sft_rows = artifacts.read_parquet(paths["sft_metrics"]).to_pylist()
    stats = artifacts.read_parquet(paths["base_stats"], artifacts.BASE_STATS).to_pylist()
    load_after = os.getloadavg()

    model, tok = load_policy(paths["model"], cfg.model)
    rows = [r for r in artifacts.read_parquet(prompts, artifacts.PROMPTS).to_pylist() if r["split"] == "heldout"]
    by_tier: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if len(by_tier[r["difficulty"]]) < args.heldout:
            by_tier[r["difficulty"]].append(r)
    engine = make_engine("hf", model, tok)
    grader = Grader()
    G = cfg.train.group_size
    t2 = time.perf_counter()
    print(f"\nprep {t_prep:.1f}s  base {t_base:.1f}s (sft {sft_meta.get('seconds', 0):.1f}s,"
          f" {len(sft_rows)} steps, final loss {sft_rows[-1]['loss']:.4f})  params {sft_meta.get('model_params')}")
    print(f"load after base: {load_after}  base cpu time {c_base:.0f}s (threads {torch.get_num_threads()})")
    print(f"\nheld-out per tier ({args.heldout} problems): greedy, sampled T={cfg.train.temperature} (G={G})")
    tot_g = tot_s = n_tot = 0
    for tier, trs in sorted(by_tier.items()):
        ids = encode_prompts(tok, [r["prompt"] for r in trs], cfg.model)
        res = {}
        for name, params in (
            ("greedy", SamplingParams(temperature=0.0, max_new_tokens=cfg.train.max_new_tokens, n=1, seed=1)),
            ("sampled", SamplingParams(temperature=cfg.train.temperature, top_p=cfg.train.top_p,
                                       max_new_tokens=cfg.train.max_new_tokens, n=G, seed=1)),
        ):
            ro = engine.generate(ids, params)
            texts = decode_responses(tok, [r.token_ids for r in ro])
            v = grader.grade_many(texts, [trs[r.prompt_index]["answer"] for r in ro])
            per_prompt = [0] * len(trs)
            for r, vv in zip(ro, v):
                per_prompt[r.prompt_index] += bool(vv.correct)
            # Mode: worked steps ("=" in the text) or a bare answer.
            worked = [("=" in t, vv.correct) for t, vv in zip(texts, v)]
            n_w = sum(w for w, _ in worked)
            acc_w = sum(c for w, c in worked if w) / max(1, n_w)
            acc_d = sum(c for w, c in worked if not w) / max(1, len(worked) - n_w)
            res[name] = (sum(per_prompt) / len(ro), per_prompt, n_w / len(worked), acc_w, acc_d)
        hist = [0] * (G + 1)
        for c in res["sampled"][1]:
            hist[c] += 1
        tot_g += res["greedy"][0] * len(trs)
        tot_s += res["sampled"][0] * len(trs)
        n_tot += len(trs)
        print(f"  {tier}: greedy {res['greedy'][0]:.3f}  sampled {res['sampled'][0]:.3f}  groups {_hist_line(hist)}")
        for name in ("greedy", "sampled"):
            _, _, w, aw, ad = res[name]
            print(f"      {name}: worked mode {w:.2f} (acc {aw:.2f}), bare answer {1 - w:.2f} (acc {ad:.2f})")
    print(f"  all: greedy {tot_g / n_tot:.3f}  sampled {tot_s / n_tot:.3f}   ({time.perf_counter() - t2:.0f}s)")
    counts = [s["groups"] for s in sorted(stats, key=lambda s: s["k_correct"])]
    print(f"\nbase_stats (probe {sum(counts)} training prompts, G={G}): {_hist_line(counts)}")
    curve = [r for r in sft_rows if r["step"] % max(1, len(sft_rows) // 10) == 0] + [sft_rows[-1]]
    print("sft curve: " + ", ".join(f"{r['step']}:{r['loss']:.3f}@{r['seconds']:.0f}s" for r in curve))
    print(f"load end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
