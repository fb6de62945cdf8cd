"""Checkpoint evaluation with Avg@k sampling.

For every (checkpoint step, benchmark) pair: sample k responses per problem at the
benchmark's temperature, grade them with the shared grader, and write one SAMPLES row per
sample into ``parts/step{N:06d}__{benchmark}.parquet``. Finished pairs are skipped when the
evaluation is resumed; the run's ``samples.parquet`` is the concatenation of its parts.
Avg@k, pass@k and maj@k are then queries over those rows (asymcli.analysis.aggregate) and library
functions (asymcli.algorithm.metrics) that agree with them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from .. import artifacts, faults
from ..config import BenchmarkSpec, Config, config_to_dict, is_base_run, parse_run_id
from ..engines.base import SamplingParams, make_engine
from ..artifacts import checkpoint_fingerprint, verify_checkpoint
from ..errors import ArtifactError, ConfigError
from ..progress import ProgressBar
from ..sampling.curves import CurveSet, spread_rows
from ..sampling.engine import engine_kwargs
from ..sampling.grade import decode_and_grade, make_grader

PARTS = artifacts.EVAL_PARTS_DIR


@dataclasses.dataclass(frozen=True)
class RunInfo:
    run_id: str
    method: str
    beta_pos: float
    beta_neg: float
    seed: int


def run_info(run_id: str, run_json: dict[str, Any] | None = None) -> RunInfo:
    """Identity columns of a run (the base model is run "base", method "base")."""
    if is_base_run(run_id):  # "base", or "base_b{k}" with several bases
        return RunInfo(run_id, "base", math.nan, math.nan, -1)
    try:  # a run folder of any name evaluates from its run.json; only a run id can carry a target
        parsed: tuple[str, float | None, float | None, int] | None = parse_run_id(run_id)
    except ConfigError:
        parsed = None
    if parsed is not None and parsed[0] == "asym_adaptive" and parsed[1] is not None:
        # a schedule run with its own target: its group is the target (beta_pos column; the
        # betas move every step), so that two targets are two Table 2 rows (methods.run_id)
        return RunInfo(run_id, "asym_adaptive", parsed[1], math.nan, parsed[3])
    if run_json and "run" in run_json:
        r = run_json["run"]
        return RunInfo(run_id, r["method"], float(r["beta_pos"]), float(r["beta_neg"]), int(r["seed"]))
    method, bp, bn, seed = parsed if parsed is not None else parse_run_id(run_id)  # the error names the id
    return RunInfo(run_id, method, math.nan if bp is None else bp, math.nan if bn is None else bn, seed)


def select_steps(available: Sequence[int], which: str | Sequence[int]) -> list[int]:
    """Checkpoint steps to evaluate: "final", "all", or explicit steps (each must exist)."""
    avail = sorted(available)
    if not avail:
        return []
    if which == "final":
        return [avail[-1]]
    if which == "all":
        return avail
    missing = [s for s in which if s not in avail]
    if missing:
        raise ConfigError(f"checkpoint step(s) {missing} do not exist; available steps: {avail}")
    return sorted(set(which))


def part_path(out_dir: Path, step: int, bench: str) -> Path:
    return out_dir / PARTS / f"step{step:06d}__{bench}.parquet"


#: BenchmarkSpec fields that never change a checkpoint's samples (the trainer's curve subset):
#: left out of :func:`spec_key`, so adding or changing them redoes no finished part.
NOT_IN_SPEC_KEY = ("curve_limit",)


def spec_key(spec: BenchmarkSpec, max_new_tokens: int, seed: int) -> str:
    """Hash of everything that determines a (checkpoint, benchmark) result."""
    d = config_to_dict(spec)
    for name in NOT_IN_SPEC_KEY:
        d.pop(name, None)
    d["max_new_tokens"] = max_new_tokens
    d["seed"] = seed
    return artifacts.config_hash(d)


def part_key(spec: BenchmarkSpec, max_new_tokens: int, seed: int, model_key: str) -> str:
    """The key a finished part carries: its spec's :func:`spec_key` and the checkpoint's
    fingerprint (a retrained checkpoint's parts are redone)."""
    return f"{spec_key(spec, max_new_tokens, seed)}-{model_key}"


def part_done(path: Path, key: str) -> bool:
    """A part counts as finished if it is a readable SAMPLES file made with the same spec."""
    if not path.exists():
        return False
    try:
        meta = artifacts.read_metadata(path)
        artifacts.read_parquet(path, artifacts.SAMPLES)
    except ArtifactError:
        return False  # corrupt or truncated: redo it
    return meta.get("spec_key") == key


def evaluate(
    cfg: Config,
    *,
    run_id: str,
    checkpoints: Sequence[tuple[int, Path]],
    out: Path,
    prompts_path: Path | None = None,
    benchmarks: Sequence[str] | None = None,
    grader: Any | None = None,
    progress: bool = True,
    run_json: dict[str, Any] | None = None,
    on_progress: Callable[..., None] | None = None,
) -> Path:
    """Evaluate ``checkpoints`` [(step, model folder)] on the config's benchmarks into ``out``.

    ``out`` is the samples.parquet path; its folder holds the resumable parts.
    ``on_progress(done, total, benchmark=, step=, part=, parts=)`` is called as problems are
    graded (asymcli.progress.EvalProgress writes it where `asym run-grid` shows it).
    """
    from .benchmarks import load_benchmark
    from ..sampling.models import encode_prompts, load_policy, pick_device

    info = run_info(run_id, run_json)
    specs = list(cfg.eval.benchmarks)
    if benchmarks:
        known = {s.name for s in specs}
        unknown = [b for b in benchmarks if b not in known]
        if unknown:
            raise ConfigError(f"benchmark(s) {unknown} are not in the config's eval.benchmarks ({sorted(known)})")
        specs = [s for s in specs if s.name in benchmarks]
    out = Path(out)
    out_dir = out.parent
    tables = {s.name: load_benchmark(s, prompts_path=str(prompts_path) if prompts_path else None) for s in specs}
    grader = make_grader(cfg.grading) if grader is None else grader
    default_max_new = cfg.train.max_new_tokens
    parts: list[Path] = []
    plan = []  # (step, folder, the parts still to sample), each part's key computed once
    for step, folder in checkpoints:
        todo = []
        model_key = checkpoint_fingerprint(folder)
        for spec in specs:
            max_new = spec.max_new_tokens or default_max_new
            key = part_key(spec, max_new, cfg.eval.seed, model_key)
            path = part_path(out_dir, step, spec.name)
            parts.append(path)
            if not part_done(path, key):
                todo.append((spec, max_new, key, path))
        if todo:
            plan.append((step, folder, todo))
    n_todo = sum(len(todo) for _, _, todo in plan) if on_progress else 0
    n_started = 0
    for step, folder, todo in plan:
        device = pick_device(cfg.train.device)
        verify_checkpoint(folder)
        model, tok = load_policy(str(folder), cfg.model, device=str(device))
        model.eval()
        engine = _eval_engine(cfg, model, tok, folder, device)
        try:
            for spec, max_new, key, path in todo:
                rows = tables[spec.name].to_pylist()
                ids = encode_prompts(tok, [r["prompt"] for r in rows], cfg.model)
                n_started += 1
                report = None
                if on_progress is not None:
                    report = functools.partial(on_progress, benchmark=spec.name, step=step,
                                               part=n_started, parts=n_todo)
                samples = _sample_benchmark(engine, tok, grader, rows, ids, spec, max_new, cfg.eval,
                                            info, step, progress, report)
                artifacts.write_parquet(path, samples, artifacts.SAMPLES,
                                        artifacts.provenance(config_to_dict(spec), spec_key=key, run_id=run_id,
                                                             step=step, benchmark=spec.name))
                faults.maybe_fail("eval-part", step)
        finally:
            engine.close()
            del model
    return combine_parts(parts, out, config_to_dict(cfg.eval), {"run_id": run_id})


def _eval_engine(cfg: Config, model: Any, tok: Any, folder: Path, device: Any) -> Any:
    """The engine that samples a checkpoint: ``train.engine``, but HF for vLLM on the CPU."""
    from ..sampling.models import resolve_dtype

    name = "hf" if cfg.train.engine == "vllm" and device.type == "cpu" else cfg.train.engine
    return make_engine(name, model, tok, **engine_kwargs(
        name, cfg.train, model_path=str(folder), dtype=resolve_dtype(cfg.model.dtype, device),
        batch_size=cfg.eval.batch_size, static_dtype=False))


def _sample_benchmark(engine: Any, tok: Any, grader: Any, rows: list[dict[str, Any]], ids: list[list[int]],
                      spec: BenchmarkSpec, max_new: int, ecfg: Any, info: RunInfo, step: int,
                      progress: bool, report: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    import torch

    out: list[dict[str, Any]] = []
    chunk = max(1, ecfg.batch_size // spec.k)
    bar = ProgressBar(f"{info.run_id} step {step} {spec.name}", len(rows), enabled=progress)
    if report is not None:
        report(0, len(rows))
    with bar:
        for c0 in range(0, len(rows), chunk):
            sub_rows, sub_ids = rows[c0 : c0 + chunk], ids[c0 : c0 + chunk]
            params = SamplingParams(temperature=spec.temperature, top_p=spec.top_p, max_new_tokens=max_new,
                                    n=spec.k, seed=int(ecfg.seed) + c0)
            with torch.no_grad():
                rolls = engine.generate(sub_ids, params)
            texts, verdicts = decode_and_grade(tok, grader, rolls, sub_rows)
            for r, text, v in zip(rolls, texts, verdicts):
                row = sub_rows[r.prompt_index]
                out.append({
                    "run_id": info.run_id, "method": info.method, "beta_pos": info.beta_pos,
                    "beta_neg": info.beta_neg, "seed": info.seed, "step": step, "benchmark": spec.name,
                    "problem_id": row["problem_id"], "difficulty": row.get("difficulty") or "",
                    "sample_idx": r.sample_index, "temperature": spec.temperature, "response": text,
                    "extracted": v.extracted, "verdict": v.reason, "correct": bool(v.correct),
                    "n_tokens": len(r.token_ids), "finish_reason": r.finish_reason,
                })
            bar.advance(len(sub_rows))
            if report is not None:
                report(min(c0 + chunk, len(rows)), len(rows))
    return out


def curve_sets(cfg: Config, *, prompts_path: Path | None = None) -> list[CurveSet]:
    """The config's eval benchmarks as greedy-curve sets, each cut to its ``curve_limit``
    (evenly spaced problems, so a subset of a benchmark sorted by level spans its levels).

    The prep stage marks every row of a benchmark-based task ``train``, so these, not a
    held-out split, are what the trainer's ``eval_every`` evaluates for such a config.
    """
    from .benchmarks import load_benchmark

    out = []
    for spec in cfg.eval.benchmarks:
        rows = load_benchmark(spec, prompts_path=str(prompts_path) if prompts_path else None).to_pylist()
        if spec.curve_limit is not None:
            rows = spread_rows(rows, spec.curve_limit)
        out.append(CurveSet(spec.name, rows, spec.max_new_tokens or cfg.train.max_new_tokens))
    return out


def combine_parts(parts: Sequence[Path], out: Path, config: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Concatenate finished parts into ``out`` (atomic), footer: eval config + run metadata."""
    tables = [artifacts.read_parquet(p, artifacts.SAMPLES) for p in parts]
    table = pa.concat_tables(tables) if tables else artifacts.to_table([], artifacts.SAMPLES)
    artifacts.write_parquet(out, table, artifacts.SAMPLES, artifacts.provenance(config, **meta))
    return out
