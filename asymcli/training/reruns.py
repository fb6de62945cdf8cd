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

- Damaged artifacts (:func:`damaged_artifacts`): a ``metrics.parquet``, ``samples.parquet``
  or aggregate whose Parquet footer or schema does not read, or a checkpoint whose files no
  longer match its COMPLETE marker. ``asym status`` names each one and what the next
  run-grid does; ``asym run-grid`` moves it into a ``damaged/`` folder beside it (with a
  REASON.txt, :func:`set_aside`) before Snakemake starts and names it to Snakemake as a
  target, so that Snakemake reruns the job that makes it (and, by modification time, what
  is built from it). A metrics.parquet is rebuilt from the
  last checkpoint's trainer state (the train job resumes there), a samples.parquet is
  re-evaluated from its kept parts, an aggregate is re-aggregated.

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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import artifacts
from ..config import Config, config_to_dict, parse_run_id, resolve_run, run_description

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
    ckpts = artifacts.list_checkpoints(Path(run_dir) / "checkpoints")
    if ckpts and ckpts[-1][0] > steps:
        return f"train.steps is {steps} but the run is already at step {ckpts[-1][0]} (its last checkpoint)"
    return None


def run_staleness(cfg: Config, rid: str, run_dir: Path) -> Staleness | None:
    """Why the next ``asym run-grid`` retrains or continues ``rid``; None if it does not.

    Reads the run.json the trainer wrote when it last started and the checkpoint folder
    names (never torch)."""
    try:
        saved = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
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
    metrics = run_dir / "metrics.parquet"
    if not metrics.exists() and last_checkpoint is not None:
        rows, config = _checkpoint_metrics(last_checkpoint)
        if rows:
            artifacts.write_parquet(staging / "metrics.parquet", rows, artifacts.METRICS,
                                    artifacts.provenance(config or {}, run_id=run_dir.name))
    for name in ("checkpoints", "run.json", "metrics.parquet"):
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


# ---------------------------------------------------------------------------
# Damaged artifacts: named by `asym status`, set aside and rebuilt by `asym run-grid`
# ---------------------------------------------------------------------------

DAMAGED = "damaged"


@dataclass
class Damage:
    """One damaged artifact, what the next run-grid does about it and where it keeps it."""

    path: Path  # the damaged file or checkpoint folder
    why: str  # one line naming the file and what is wrong
    then: str  # what rebuilds it once it is moved aside, e.g. "the run is re-evaluated ..."
    aside: Path  # the folder run-grid moves it into (``damaged/`` beside it)
    run_id: str | None = None
    kind: str = ""  # metrics | samples | checkpoint | aggregate | input
    also: list[Path] = field(default_factory=list)  # set aside with it (see run_damage)

    @property
    def blocking(self) -> bool:
        """An input of every run (prompts, base stage): run-grid stops instead."""
        return self.kind == "input"

    def describe(self) -> str:
        """One line for `asym status`: what is wrong and what the next run-grid does."""
        if self.blocking:
            return f"{self.why}; the next run-grid stops: {self.then}"
        return f"{self.why}; the next run-grid moves it to {self.aside}/, then {self.then}"


def run_damage(run_dir: Path, eval_dir: Path, rid: str, steps: int | None = None,
               hashes: bool = True) -> list[Damage]:
    """The damaged artifacts of one run (checkpoints, metrics.parquet, samples.parquet).

    ``hashes`` False checks checkpoint file sizes only (what `asym status` does: no
    hashing); True also their sha256 (what the trainer checks before resuming)."""
    run_dir, eval_dir = Path(run_dir), Path(eval_dir)
    aside = run_dir / DAMAGED
    out: list[Damage] = []
    ckpts = artifacts.list_checkpoints(run_dir / "checkpoints")
    bad = {s: why for s, p in ckpts if (why := artifacts.checkpoint_damage(p, hashes=hashes))}
    intact = [s for s, _ in ckpts if s not in bad]
    latest_bad = bool(ckpts) and ckpts[-1][0] in bad
    resume = f"resumes from its checkpoint step {intact[-1]}" if intact else "trains from scratch"
    metrics = run_dir / "metrics.parquet"
    metrics_why = artifacts.parquet_damage(metrics, artifacts.METRICS)
    for s, p in ckpts:
        if s not in bad:
            continue
        if s == ckpts[-1][0]:
            also = [metrics] if metrics.exists() and not metrics_why else []
            what = (f"the run {resume} to write it again"
                    + (" (its metrics.parquet is moved with it, so that the train job reruns)" if also else ""))
            out.append(Damage(p, bad[s], what, aside, rid, "checkpoint", also))
        else:
            out.append(Damage(p, bad[s], f"the run goes on from its checkpoint step {ckpts[-1][0]} "
                              "(this step is not written again)", aside, rid, "checkpoint"))
    if metrics_why:
        if intact and not latest_bad:
            last = intact[-1]
            what = (f"the train job rebuilds it from checkpoint step {last}, which holds every "
                    "metrics row up to it" + (f", and trains on to step {steps}" if steps and last < steps else ""))
        else:
            what = f"the run retrains: it {resume}"
        out.append(Damage(metrics, metrics_why, what, aside, rid, "metrics"))
    samples = eval_dir / "samples.parquet"
    why = artifacts.parquet_damage(samples, artifacts.SAMPLES)
    if why:
        out.append(Damage(samples, why, "the run is evaluated again (finished parts under "
                          f"{eval_dir / 'parts'} are reused)", eval_dir / DAMAGED, rid, "samples"))
    return out


def shared_damage(root: Path, agg_names: list[str]) -> list[Damage]:
    """Damaged inputs of every run (prompts, the base stage's Parquet files) and aggregates."""
    root = Path(root)
    out = []
    stop = ("it is an input of every run, and rebuilding it retrains them all; "
            "move it away and rerun run-grid to do that")
    for path, schema in ((root / "data" / "prompts.parquet", artifacts.PROMPTS),
                         (root / "base" / "base_stats.parquet", artifacts.BASE_STATS),
                         (root / "base" / "sft_metrics.parquet", None)):
        why = artifacts.parquet_damage(path, schema)
        if why:
            out.append(Damage(path, why, stop, path.parent / DAMAGED, None, "input"))
    for name in agg_names:
        path = root / "agg" / f"{name}.parquet"
        why = artifacts.parquet_damage(path)
        if why:
            out.append(Damage(path, why, "it is aggregated again (by a run-grid whose target uses it)",
                              path.parent / DAMAGED,
                              None, "aggregate"))
    return out


def set_aside(d: Damage) -> Path:
    """Move a damaged artifact (and ``d.also``) into ``d.aside`` and append why to its
    REASON.txt; returns where the artifact now is. One copy per name is kept: a later
    damage of the same file replaces it."""
    d.aside.mkdir(parents=True, exist_ok=True)
    dest = d.aside / d.path.name
    for src in (d.path, *d.also):
        if not src.exists():
            continue
        target = d.aside / src.name
        if target.exists():
            # Renamed first, as checkpoint retention does: a kill leaves no half folder under the name.
            doomed = d.aside / f".tmp_{src.name}.deleted"
            _remove(doomed)  # left by a killed set-aside
            os.replace(target, doomed)
            _remove(doomed)
        os.replace(src, target)
    reason = d.aside / "REASON.txt"
    old = reason.read_text(encoding="utf-8") if reason.exists() else ""
    moved = ", ".join(p.name for p in (d.path, *d.also))
    artifacts.write_text(reason, old + f"{time.strftime('%Y-%m-%d %H:%M:%S')} `asym run-grid` set aside "
                         f"{moved}: damaged\n  {d.why}\n  then {d.then}\n")
    return dest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
