"""Reruns after a config edit: which runs are stale, and starting a changed run afresh.

Why it exists: Snakemake reruns a train job when its config slice changes (the rule's
``fingerprint`` param), but the trainer refuses to resume checkpoints made with another
config, so that a changed config never continues an old run under the new name. The two
meet here:

- ``asym train --fresh-on-change`` (what the Snakemake rule runs) moves the old run aside
  to ``runs/{run_id}/previous/`` and trains from scratch (:func:`move_aside`). One
  generation is kept: a later change replaces ``previous/``. It holds the old
  checkpoints, run.json and metrics.parquet; Snakemake deletes a job's output before
  rerunning it, so that metrics.parquet is rebuilt from the last checkpoint's state,
  and a failed rerun never loses the previous metrics. ``asym train`` typed by hand
  (without the flag) still refuses, naming the changed settings.
- ``asym status`` names each stale run and why (:func:`run_staleness`), without torch.

- Damaged artifacts (a file that does not read, a checkpoint that does not match its
  marker) are the pipeline's: asymcli/pipeline/damage.py.

What counts as a change is the trainer's rule: any run/model/task setting other than
``RESUME_FREE_KEYS`` (how long and where a run executes). A longer ``train.steps`` is
not a change: the run continues from its last checkpoint. A shorter one is, once the run is
past it (:func:`past_end`): it retrains rather than report the longer run as the shorter.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import artifacts
from ..config import OMITTED_AT_DEFAULT, Config, config_to_dict, parse_run_id, resolve_run, run_description

#: Run settings that may differ between a checkpoint and the run resuming from it: they
#: decide how and how long the run executes, not what it computes. Any other difference
#: (lr, betas, model shape, task, ...) makes the trainer refuse to resume, so that a changed
#: config never continues, or silently reuses, a run trained with the old one. Defined here
#: (torch-free) so that `asym status` can use it; the trainer imports it.
RESUME_FREE_KEYS = frozenset({
    "steps", "keep_last", "keep_steps", "checkpoint_every", "eval_every", "eval_prompts", "threads",
    "device", "engine", "micro_batch_seqs", "gradient_checkpointing", "vllm_gpu_memory_utilization", "deepspeed",
    "loggers",
})

PREVIOUS = "previous"
#: How the config sections of a run description read in messages (the run section is
#: the resolved train section: train.* plus the method's preset and methods.* overrides).
SECTION_NAMES = {"run": "train", "model": "model", "task": "task", "grading": "grading"}


def config_changes(saved: dict[str, Any] | None, now: dict[str, Any],
                   free_keys: frozenset[str] = RESUME_FREE_KEYS) -> list[str]:
    """``["train.lr 5e-05 -> 0.0001", ...]``: the settings that differ between two run
    descriptions (Trainer.config_dict: sections run, model, task); [] if none or unknown.
    A setting missing from ``saved`` (added to asym after that run was made) that ``now``
    holds at its default is no change."""
    if not saved:
        return []
    from ..config import GradingConfig, ModelConfig, TaskConfig, TrainConfig

    defaults = {"run": config_to_dict(TrainConfig()), "model": config_to_dict(ModelConfig()),
                "task": config_to_dict(TaskConfig()), "grading": config_to_dict(GradingConfig())}
    diffs = []
    for section in SECTION_NAMES:
        if section == "grading":  # absent = the default section (see config.run_description)
            a = dict(defaults["grading"], **(saved.get("grading") or {}))
            b = dict(defaults["grading"], **(now.get("grading") or {}))
            diffs += [f"grading.{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            continue
        a, b = saved.get(section) or {}, now.get(section) or {}
        if section == "run":  # keys a description leaves out at their default (config.OMITTED_AT_DEFAULT)
            absent = {k: defaults["run"][k] for k in OMITTED_AT_DEFAULT}
            a, b = {**absent, **a}, {**absent, **b}
        for key in sorted(set(a) | set(b)):
            if section == "run" and key in free_keys:
                continue
            if key not in a and key in defaults[section] and b.get(key) == defaults[section][key]:
                continue
            x, y = a.get(key), b.get(key)
            if x != y and not (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)):
                diffs.append(f"{SECTION_NAMES[section]}.{key} {x!r} -> {y!r}")
    return diffs


def expected_run_config(cfg: Config, rid: str) -> dict[str, Any]:
    """The run description (as Trainer.config_dict, sections run/model/task) ``cfg`` gives ``rid``."""
    method, bp, bn, seed = parse_run_id(rid)
    return run_description(cfg, resolve_run(cfg, method, bp, bn, seed))


@dataclass
class Staleness:
    run_id: str
    retrain: bool  # True: trains from scratch (old run moved aside); False: continues
    reasons: list[str]

    def describe(self) -> str:
        what = "retrains from scratch" if self.retrain else "continues"
        shown = "; ".join(self.reasons[:3]) + ("; ..." if len(self.reasons) > 3 else "")
        return f"{what}: {shown}"


def past_end(run_dir: Path, steps: int) -> str | None:
    """Why a run cannot resume at ``train.steps`` = ``steps``: its last checkpoint is already
    past that step (a shorter run was asked for). Resuming would hand back the longer run
    under the shorter run's config; None when it is not past."""
    ckpts = artifacts.list_checkpoints(Path(run_dir) / artifacts.CHECKPOINTS_DIR)
    if ckpts and ckpts[-1][0] > steps:
        return f"train.steps is {steps} but the run is already at step {ckpts[-1][0]} (its last checkpoint)"
    return None


def run_staleness(cfg: Config, rid: str, run_dir: Path) -> Staleness | None:
    """Why the next ``asym run-grid`` retrains or continues ``rid``; None if it does not.

    Reads the run.json the trainer wrote when it last started and the checkpoint folder
    names (never torch)."""
    try:
        saved = json.loads((run_dir / artifacts.RUN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    now = expected_run_config(cfg, rid)
    diffs = config_changes(saved, now)
    past = past_end(run_dir, now["run"]["steps"])
    if diffs or past:
        return Staleness(rid, True, diffs + ([past] if past else []))
    old, new = (saved.get("run") or {}).get("steps"), now["run"]["steps"]
    if isinstance(old, int) and new > old:
        return Staleness(rid, False, [f"train.steps {old} -> {new}"])
    return None


def move_aside(run_dir: Path, reasons: list[str], last_checkpoint: Path | None) -> Path:
    """Move a run's checkpoints, run.json and metrics.parquet to ``run_dir/previous/``
    (replacing an older ``previous/``); returns that folder.

    When metrics.parquet is gone (Snakemake deletes a job's output before rerunning it),
    it is rebuilt there from ``last_checkpoint``'s trainer state, which holds every
    metrics row up to that step."""

    run_dir = Path(run_dir)
    prev = run_dir / PREVIOUS
    staging = run_dir / f".tmp_{PREVIOUS}"
    for stale in (staging, run_dir / f".tmp_{PREVIOUS}.deleted"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed move
    staging.mkdir(parents=True)
    metrics = run_dir / artifacts.METRICS_FILE
    if not metrics.exists() and last_checkpoint is not None:
        rows, config = _checkpoint_metrics(last_checkpoint)
        if rows:
            artifacts.write_parquet(staging / artifacts.METRICS_FILE, rows, artifacts.METRICS,
                                    artifacts.provenance(config or {}, run_id=run_dir.name))
    for name in (artifacts.CHECKPOINTS_DIR, artifacts.RUN_JSON, artifacts.METRICS_FILE):
        if (run_dir / name).exists() and not (staging / name).exists():
            os.replace(run_dir / name, staging / name)
    artifacts.write_text(staging / "REASON.txt",
                         "Moved aside by `asym train --fresh-on-change`: the config changed\n"
                         + "".join(f"  {r}\n" for r in reasons))
    if prev.exists():
        # Renamed first, as checkpoint retention does: a kill leaves no half folder under the name.
        doomed = run_dir / f".tmp_{PREVIOUS}.deleted"
        os.replace(prev, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    os.replace(staging, prev)
    return prev


def _checkpoint_metrics(ckpt: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    import torch

    try:
        state = torch.load(Path(ckpt) / artifacts.STATE_FILE, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - a corrupt old checkpoint: move it aside without metrics
        return [], None
    return list(state.get("metrics_rows") or []), state.get("config")


def saved_checkpoint_config(ckpt: Path) -> dict[str, Any] | None:
    """The run description a checkpoint was made with (its trainer state), or None."""
    return _checkpoint_metrics(ckpt)[1]
