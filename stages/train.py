"""Stage `train`: prompts.parquet + base model -> runs/{run_id}/metrics.parquet (+ checkpoints).

One run = one method config + seed. Resumes from the latest complete checkpoint in
``out_dir`` when there is one. The greedy test-accuracy curve (``train.eval_every``) runs on
the prompts' held-out split for the embedded task, on ``eval.benchmarks`` for a benchmark task.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from asymcli import artifacts
from asymcli.evaluation import evaluate as evaluation
from asymcli.training import reruns
from asymcli.training import distributed as dist
from asymcli.config import Config, TrainConfig, config_to_dict, parse_run_id, resolve_run, run_description, run_id
from asymcli.errors import ConfigError, DataError
from asymcli.pipeline.layout import Layout
from asymcli.sampling.curves import CurveSet
from asymcli.progress import PROGRESS_FILE, TrainProgress
from asymcli.trackers import open_trackers
from asymcli.training.reruns import RESUME_FREE_KEYS
from asymcli.artifacts import CHECKPOINTS_DIR, list_checkpoints
from asymcli.training import bundle
from asymcli.training.trainer import Trainer


def default_paths(cfg: Config) -> dict[str, Path]:
    layout = Layout.of(cfg)
    model = Path(cfg.model.path) if cfg.model.kind == "hf" and cfg.model.path else layout.base_model
    return {"prompts": layout.prompts, "model": model, "runs": layout.runs_dir}


def load_splits(prompts: Path) -> tuple[list[dict], list[dict]]:
    """(train rows, held-out rows) of a prompts artifact."""
    table = artifacts.read_parquet(prompts, artifacts.PROMPTS)
    rows = table.to_pylist()
    train = [r for r in rows if r["split"] == "train"]
    heldout = [r for r in rows if r["split"] in ("heldout", "test")]
    if not train:
        raise DataError(f"{prompts}: no rows with split == 'train' (found {len(rows)} rows)")
    return train, heldout


def run(cfg: Config, method: str, beta_pos: float | None = None, beta_neg: float | None = None,
        seed: int | None = None, *, prompts: Path | None = None, model: Path | None = None,
        out: Path | None = None, steps: int | None = None, progress: bool = True,
        fresh_on_change: bool = False) -> Path:
    """Train one run; returns the path of its metrics.parquet.

    ``fresh_on_change`` (what the Snakemake rule passes): checkpoints made with another
    config are moved to ``{run}/previous/`` and the run starts over (asymcli.training.reruns);
    without it such checkpoints make the trainer refuse, naming the changed settings.
    A run on the stacked path (asymcli/training/bundle.py) trains as a bundle of one."""
    tc = _resolve(cfg, method, beta_pos, beta_neg, seed, steps)
    stacked = bundle.stacked_reason(tc, cfg.model.dtype) is None
    # the run's id: asym's from the resolved betas (the config's when not given); an
    # asym_adaptive run's carries its own target only when it has one (methods.run_id)
    rid = run_id(method, beta_pos, None, tc.seed) if method == "asym_adaptive" else \
        run_id(tc.method, tc.beta_pos, tc.beta_neg, tc.seed)
    trainer, hooks = _build(cfg, tc, rid, prompts=prompts, model=model, out=out, progress=progress,
                            fresh_on_change=fresh_on_change, stacked=stacked)
    try:
        path = bundle.Bundle([trainer], progress=progress).train()[0] if stacked else trainer.train()
        hooks.finish()
        return path
    finally:
        hooks.close()


def run_bundle(cfg: Config, run_ids: list[str], *, prompts: Path | None = None, progress: bool = True,
               fresh_on_change: bool = False) -> list[Path]:
    """Train the runs ``run_ids`` together as one bundle (asymcli/training/bundle.py), each in
    its own run folder; returns their metrics.parquet paths. Every run must be on the stacked
    path, and the runs must share the base model and every tensor shape."""
    if len(set(run_ids)) != len(run_ids):
        raise ConfigError(f"--runs names a run twice: {', '.join(run_ids)}")
    tcs = []
    for rid in run_ids:
        tc = _resolve(cfg, *parse_run_id(rid), None)
        reason = bundle.stacked_reason(tc, cfg.model.dtype)
        if reason is not None:
            raise ConfigError(f"run {rid} cannot train in a bundle: {reason}")
        tcs.append(tc)
    built = [_build(cfg, tc, rid, prompts=prompts, progress=False, fresh_on_change=fresh_on_change, stacked=True)
             for tc, rid in zip(tcs, (run_id(*parse_run_id(r)) for r in run_ids))]
    try:
        paths = bundle.Bundle([t for t, _ in built], progress=progress).train()
        for _, hooks in built:
            hooks.finish()
        return paths
    finally:
        for _, hooks in built:
            hooks.close()


def _resolve(cfg: Config, method: str, beta_pos: float | None, beta_neg: float | None, seed: int | None,
             steps: int | None) -> TrainConfig:
    tc: TrainConfig = resolve_run(cfg, method, beta_pos, beta_neg, seed)
    if steps is not None:
        tc.steps = steps
    if cfg.eval.steps == "all":
        # Retention must not delete checkpoints the evaluation stage will still read.
        tc.keep_last = max(tc.keep_last, tc.steps)
    if cfg.report.checkpoint.isdigit():  # nor the one Table 2 reports
        tc.keep_steps = sorted(set(tc.keep_steps) | {int(cfg.report.checkpoint)})
    return tc


def _build(cfg: Config, tc: TrainConfig, rid: str, *, prompts: Path | None = None, model: Path | None = None,
           out: Path | None = None, progress: bool = True, fresh_on_change: bool = False,
           stacked: bool = False) -> tuple[Trainer, "_StepHooks"]:
    """The run's Trainer (resumed from its latest checkpoint) and its step hooks."""
    paths = default_paths(cfg)
    prompts = Path(prompts or paths["prompts"])
    if not model and cfg.grid.bases and tc.seed is not None:
        from asymcli.pipeline import model_path  # several bases: the seed's own

        model = Path(model_path(cfg, tc.seed))
    model = Path(model) if model else paths["model"]
    out = Path(out) if out else paths["runs"] / rid
    train_rows, heldout_rows = load_splits(prompts)
    if fresh_on_change:
        _move_aside_if_changed(cfg, tc, model, out)
    trainer = Trainer(cfg, tc, train_rows, heldout_rows, model, out, progress=progress,
                      curve_sets=curve_sets(cfg, tc, prompts), stacked=stacked)
    hooks = _StepHooks(cfg, trainer, rid)
    trainer.on_step = hooks.on_step
    return trainer, hooks


class _StepHooks:
    """After each step: the progress note `asym run-grid` shows (asymcli.progress), and the
    experiment trackers of train.loggers (asymcli.trackers); :meth:`finish` marks the note
    finished once the run's metrics are written. Main process only."""

    def __init__(self, cfg: Config, trainer: Trainer, rid: str):
        self.note = self.sink = None
        if not dist.is_main():
            return
        self.note = TrainProgress(trainer.out_dir / PROGRESS_FILE, rid, trainer.train_cfg.steps, trainer.start_step)
        if trainer.train_cfg.loggers:
            self.sink = open_trackers(trainer.train_cfg.loggers, Layout.of(cfg).trackers, rid,
                                      cfg.name, trainer.config_dict())

    def on_step(self, step: int, row: dict) -> None:
        if self.note is not None:
            self.note.write(step, row)
        if self.sink is not None:
            self.sink.log_row(step, row)

    def finish(self) -> None:
        if self.note is not None:
            self.note.finish()

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


def _move_aside_if_changed(cfg: Config, tc: TrainConfig, model: Path, out: Path) -> None:
    """`--fresh-on-change`: when ``out`` holds checkpoints made with another config, move
    them (and run.json, metrics) to ``out/previous/`` so the run trains from scratch."""
    ckpts = list_checkpoints(out / CHECKPOINTS_DIR)
    if not ckpts:
        return
    now = run_description(cfg, tc)
    diffs = reruns.config_changes(reruns.saved_checkpoint_config(ckpts[-1][1]), now, RESUME_FREE_KEYS)
    past = reruns.past_end(out, tc.steps)
    if past:
        diffs.append(past)
    if diffs and os.environ.get("RANK", "0") != "0":
        # Under a launcher, rank 0 moves the folder (before any process group exists);
        # the other ranks wait for it so that none of them resumes the old checkpoint.
        deadline = time.time() + 600
        while ckpts[-1][1].exists() and time.time() < deadline:
            time.sleep(0.5)
        return
    if diffs:
        prev = reruns.move_aside(out, diffs, ckpts[-1][1])
        print(f"config changed since the last checkpoint ({'; '.join(diffs[:3])}"
              f"{'; ...' if len(diffs) > 3 else ''}): moved the old run to {prev}; training from scratch",
              file=sys.stderr)


def curve_sets(cfg: Config, tc: TrainConfig, prompts: Path) -> list[CurveSet] | None:
    """What ``train.eval_every`` evaluates: for a benchmark task (whose prompts are all
    ``train``) the config's eval benchmarks at T = 0, each cut to its ``curve_limit``
    (Appendix G's test-accuracy curves); for the embedded task None, i.e. the prompts'
    held-out split."""
    if cfg.task.kind != "benchmark" or not tc.eval_every:
        return None
    return evaluation.curve_sets(cfg, prompts_path=prompts)
