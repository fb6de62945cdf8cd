"""Runs per hour: the testbed's runs trained in bundles vs one process per run, in one call.

Both modes train the same N runs of configs/mechanism.yaml (its model, task, base and train
settings; fewer steps) with the same code, two processes at a time on the machine's cores:

- separate: `asym train` once per run (a bundle of one each), N processes, 2 at a time;
- bundled:  `asym train --runs ...` twice, each a bundle of N/2 runs (one per core).

It checks that every run's metrics are the same in both modes (outside timing columns), then
prints the wall times and, last, ``bundled vs separate: X.XX× runs per hour``.

    python bench/throughput.py            # 12 runs x 30 steps (about 15-20 min on 2 cores)
    python bench/throughput.py --quick    # 4 runs x 8 steps (under 5 min)
    python bench/throughput.py --forward-tokens 2048   # both modes on the default's CPU fast path
    git worktree add --detach /tmp/asym-before 05bb4f3   # the code before bundles
    python bench/throughput.py --separate-src /tmp/asym-before   # bundles vs the old one-per-process

The prep and base stages run once, before the clock starts (the prebuilt base is copied).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["reinforce", "pos_only", "neg_only", "grpo", "ent_decrease", "ent_increase"]
TIMING = {"rollout_s", "update_s", "tokens_per_s", "eval_s"}


def asym(*args: str, log: Path, src: Path = ROOT) -> None:
    with open(log, "w") as fh:
        code = subprocess.call([sys.executable, "-m", "asymcli.cli", *args], stdout=fh, stderr=subprocess.STDOUT,
                               cwd=src, env={**os.environ, "PYTHONPATH": str(src)})
    if code:
        sys.exit(f"`asym {' '.join(args)}` failed ({code}); see {log}")


def timed_pool(commands: list[list[str]], logs: list[Path], parallel: int, src: Path = ROOT) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda c: asym(*c[0], log=c[1], src=src), zip(commands, logs)))
    return time.perf_counter() - t0


def metrics(folder: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in pq.read_table(folder / "metrics.parquet").to_pylist()]


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 runs x 8 steps")
    ap.add_argument("--runs", type=int, help="number of runs (even; default 12, quick 4)")
    ap.add_argument("--steps", type=int, help="steps per run (default 30, quick 8)")
    ap.add_argument("--parallel", type=int, default=2, help="processes at a time (default 2: the cores here)")
    ap.add_argument("--forward-tokens", type=int, help="train.forward_tokens of both modes (default: the testbed's, "
                    "16384, one group; 2048 is the CPU fast path of configs/default.yaml)")
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--separate-src", type=Path, default=ROOT,
                    help="source tree whose code trains the separate runs (default: this one); e.g. a worktree of "
                         "an older commit, to measure bundles against one process per run before bundles existed")
    args = ap.parse_args()
    n = args.runs or (4 if args.quick else 12)
    steps = args.steps or (8 if args.quick else 30)
    if n % args.parallel:
        sys.exit(f"--runs ({n}) must be a multiple of --parallel ({args.parallel})")
    work = args.keep or Path(tempfile.mkdtemp(prefix="asym-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load((ROOT / "configs" / "mechanism.yaml").read_text())
    cfg["train"].update(steps=steps, eval_every=max(1, steps // 2), checkpoint_every=0)
    if args.forward_tokens:
        cfg["train"]["forward_tokens"] = args.forward_tokens
    cfg.pop("resources", None)  # the bundles are given here (--runs); an older --separate-src knows no train_bundle
    ids = [f"{METHODS[i % len(METHODS)]}_s{i // len(METHODS)}" for i in range(n)]
    cfgs = {}
    for mode in ("separate", "bundled"):
        c = dict(cfg, results_dir=str(work / mode))
        cfgs[mode] = work / f"{mode}.yaml"
        cfgs[mode].write_text(yaml.safe_dump(c))
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    # Prep + base once (outside the clock); both modes read them.
    asym("prep", "--config", str(cfgs["separate"]), log=logs / "prep.log")
    asym("base", "--config", str(cfgs["separate"]), log=logs / "base.log")
    prompts = work / "separate" / "data" / "prompts.parquet"
    model = work / "separate" / "base" / "model"
    common = ["--prompts", str(prompts), "--no-progress"]
    sep_cmds = []
    for rid in ids:
        method, seed = rid.rsplit("_s", 1)
        sep_cmds.append(["train", "--config", str(cfgs["separate"]), "--method", method, "--seed", seed,
                         "--model", str(model), "--out", str(work / "separate" / "runs" / rid), *common])
    (work / "bundled" / "base").mkdir(parents=True, exist_ok=True)
    if not (work / "bundled" / "base" / "model").exists():
        os.symlink(model, work / "bundled" / "base" / "model")
    per = n // args.parallel
    bun_cmds = [["train", "--config", str(cfgs["bundled"]), "--runs", ",".join(ids[k * per:(k + 1) * per]), *common]
                for k in range(args.parallel)]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{n} runs x {steps} steps of configs/mechanism.yaml (train.forward_tokens "
          f"{cfg['train'].get('forward_tokens', 16384)}); work folder {work}", flush=True)
    src = args.separate_src.resolve()
    t_sep = timed_pool(sep_cmds, [logs / f"sep_{r}.log" for r in ids], args.parallel, src)
    label = "" if src == ROOT else f" (code of {src})"
    print(f"separate{label}: {n} processes, {args.parallel} at a time: {t_sep:.1f} s "
          f"({n / t_sep * 3600:.0f} runs/hour)", flush=True)
    t_bun = timed_pool(bun_cmds, [logs / f"bundle_{k}.log" for k in range(args.parallel)], args.parallel)
    print(f"bundled:  {args.parallel} bundles of {per} runs: {t_bun:.1f} s ({n / t_bun * 3600:.0f} runs/hour)",
          flush=True)
    if src == ROOT:  # same code: every run must have the same numbers in both modes
        bad = [rid for rid in ids if not same(metrics(work / "separate" / "runs" / rid),
                                              metrics(work / "bundled" / "runs" / rid))]
        print(f"same metrics in both modes (outside timing columns): {n - len(bad)} of {n} runs"
              + (f"; DIFFER: {', '.join(bad)}" if bad else ""))
    print(f"bundled vs separate: {t_sep / t_bun:.2f}× runs per hour")


if __name__ == "__main__":
    main()
