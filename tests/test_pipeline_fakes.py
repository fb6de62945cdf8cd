"""Synthetic artifacts for the pipeline tests (no test functions here).

They are written with the declared schemas (asymcli.artifacts) so that aggregation,
report and figures are tested on files shaped exactly like the real stages' outputs.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from asymcli import artifacts
from asymcli.config import parse_run_id

BENCHES = {"math500": 5, "aime24": 10}  # name -> k


def run_identity(rid: str) -> dict:
    if rid == "base":
        return {"method": "base", "beta_pos": math.nan, "beta_neg": math.nan, "seed": -1}
    m, bp, bn, seed = parse_run_id(rid)
    return {"method": m, "beta_pos": math.nan if bp is None else bp,
            "beta_neg": math.nan if bn is None else bn, "seed": seed}


def samples_rows(rid: str, step: int, acc: float, benches: dict[str, int] = BENCHES,
                 n_problems: int = 6, seed: int = 0, answers: list[str] | None = None) -> list[dict]:
    """SAMPLES rows; each sample is correct with probability ``acc``."""
    rng = random.Random(f"{rid}-{step}-{seed}")
    ident = run_identity(rid)
    rows = []
    for bench, k in benches.items():
        for p in range(n_problems):
            for i in range(k):
                ok = rng.random() < acc
                extracted = "42" if ok else (answers[i % len(answers)] if answers else str(rng.randint(0, 3)))
                rows.append({
                    "run_id": rid, **ident, "step": step, "benchmark": bench,
                    "problem_id": f"{bench}-{p}", "difficulty": "", "sample_idx": i,
                    "temperature": 0.4, "response": f"... \\boxed{{{extracted}}}",
                    "extracted": extracted, "verdict": "correct" if ok else "wrong",
                    "correct": ok, "n_tokens": 10, "finish_reason": "stop",
                })
    return rows


def write_samples(root: Path, rid: str, acc: float, steps: tuple[int, ...] = (3,), **kw) -> Path:
    rows = []
    for s in steps:
        rows += samples_rows(rid, 0 if rid == "base" else s, acc + 0.02 * s, **kw)
    path = root / "evals" / rid / "samples.parquet"
    artifacts.write_parquet(path, rows, artifacts.SAMPLES, {"run_id": rid})
    return path


def metrics_rows(n_steps: int, level: float, eval_every: int = 2, seed: int = 0) -> list[dict]:
    rng = random.Random(f"{level}-{seed}")
    rows = []
    for step in range(1, n_steps + 1):
        acc = level + 0.01 * step + rng.uniform(-0.02, 0.02)
        rows.append({
            "step": step, "reward_mean": acc, "entropy": 1.0 - 0.02 * step * level,
            "kappa": 0.002 * level if step % 3 else math.nan,
            "none_solved_frac": 0.5 - 0.01 * step, "all_solved_frac": 0.1 + 0.01 * step,
            "mixed_frac": 0.4, "logprob_gain_correct": 0.01 * level, "logprob_gain_correct_tok": 0.001,
            "clipfrac_low": 0.0, "clipfrac_high": 0.0, "approx_kl": 0.0, "loss": 0.1,
            "adv_pos_mass": 1.0, "adv_neg_mass": 1.0, "response_len_mean": 20.0, "grad_norm": 1.0,
            "lr": 1e-5, "rollout_s": 0.1, "update_s": 0.1, "tokens_per_s": 100.0,
            "eval_greedy_acc": acc if step % eval_every == 0 else math.nan,
            "p_hist": [1, 2, 3], "w_pos_hist": [0.0, 1.0, 0.0], "w_neg_hist": [0.0, 1.0, 0.0],
        })
    return rows


def write_metrics(root: Path, rid: str, level: float, n_steps: int = 6, **kw) -> Path:
    path = root / "runs" / rid / "metrics.parquet"
    artifacts.write_parquet(path, metrics_rows(n_steps, level, **kw), artifacts.METRICS, {"run_id": rid})
    return path


#: (run id, accuracy level) of a small fake grid: two seeds for GRPO and AsymGRPO.
FAKE_RUNS = {
    "base": 0.20,
    "reinforce_s0": 0.30,
    "grpo_s0": 0.40, "grpo_s1": 0.44,
    "pos_only_s0": 0.35, "neg_only_s0": 0.33, "reinforce_ent_s0": 0.31,
    "ent_decrease_s0": 0.36, "ent_increase_s0": 0.34,
    "asym_bp0.9_bn0.4_s0": 0.50, "asym_bp0.9_bn0.4_s1": 0.52,
    "asym_bp0.7_bn0.7_s0": 0.45,
    "asym_bp0.5_bn0.5_s0": 0.41,
}


def write_fake_results(root: Path, runs: dict[str, float] = FAKE_RUNS) -> Path:
    for rid, level in runs.items():
        write_samples(root, rid, level)
        if rid != "base":
            seed = run_identity(rid)["seed"]
            write_metrics(root, rid, level, seed=seed)
    return root
