"""Bundles: K runs trained in lockstep in one process, sampling through one stacked decoder.

On the CPU with the ``static`` engine every run is trained through a :class:`Bundle`; a run
alone is a bundle of one. Each step the bundle samples every run's rollouts in one stacked
generate call (:mod:`asymcli.engines.stacked`) and evaluates the greedy curve the same way;
the rest of the step is each run's own :class:`Trainer`: data order and sampling seeds,
rewards, old log-probs, advantages (and beta schedule), the PPO update with its AdamW state
and clipping, checkpoints, ``run.json`` and ``metrics.parquet``, in the layout of a run
trained alone. So the DAG, ``asym status``, resume, reruns and ``asym claims`` see runs.

Why only the decoding is stacked (measured, docs/benchmarks.md): a decode step of one run is
a few hundred rows through a model of hidden size 64, mostly per-op overhead, so K runs'
steps cost little more than one; the training forward and backward over a whole batch are
bound by compute and memory, and stacking them made each run slower, not faster. What a
bundle saves besides: one process start, import, grader and prompt encoding for K runs.

A run's numbers do not depend on its bundle (tests/training/test_bundle.py): see
:mod:`asymcli.engines.stacked` for why; the prompt width it decodes at is canonical (the
longest prompt of the training split). Runs may join at different steps (a resumed run next
to a fresh one) and have different lengths: each step trains the runs that are at it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .. import faults
from ..config import TrainConfig
from ..engines import qwen_forward as qf
from ..engines import stacked as sk
from ..engines.base import SamplingParams
from ..engines.static import default_eos_ids
from ..errors import ConfigError
from ..progress import ProgressBar
from . import distributed as dist
from ..sampling.models import pick_device, resolve_dtype
from .trainer import Trainer

# What runs of one bundle must share: every tensor shape and the sampling distribution.
# (The method, betas, seed, lr, clipping, entropy bonus, ... may differ.)
SHAPE_KEYS = ("prompts_per_step", "mini_batch_prompts", "epochs", "micro_batch_seqs", "group_size",
              "max_new_tokens", "temperature", "top_p", "eval_prompts", "rollout_shards", "threads")


def stacked_reason(run: TrainConfig, model_dtype: str = "auto") -> str | None:
    """Why ``run`` cannot train through the stacked (bundled) path, or None when it can.

    The stacked path is the CPU path of ``train.engine: static``: fp32, one process, no
    reference model (``kl_coef`` 0), no DeepSpeed, one rollout chunk per step.
    """
    if run.engine != "static":
        return f"train.engine is '{run.engine}' (bundles need 'static')"
    device = pick_device(run.device)
    if device.type != "cpu":
        return f"the device is {device.type} (bundles run on the CPU)"
    if resolve_dtype(model_dtype, device) != torch.float32:
        return f"model.dtype is {model_dtype} (bundles compute in float32)"
    if dist.launched_distributed() or run.deepspeed.stage > 0:
        return "the run is data-parallel or uses DeepSpeed"
    if run.kl_coef > 0:
        return "train.kl_coef > 0 needs a reference model"
    if run.rollout_shards > 1:
        return "train.rollout_shards > 1"
    if run.gradient_checkpointing:
        return "train.gradient_checkpointing is on"
    return None


def shape_key(run: TrainConfig) -> tuple[Any, ...]:
    """Runs with equal keys (and the same base model) may share a bundle."""
    return tuple(getattr(run, k) for k in SHAPE_KEYS)


class Bundle:
    """Trains ``trainers`` (each built with ``stacked=True``) together; see the module doc."""

    def __init__(self, trainers: Sequence[Trainer], *, progress: bool = False):
        if not trainers:
            raise ConfigError("a bundle needs at least one run")
        self.trainers = list(trainers)
        first = self.trainers[0]
        for t in self.trainers:
            if not t.stacked:
                raise ConfigError(f"{t.out_dir.name}: built without stacked=True; it cannot join a bundle")
            if shape_key(t.train_cfg) != shape_key(first.train_cfg) or t.model_path != first.model_path:
                diff = [k for k in SHAPE_KEYS if getattr(t.train_cfg, k) != getattr(first.train_cfg, k)]
                raise ConfigError(f"{t.out_dir.name} cannot share a bundle with {first.out_dir.name}: "
                                  + (f"different train.{', '.join(diff)}" if diff else
                                     f"different base model ({t.model_path} vs {first.model_path})"))
            reason = qf.unsupported_reason(t.model)
            if reason is not None:
                raise ConfigError(f"{t.out_dir.name}: bundles run Qwen2/Qwen3 causal LMs only: {reason}")
        if first.train_cfg.threads:
            torch.set_num_threads(first.train_cfg.threads)
        self.progress = progress
        self.geo = qf.geometry(first.model)
        self.eos_ids = default_eos_ids(first.model, first.tokenizer)
        self.pad_id = first.pad_id
        # Canonical widths: functions of the data and config only, never of the bundle.
        all_ids = first.train_prompt_ids.take(range(len(first.train_prompt_ids)))
        self.prompt_width = max(len(p) for p in all_ids)
        self.seq_width = self.prompt_width + first.train_cfg.max_new_tokens
        self.curve_widths = [max((len(p) for p in ids), default=1) for ids in first.curve_prompt_ids]
        cos, sin = qf.rope_table(first.model, self.seq_width, torch.float32, torch.device("cpu"))
        self.cos, self.sin = cos[None], sin[None]

    # ------------------------------------------------------------------ loop

    def train(self) -> list[Path]:
        """Train every run to its ``train.steps``; returns their metrics.parquet paths."""
        ts = self.trainers
        zero = [t for t in ts if t.begin()]
        if zero:
            self._evaluate(0, zero, {id(t): t._eval_row(0) for t in zero}, append=True)
        first = min(t.start_step for t in ts)
        last = max(t.train_cfg.steps for t in ts)
        name = ts[0].out_dir.name if len(ts) == 1 else f"bundle of {len(ts)} runs"
        bar = ProgressBar(name, last, done=first - 1, enabled=self.progress and dist.is_main(), info=False)
        with bar:
            for step in range(first, last + 1):
                active = [t for t in ts if t.start_step <= step <= t.train_cfg.steps]
                if active:
                    rows = self.train_step(step, active)
                    for t in active:
                        t.end_step(step, rows[id(t)])
                bar.update(step, "")
        return [t.finish() for t in ts]

    def train_step(self, step: int, ts: list[Trainer]) -> dict[int, dict[str, Any]]:
        """One RL step of runs ``ts`` (all at step ``step``): their metrics rows, by id(trainer)."""
        t_start = time.perf_counter()
        for t in ts:
            t._check_weights(step)
        data = [t.step_prompts(step) for t in ts]
        outs = sk.generate_stacked([t.model.eval() for t in ts], [p for _, p in data],
                                   [t.sampling(step) for t in ts], self.prompt_width,
                                   eos_ids=self.eos_ids, pad_id=self.pad_id)
        faults.maybe_fail("rollout", step)
        collected = [t.collect(prompt_idx, prompts, o) for t, (prompt_idx, prompts), o in zip(ts, data, outs)]
        rollout_s = (time.perf_counter() - t_start) / len(ts)
        rows: dict[int, dict[str, Any]] = {}
        # The rest is each run's own: at these sizes the forward and backward are bound by
        # compute and memory, not by per-op overhead, so stacking them gains nothing
        # (docs/benchmarks.md), and each run keeps its own length-bucketed shapes.
        for t, (prompt_idx, _), o, (rw, gid, batch) in zip(ts, data, outs, collected):
            t0 = time.perf_counter()
            old_logp, old_ent = t.old_logprobs(batch)
            sb = t.step_batch(step, prompt_idx, o, rw, gid, batch, old_logp, old_ent, None)
            rollout_s_k = rollout_s + time.perf_counter() - t0
            t1 = time.perf_counter()
            upd = t.update(step, sb)
            new_logp = t.logprobs_after_update(sb, step)
            rows[id(t)] = t.step_row(step, sb, upd, new_logp, rollout_s_k, time.perf_counter() - t1, t_start)
        due = [t for t in ts if t.eval_due(step)]
        if due:
            self._evaluate(step, due, rows)
        return rows

    # ------------------------------------------------------------------ eval

    def _evaluate(self, step: int, ts: list[Trainer], rows: dict[int, dict[str, Any]], append: bool = False) -> None:
        """Greedy test accuracy of runs ``ts`` on every curve set, one stacked decode per set."""
        t0 = time.perf_counter()
        counts: dict[int, dict[str, float]] = {id(t): {} for t in ts}
        models = [t.model.eval() for t in ts]
        for c, (cset, ids) in enumerate(zip(ts[0].curve_sets, ts[0].curve_prompt_ids)):
            params = SamplingParams(temperature=0.0, max_new_tokens=cset.max_new_tokens, n=1)
            outs = sk.generate_stacked(models, [ids] * len(ts), [params] * len(ts),
                                       self.curve_widths[c], eos_ids=self.eos_ids, pad_id=self.pad_id)
            for t, o in zip(ts, outs):
                counts[id(t)].update(t.eval_counts(cset.name, cset.rows, o))
        seconds = (time.perf_counter() - t0) / len(ts)
        for t in ts:
            row = rows[id(t)]
            t._evaluate(step, row, t.eval_result(counts[id(t)], seconds))
            if append:
                t.metrics_rows.append(row)

