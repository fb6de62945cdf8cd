"""Synthetic artifacts for the pipeline tests (no test functions here).

They are written with the declared schemas (asymcli.artifacts) so that aggregation,
report and figures are tested on files shaped exactly like the real stages' outputs.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from asymcli import artifacts
from asymcli.config import is_base_run, parse_run_id

BENCHES = {"math500": 5, "aime24": 10}  # name -> k


def run_identity(rid: str) -> dict:
    if is_base_run(rid):
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


# ---------------------------------------------------------------------------
# A stand-in `asym` for Snakemake DAG tests
# ---------------------------------------------------------------------------
# The rules run `python -m asymcli` with Snakemake's own interpreter (workflow/rules/common.smk),
# so the stand-in is a package `asymcli` placed first on PYTHONPATH: its __main__ is the fake
# below, and every other module is the real one (its __path__ goes on to the real package).
# prep / base / train / eval write synthetic artifacts instantly (and log each call to
# $FAKE_ASYM_LOG, one line per job, so a test can count what ran); every other command
# (aggregate, report) runs the real CLI.

FAKE_STAGES = ("prep", "base", "train", "eval")


def _opt(argv: list[str], name: str, default: str | None = None) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else default


def fake_asym_main(argv: list[str]) -> int:
    import os
    import zlib

    import pyarrow as pa

    if not argv or argv[0] not in FAKE_STAGES:
        from asymcli.cli import main

        import sys
        sys.argv = ["asym", *argv]
        main()
        return 0
    cmd = argv[0]
    log = os.environ.get("FAKE_ASYM_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(" ".join(argv) + "\n")
    if cmd == "prep":
        rows = [{"problem_id": f"p{i}", "split": "train" if i < 8 else "heldout", "source": "arith",
                 "difficulty": "t1", "prompt": f"Compute {i}+1.", "answer": str(i + 1), "solution": ""}
                for i in range(12)]
        artifacts.write_parquet(_opt(argv, "--out"), rows, artifacts.PROMPTS)
    elif cmd == "base":
        out = Path(_opt(argv, "--out"))
        (out / "model").mkdir(parents=True, exist_ok=True)
        (out / "model" / "config.json").write_text("{}")
        artifacts.write_parquet(out / "base_stats.parquet",
                                [{"k_correct": k, "groups": 1, "group_size": 4} for k in range(5)],
                                artifacts.BASE_STATS)
        pa_table = pa.table({"step": [1, 2], "loss": [1.0, 0.5]})
        import pyarrow.parquet as pq
        pq.write_table(pa_table, out / "sft_metrics.parquet")
    elif cmd == "train":
        out = Path(_opt(argv, "--out"))
        rid = out.name
        level = 0.2 + (zlib.crc32(rid.encode()) % 50) / 100
        ck = out / "checkpoints" / "step_000003"
        ck.mkdir(parents=True, exist_ok=True)
        (ck / "COMPLETE").write_text("{}")
        artifacts.write_parquet(out / "metrics.parquet", metrics_rows(4, level), artifacts.METRICS)
    elif cmd == "eval":
        if "--runs" in argv:  # an eval bundle: each run into results/evals/{run}/ (results = the prompts' root)
            results = Path(_opt(argv, "--prompts")).parent.parent
            jobs = [(rid, results / "evals" / rid / "samples.parquet") for rid in _opt(argv, "--runs").split(",")]
        else:
            jobs = [(_opt(argv, "--run-id") or Path(_opt(argv, "--run")).name, _opt(argv, "--out"))]
        for rid, out in jobs:
            level = 0.2 + (zlib.crc32(rid.encode()) % 50) / 100
            rows = samples_rows(rid, 0 if is_base_run(rid) else 4, level, benches={"arith_heldout": 2}, n_problems=4)
            artifacts.write_parquet(out, rows, artifacts.SAMPLES)
    return 0


def install_fake_asym(shim_dir: Path) -> Path:
    """Write the stand-in package into ``shim_dir`` (put it first on PYTHONPATH); return it."""
    real = Path(__file__).resolve().parents[2] / "asymcli"
    pkg = shim_dir / "asymcli"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(
        f"__path__.append({str(real)!r})\n"
        f"exec(compile(open({str(real / '__init__.py')!r}).read(), {str(real / '__init__.py')!r}, 'exec'))\n")
    (pkg / "__main__.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(real.parent)!r})\n"
        "from tests.pipeline.test_pipeline_fakes import fake_asym_main\n"
        "sys.exit(fake_asym_main(sys.argv[1:]))\n")
    return shim_dir
