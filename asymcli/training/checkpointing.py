"""Checkpoints of an RL run: save (atomic, with retention), find, verify and resume.

A mixin of :class:`asymcli.training.trainer.Trainer`, apart so that the trainer reads as an
RL step (rollout, advantages, update, log). It uses the trainer's ``train_cfg`` (TrainConfig),
``out_dir`` / ``ckpt_dir``, ``backend`` (weights and optimizer state), ``tokenizer``,
``metrics_rows``, ``schedule`` and ``config_dict()``, and keeps ``start_step`` and
``last_good_step``.

A checkpoint is written into a ``.tmp_`` folder by every rank, sealed by its COMPLETE marker
(sizes and sha256 of its files) and renamed into place by rank 0: under its step name it is
complete or absent. Resuming verifies it, refuses a different run config (all but
``RESUME_FREE_KEYS``) and restores metrics, RNG states and the beta schedule, so the resumed
run reproduces the uninterrupted one.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import artifacts, faults
from ..algorithm.schedule import ScheduleState
from ..artifacts import (CKPT_PREFIX, COMPLETE_MARKER, STATE_FILE, checkpoint_delete_hint, list_checkpoints,
                         verify_checkpoint)
from ..errors import ArtifactError, first_line
from . import distributed as dist
from .reruns import RESUME_FREE_KEYS, config_changes, past_end


class CheckpointMixin:
    """Checkpoint save / load / resume of :class:`~asymcli.training.trainer.Trainer`."""

    def resume_checkpoint(self) -> Path | None:
        """The verified checkpoint to resume from, None to start from the model folder."""
        resume = self.latest_checkpoint()
        if resume is not None:
            run = self.train_cfg
            if past_end(self.out_dir, run.steps):  # resuming would return the longer run as this one
                last = self.checkpoints()[-1][0]
                raise ArtifactError(
                    f"{resume}: the run is already at step {last}, past train.steps = {run.steps}; "
                    f"set train.steps >= {last} to keep it, or delete {self.ckpt_dir} to train "
                    f"{run.steps} steps from scratch (asym run-grid does this by itself)")
            verify_checkpoint(resume)  # a truncated or corrupted file is named, never loaded
        return resume

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, oldest first."""
        return list_checkpoints(self.ckpt_dir)

    def latest_checkpoint(self) -> Path | None:
        cks = self.checkpoints()
        return cks[-1][1] if cks else None

    def save_checkpoint(self, step: int) -> Path:
        final = self.ckpt_dir / f"{CKPT_PREFIX}{step:06d}"
        tmp = self.ckpt_dir / f".tmp_{CKPT_PREFIX}{step:06d}"
        if dist.is_main():
            for stale in self.ckpt_dir.glob(f".tmp_{CKPT_PREFIX}*"):  # left by a killed run
                shutil.rmtree(stale)
        dist.barrier()
        try:
            tmp.mkdir(parents=True, exist_ok=True)  # every rank writes its part into the same folder
            self._write_checkpoint(tmp, step)
        except (OSError, RuntimeError, ArtifactError) as exc:  # disk full, quota: torch.save raises RuntimeError
            shutil.rmtree(tmp, ignore_errors=True)
            raise ArtifactError(
                f"{tmp}: cannot write the step-{step} checkpoint ({first_line(exc)}); the last complete "
                f"checkpoint is step {self.last_good_step}: free disk space and rerun to resume from it") from None
        faults.maybe_fail("checkpoint", step)
        dist.barrier()
        if dist.is_main():
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)  # atomic: a checkpoint is either complete under its name or absent
            self._apply_retention()
        dist.barrier()
        self.last_good_step = step
        return final

    def _write_checkpoint(self, tmp: Path, step: int) -> None:
        self.backend.save_hf(tmp, self.tokenizer)  # consolidated HF folder (rank 0 writes it)
        self.backend.save_state(tmp)  # optimizer state: optimizer.pt, or DeepSpeed's shards
        dist.barrier()
        if not dist.is_main():
            return
        state = {
            "step": step,
            "metrics_rows": self.metrics_rows,
            "torch_rng": torch.random.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "config": self.config_dict(),
            "schedule": self.schedule.to_dict() if self.schedule is not None else None,
        }
        torch.save(state, tmp / STATE_FILE)
        # Sizes + sha256 of every file, checked at resume and before evaluation (verify_checkpoint).
        artifacts.write_json(tmp / COMPLETE_MARKER, {"step": step, "config_hash": artifacts.config_hash(self.config_dict()),
                                                     "files": artifacts.folder_digest(tmp), "created_ns": time.time_ns()})
        artifacts.fsync_tree(tmp)

    def _apply_retention(self) -> None:
        cks = self.checkpoints()
        keep = {s for s, _ in cks[-max(1, self.train_cfg.keep_last):]} | set(self.train_cfg.keep_steps)
        for s, p in cks:
            if s not in keep:
                # Renamed first: a kill during the delete leaves no half checkpoint under a step
                # name, only a .tmp_ folder that the next save removes.
                doomed = p.with_name(f".tmp_{p.name}.deleted")
                os.replace(p, doomed)
                shutil.rmtree(doomed, ignore_errors=True)

    def _load_state(self, ckpt: Path) -> None:
        try:
            state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt checkpoint
            raise ArtifactError(f"{ckpt / STATE_FILE}: corrupted checkpoint state ({type(exc).__name__}: "
                                f"{first_line(exc)}); {checkpoint_delete_hint(ckpt)}") from None
        _check_same_run(ckpt, state.get("config"), self.config_dict())
        self.backend.load_state(ckpt)  # every rank; also reads a legacy "optimizer" key
        self.metrics_rows = list(state["metrics_rows"])
        if self.schedule is not None and state.get("schedule"):
            self.schedule = ScheduleState.from_dict(state["schedule"])
        torch.random.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        self.start_step = int(state["step"]) + 1
        self.last_good_step = int(state["step"])


def _check_same_run(ckpt: Path, saved: dict[str, Any] | None, now: dict[str, Any]) -> None:
    diffs = config_changes(saved, now, RESUME_FREE_KEYS)
    if diffs:
        raise ArtifactError(
            f"{ckpt}: checkpoint was made with a different config ({'; '.join(diffs[:3])}"
            f"{'; ...' if len(diffs) > 3 else ''}); restore those settings to resume, or delete "
            f"{ckpt.parent} to train this config from scratch")
