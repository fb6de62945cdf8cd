"""Stage `eval`: a run's checkpoints (or the base model) -> evals/{run_id}/samples.parquet.

Evaluates the base model as run "base" at step 0, and every selected checkpoint of a run
(eval.steps: final | all, or --steps). Finished (checkpoint, benchmark) pairs are kept
across interruptions.

Eval bundles (``resources.eval_bundle``, ``asym eval --runs a,b,...``, :func:`run_bundle`):
several runs evaluated in one process, one run after another, each exactly as ``asym eval
--run`` evaluates it alone (its own engine, grader, benchmark tables and progress note, the
same threads), into its own evals/{run}/, so a run's samples and parts are bit-identical
alone or in a bundle (tests/stages/test_stage_evaluate.py). What the bundle saves is the
per-job fixed cost, paid once for K runs: the process start and the imports (torch,
transformers, math-verify). The decoding is not stacked across runs as training bundles
stack rollouts: the evaluation samples through ``train.engine``'s own engine, whose numerics
(attention blocks, prompt widths per chunk) differ from the stacked decoder's, so a stacked
eval would change every run's samples, alone included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from asymcli.config import Config, parse_run_id
from asymcli.errors import ArtifactError, ConfigError
from asymcli.evaluation.evaluate import evaluate, select_steps
from asymcli.pipeline.layout import Layout
from asymcli.progress import PROGRESS_FILE, EvalProgress
from asymcli.artifacts import CHECKPOINTS_DIR, RUN_JSON, list_checkpoints


def run(cfg: Config, *, run_dir: Path | None = None, model: Path | None = None, run_id: str | None = None,
        prompts: Path | None = None, out: Path | None = None, benchmarks: Sequence[str] | None = None,
        steps: str | Sequence[int] | None = None, progress: bool = True) -> Path:
    layout = Layout.of(cfg)
    prompts = Path(prompts) if prompts else layout.prompts
    if (run_dir is None) == (model is None):
        raise ConfigError("give exactly one of --run (a run folder) or --model (a model folder, e.g. the base model)")
    if model is not None:
        model = Path(model)
        if not (model / "config.json").exists():
            raise ArtifactError(f"{model}: not a model folder (no config.json)")
        rid = run_id or "base"
        ckpts = [(0, model)]
        run_json = None
    else:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise ArtifactError(f"{run_dir}: run folder does not exist")
        rid = run_id or run_dir.name
        available = dict(list_checkpoints(run_dir / CHECKPOINTS_DIR))
        if not available:
            raise ArtifactError(f"{run_dir}: no complete checkpoint under {run_dir / CHECKPOINTS_DIR}")
        chosen = select_steps(list(available), steps if steps is not None else cfg.eval.steps)
        ckpts = [(s, available[s]) for s in chosen]
        rj = run_dir / RUN_JSON
        try:
            run_json = json.loads(rj.read_text(encoding="utf-8")) if rj.exists() else None
        except (ValueError, OSError) as exc:
            raise ArtifactError(f"{rj}: unreadable run description ({exc}); rerun `asym train` for this run") from None
    out = Path(out) if out else layout.samples(rid)
    if cfg.numerics.portable:
        # a reduction split over more threads sums in another order: pin the count, as training
        # does with train.threads (else torch takes every core of the machine)
        import torch

        torch.set_num_threads(max(1, cfg.resources.eval_threads))
    note = EvalProgress(out.parent / PROGRESS_FILE, rid)  # for `asym run-grid`
    path = evaluate(cfg, run_id=rid, checkpoints=ckpts, out=out, prompts_path=prompts,
                    benchmarks=benchmarks, progress=progress, run_json=run_json, on_progress=note)
    note.finish()
    return path


def run_bundle(cfg: Config, run_ids: Sequence[str], *, prompts: Path | None = None,
               benchmarks: Sequence[str] | None = None, steps: str | Sequence[int] | None = None,
               progress: bool = True) -> list[Path]:
    """Evaluate the runs ``run_ids`` (folders under the config's runs/) one after another in
    this process, each into its own evals/{run}/samples.parquet as :func:`run` writes it
    alone; returns those paths. Every run folder must exist before any run is evaluated."""
    if not run_ids:
        raise ConfigError("--runs is empty: give comma-separated run ids, e.g. grpo_s0,reinforce_s0")
    if len(set(run_ids)) != len(run_ids):
        raise ConfigError(f"--runs names a run twice: {', '.join(run_ids)}")
    layout = Layout.of(cfg)
    for rid in run_ids:
        parse_run_id(rid)  # a ConfigError naming the bad id (the base model is evaluated with --model)
        if not layout.run_dir(rid).is_dir():
            raise ArtifactError(f"{layout.run_dir(rid)}: run folder does not exist (run {rid} is not trained)")
    out = []
    for rid in run_ids:
        out.append(run(cfg, run_dir=layout.run_dir(rid), prompts=prompts, benchmarks=benchmarks, steps=steps,
                       progress=progress))
        _release_memory()
    return out


def _release_memory() -> None:
    """Give back what the last run's models and engines held, so that the next run starts
    from the memory a process of its own would see (the static engine sizes its KV cache
    from the free GPU memory)."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
