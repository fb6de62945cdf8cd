"""Bundles: K runs trained in lockstep in one process, each step one stacked computation.

On the CPU with the ``static`` engine every run is trained through a :class:`Bundle`; a run
alone is a bundle of one. Each step, the bundle samples every run's rollouts in one stacked
generate call, computes the old log-probs, the PPO update's forward and backward and the
post-update log-probs in one stacked pass (:mod:`asymcli.engines.stacked`), and evaluates the
greedy curve the same way. Everything else stays the run's own :class:`Trainer`: its data
order and sampling seeds, rewards, advantages (and beta schedule), loss settings, AdamW
state, gradient clipping, checkpoints, ``run.json`` and ``metrics.parquet``, in the layout of
a run trained alone. So the DAG, ``asym status``, resume, reruns and ``asym claims`` see runs.

Why stacking: the testbed's model is tiny (hidden 64, 2 layers), so one run's step is mostly
per-op overhead; one op over K runs costs little more than over one (docs/benchmarks.md).

A run's numbers do not depend on its bundle (tests/test_bundle.py): see
:mod:`asymcli.engines.stacked` for why; the shapes a run sees are canonical (prompt width =
the longest prompt of the training split, sequence width = that + ``max_new_tokens``). Runs
may join at different steps (a resumed run next to a fresh one) and have different lengths:
each step trains the runs that are at it.
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
from ..errors import ConfigError
from ..progress import ProgressBar
from . import distributed as dist
from .diagnostics import StepBatch, UpdateStats
from .modeling import pick_device, resolve_dtype
from .policy import PackedBatch
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
            if shape_key(t.run) != shape_key(first.run) or t.model_path != first.model_path:
                diff = [k for k in SHAPE_KEYS if getattr(t.run, k) != getattr(first.run, k)]
                raise ConfigError(f"{t.out_dir.name} cannot share a bundle with {first.out_dir.name}: "
                                  + (f"different train.{', '.join(diff)}" if diff else
                                     f"different base model ({t.model_path} vs {first.model_path})"))
            reason = qf.unsupported_reason(t.model)
            if reason is not None:
                raise ConfigError(f"{t.out_dir.name}: bundles run Qwen2/Qwen3 causal LMs only: {reason}")
        if first.run.threads:
            torch.set_num_threads(first.run.threads)
        self.progress = progress
        self.geo = qf.geometry(first.model)
        tok = first.tokenizer
        self.eos_ids = _eos_ids(first.model, tok)
        self.pad_id = first.pad_id
        # Canonical widths: functions of the data and config only, never of the bundle.
        all_ids = first.train_prompt_ids.take(range(len(first.train_prompt_ids)))
        self.prompt_width = max(len(p) for p in all_ids)
        self.seq_width = self.prompt_width + first.run.max_new_tokens
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
        last = max(t.run.steps for t in ts)
        name = ts[0].out_dir.name if len(ts) == 1 else f"bundle of {len(ts)} runs"
        bar = ProgressBar(name, last, done=first - 1, enabled=self.progress and dist.is_main(), info=False)
        with bar:
            for step in range(first, last + 1):
                active = [t for t in ts if t.start_step <= step <= t.run.steps]
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
        outs = sk.generate_stacked([t.model.eval() for t in ts], ts[0].tokenizer, [p for _, p in data],
                                   [t.sampling(step) for t in ts], self.prompt_width,
                                   eos_ids=self.eos_ids, pad_id=self.pad_id)
        faults.maybe_fail("rollout", step)
        collected = [t.collect(rows, prompts, o) for t, (rows, prompts), o in zip(ts, data, outs)]
        olds = self.logprobs(ts, [c[2] for c in collected])
        sbs = [t.step_batch(step, rows, o, rw, gid, batch, lp, ent, None)
               for t, (rows, _), o, (rw, gid, batch), (lp, ent) in zip(ts, data, outs, collected, olds)]
        t_update = time.perf_counter()
        rollout_s = t_update - t_start
        upds = self.update(step, ts, sbs)
        news = self.logprobs(ts, [sb.batch for sb in sbs])
        update_s = time.perf_counter() - t_update
        # A bundle's time is shared: each run's row carries its share, so that summing the
        # timing columns over the runs gives the bundle's wall time.
        share = 1.0 / len(ts)
        rows = {id(t): t.step_row(step, sb, upd, new[0], rollout_s * share, update_s * share, t_start)
                for t, sb, upd, new in zip(ts, sbs, upds, news)}
        due = [t for t in ts if t.eval_due(step)]
        if due:
            self._evaluate(step, due, rows)
        return rows

    # ------------------------------------------------------------------ tensors

    def canonical(self, batch: PackedBatch) -> PackedBatch:
        """``batch`` padded to the canonical widths (sequence: prompt width + max_new_tokens;
        response: max_new_tokens), so that its shapes never depend on the bundle."""
        L, T = self.seq_width, self.trainers[0].run.max_new_tokens

        def pad(t: torch.Tensor, width: int, value: float = 0) -> torch.Tensor:
            return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

        return PackedBatch(pad(batch.input_ids, L, self.pad_id), pad(batch.attention_mask, L),
                           pad(batch.resp_pos, T), pad(batch.resp_ids, T, self.pad_id), pad(batch.resp_mask, T))

    def forward(self, ts: list[Trainer], batches: list[PackedBatch]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stacked log-probs and entropies of the runs' canonical batches: ``(logp, ent, mask)``,
        each ``[K, b, T]`` (zero where masked); differentiable when grad is enabled."""
        K = len(ts)
        cb = [self.canonical(b) for b in batches]
        ids = torch.cat([b.input_ids for b in cb])
        pos = torch.cat([b.resp_pos for b in cb])
        tgt = torch.cat([b.resp_ids for b in cb])
        mask = torch.stack([b.resp_mask for b in cb])
        sw = sk.stack_weights([t.model for t in ts])
        hidden = sk.stacked_hidden(sw, self.geo, ids, self.cos, self.sin)
        h = hidden[torch.arange(hidden.shape[0])[:, None], pos]  # [K*b, T, H]: response positions only
        temperature = ts[0].run.temperature or 1.0
        logp, ent = sk.stacked_head_logp(sw, h, tgt, 1.0 / temperature if temperature > 0 else 1.0)
        keep = mask.reshape(logp.shape) > 0
        zero = torch.zeros((), dtype=logp.dtype)
        shape = (K, -1, logp.shape[-1])
        return (torch.where(keep, logp, zero).reshape(shape), torch.where(keep, ent, zero).reshape(shape), mask)

    @torch.no_grad()
    def logprobs(self, ts: list[Trainer], batches: list[PackedBatch]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each run's ``(logp, entropy)`` [N, T] of its batch (T its own response width)."""
        for t in ts:
            t.model.eval()
        logp, ent, _ = self.forward(ts, batches)
        return [(logp[k, :, :b.resp_ids.shape[1]].contiguous(), ent[k, :, :b.resp_ids.shape[1]].contiguous())
                for k, b in enumerate(batches)]

    def update(self, step: int, ts: list[Trainer], sbs: list[StepBatch]) -> list[dict[str, Any]]:
        """The PPO update of every run: each mini-batch's forward and backward stacked over the
        runs, then each run's own clip + AdamW step."""
        run = ts[0].run
        lrs = []
        for t in ts:
            t.model.train()
            lrs.append(t.set_step_lr(step))
        micro = run.micro_batch_seqs or len(sbs[0].group_ids)
        stats = [UpdateStats() for _ in ts]
        for _epoch in range(run.epochs):
            for rows in ts[0].mini_batches(len(sbs[0].prompt_rows)):
                denoms = [t.agg_denom(sb, rows) for t, sb in zip(ts, sbs)]
                for t, st in zip(ts, stats):
                    t.backend.zero_grad()
                    st.start_mini_batch()
                for u0 in range(0, len(rows), micro):
                    idx = rows[u0 : u0 + micro]
                    logp, ent, mask = self.forward(ts, [sb.batch.select(idx) for sb in sbs])
                    losses = []
                    for k, (t, sb, st) in enumerate(zip(ts, sbs, stats)):
                        loss, mstats = t.micro_loss(sb, idx, logp[k], ent[k], mask[k], denoms[k])
                        t._check_finite(step, "loss", loss.detach())
                        st.add_micro_batch(loss, mstats, float(mask[k].sum()))
                        losses.append(loss)
                    # d(sum)/d(loss_k) = 1: each run's gradient is its own loss's, as alone.
                    torch.stack(losses).sum().backward()
                for t, st in zip(ts, stats):
                    st.end_mini_batch(t.optimizer_step(step))
        for t in ts:
            t._check_weights(step)  # a checkpoint of this step must never hold inf/NaN weights
        return [st.result(lr) for st, lr in zip(stats, lrs)]

    # ------------------------------------------------------------------ eval

    def _evaluate(self, step: int, ts: list[Trainer], rows: dict[int, dict[str, Any]], append: bool = False) -> None:
        """Greedy test accuracy of runs ``ts`` on every curve set, one stacked decode per set."""
        t0 = time.perf_counter()
        counts: dict[int, dict[str, float]] = {id(t): {} for t in ts}
        models = [t.model.eval() for t in ts]
        for c, (cset, ids) in enumerate(zip(ts[0].curve_sets, ts[0].curve_prompt_ids)):
            params = SamplingParams(temperature=0.0, max_new_tokens=cset.max_new_tokens, n=1)
            outs = sk.generate_stacked(models, ts[0].tokenizer, [ids] * len(ts), [params] * len(ts),
                                       self.curve_widths[c], eos_ids=self.eos_ids, pad_id=self.pad_id)
            for t, o in zip(ts, outs):
                counts[id(t)].update(t.eval_counts(cset.name, cset.rows, o))
        seconds = (time.perf_counter() - t0) / len(ts)
        for t in ts:
            row = rows[id(t)]
            t._evaluate(step, row, t.eval_result(counts[id(t)], seconds))
            if append:
                t.metrics_rows.append(row)


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Stop tokens as the static engine reads them: the generation config's, else the tokenizer's."""
    gen_cfg = getattr(qf.unwrap(model), "generation_config", None)
    eos = getattr(gen_cfg, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    return [int(e) for e in (list(eos) if isinstance(eos, (list, tuple)) else ([] if eos is None else [eos]))]
