"""The RL trainer: one run = one method config + seed.

Each step (Appendix G/H):
1. draw ``prompts_per_step`` prompts (a per-seed permutation of the training split, epoch
   after epoch — a pure function of (seed, step), so resuming needs no data-loader state);
2. sample G rollouts per prompt through the rollout-engine interface;
3. grade them with the shared grader (reward 1 if correct, else 0);
4. old-policy log-probs (kappa_B, App. E); the first mini-batch's come from its own update forward;
5. advantages from the estimator registry;
6. PPO-clip updates: ``epochs`` passes over mini-batches of ``mini_batch_prompts`` prompts,
   gradient accumulation over micro-batches with the mini-batch-wide aggregation
   denominator, AdamW, grad clipping;
7. log-prob gain on correct rollouts (a forward over them after the update), metrics row: every
   diagnostic over the whole batch, all ranks' shares (sums and counts all-reduced);
8. every ``eval_every`` steps, greedy (T = 0) test accuracy per benchmark and its mean
   (Appendix G): the held-out split, or the config's eval benchmarks for a benchmark task.

Precision: fp32 master weights (AdamW, gradients) at any ``model.dtype``, which sets the
compute precision through autocast (:meth:`Trainer.autocast`).

Checkpoints, resume and their integrity checks: asymcli/training/checkpointing.py (a restarted
run reproduces the uninterrupted run's metrics: all randomness derives from (seed, step)).
NaN/inf in a training quantity stops the run naming step and quantity; the last good
checkpoint stays. Bundles (several runs in one process): asymcli/training/bundle.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import artifacts, faults
from ..platform import platform_info
from . import distributed as dist
from .checkpointing import CheckpointMixin
from ..algorithm import advantages as adv_mod
from ..algorithm.objective import policy_loss
from ..algorithm.schedule import ScheduleSettings, ScheduleState, schedule_step
from ..config import Config, TrainConfig, run_description
from ..engines.base import RolloutEngine, SamplingParams, make_engine
from ..errors import ConfigError, NumericalError
from ..progress import ProgressBar, step_info
from ..sampling.curves import CurveSet, spread_rows
from ..sampling.engine import engine_kwargs
from ..sampling.grade import decode_and_grade, make_grader
from ..sampling.models import PromptIds, encode_prompts, load_policy, pick_device, resolve_dtype
from .diagnostics import StepBatch, UpdateStats, schedule_signals, step_diagnostics
from .policy import PackedBatch, pack, response_logprobs

HELDOUT = "heldout"  # curve-set name of the prompts' held-out split


def _step_seed(seed: int, step: int, salt: int = 0) -> int:
    # Independent, reproducible streams per (seed, step, purpose).
    return int(np.random.SeedSequence([seed, step, salt]).generate_state(1)[0])


class Trainer(CheckpointMixin):
    """Runs (or resumes) one RL run into ``out_dir``; checkpoints: :class:`.checkpointing.CheckpointMixin`."""

    def __init__(
        self,
        cfg: Config,
        run: TrainConfig,
        train_rows: Sequence[dict[str, Any]],
        heldout_rows: Sequence[dict[str, Any]],
        model_path: str | Path,
        out_dir: str | Path,
        *,
        grader: Any | None = None,
        progress: bool = True,
        on_step: Callable[[int, dict[str, Any]], None] | None = None,
        curve_sets: Sequence[CurveSet] | None = None,
        stacked: bool = False,
    ):
        """``curve_sets``: the benchmarks of the greedy test-accuracy curve (``eval_every``);
        None = ``heldout_rows`` (spread to ``eval_prompts`` rows) as one set named "heldout".
        ``stacked``: a member of a :class:`~asymcli.training.bundle.Bundle`, which samples and
        computes log-probs for it (no rollout engine of its own)."""
        self.cfg, self.train_cfg = cfg, run
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / artifacts.CHECKPOINTS_DIR
        self.progress = progress
        self.on_step = on_step
        if not train_rows:
            raise ConfigError("the training split is empty: nothing to train on")
        if run.threads:
            torch.set_num_threads(run.threads)
        self.device = pick_device(run.device)
        # Under a launcher (torchrun / deepspeed / srun) every rank runs this trainer on its
        # share of each step's prompts; single-process runs take the plain torch path.
        dist.init_distributed(self.device)
        self.device = dist.device_for(self.device)
        if run.prompts_per_step % dist.world() or run.mini_batch_prompts % dist.world():
            raise ConfigError(f"train.prompts_per_step ({run.prompts_per_step}) and train.mini_batch_prompts "
                              f"({run.mini_batch_prompts}) must be multiples of the world size ({dist.world()})")
        if self.shards() % dist.world():
            raise ConfigError(f"train.rollout_shards ({run.rollout_shards}) must be a multiple of the world size "
                              f"({dist.world()})")
        self.train_rows = list(train_rows)
        if curve_sets is None:  # the embedded task: its held-out split, spread over the tiers
            heldout = spread_rows(list(heldout_rows), run.eval_prompts)
            curve_sets = [CurveSet(HELDOUT, heldout, run.max_new_tokens)] if heldout else []
        self.curve_sets = [c for c in curve_sets if c.rows]
        self.model_path = str(model_path)

        resume = self.resume_checkpoint()
        load_from = str(resume) if resume is not None else self.model_path
        # fp32 master weights whatever model.dtype says: AdamW steps fp32 tensors, and
        # model.dtype is the compute precision (autocast). Stepping bf16 weights directly
        # rounds most updates away at the paper's lr 2e-6 (tests/training/test_master_weights.py).
        self.compute_dtype = resolve_dtype(cfg.model.dtype, self.device)
        master_cfg = dataclasses.replace(cfg.model, dtype="float32")
        self.model, self.tokenizer = load_policy(load_from, master_cfg, device=str(self.device))
        self.model.train()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.ref_model = None
        if run.kl_coef > 0:  # never updated: stored at the compute precision
            self.ref_model, _ = load_policy(self.model_path, cfg.model, device=str(self.device))
            self.ref_model.eval().requires_grad_(False)
        self.train_prompt_ids = PromptIds(self.tokenizer, [r["prompt"] for r in self.train_rows], cfg.model)
        self.curve_prompt_ids = [encode_prompts(self.tokenizer, [r["prompt"] for r in c.rows], cfg.model)
                                 for c in self.curve_sets]

        # AdamW + grad clipping, plain torch or DeepSpeed ZeRO (train.deepspeed), one interface.
        self.backend = dist.make_backend(run, self.model)
        self.model = self.backend.model
        self.stacked = stacked
        self.engine: RolloutEngine | None = None if stacked else make_engine(
            run.engine, self.model, self.tokenizer,
            **engine_kwargs(run.engine, run, model_path=self.model_path, dtype=self.compute_dtype))
        self.grader = make_grader(cfg.grading) if grader is None else grader
        self.metrics_rows: list[dict[str, Any]] = []
        # beta_schedule "entropy" (method asym_adaptive): the betas move every step (rollout())
        self.schedule = (ScheduleState(beta_pos=run.beta_pos, beta_neg=run.beta_neg)
                         if run.beta_schedule == "entropy" else None)
        self._pending: torch.Tensor | None = None  # rows whose old log-probs the update fills in
        self.start_step = 1
        self.last_good_step = 0
        if resume is not None:
            self._load_state(resume)

    # ------------------------------------------------------------------ setup

    def config_dict(self) -> dict[str, Any]:
        return dict(run_description(self.cfg, self.train_cfg), model_path=self.model_path)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Compute at ``model.dtype`` (``auto``: bf16 on GPUs, fp32 on the CPU) over the fp32
        master weights: forwards and backwards run in bf16/fp16, gradients and AdamW in fp32."""
        if self.compute_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.compute_dtype)

    # ------------------------------------------------------------------ data

    def prompt_indices(self, step: int) -> list[int]:
        """Training-row indices of step ``step`` (1-based): a pure function of (seed, step)."""
        n, b = len(self.train_rows), self.train_cfg.prompts_per_step
        start = (step - 1) * b
        out: list[int] = []
        while len(out) < b:
            epoch, offset = divmod(start + len(out), n)
            perm = np.random.default_rng([self.train_cfg.seed, epoch]).permutation(n)
            take = min(b - len(out), n - offset)
            out.extend(int(i) for i in perm[offset : offset + take])
        return out

    # ------------------------------------------------------------------ rollout

    def shards(self) -> int:
        """Seeded rollout chunks per step: ``train.rollout_shards``, or one per process.

        Chunk c of a step's prompts is sampled with seed ``_step_seed(seed, step, 1) + c`` in
        its own generate call and each mini-batch takes the same share of every chunk, so a
        fixed ``rollout_shards`` gives the same run on any number of processes that divides
        it (tests/training/test_distributed.py compares 1 and 2 processes).
        """
        return self.train_cfg.rollout_shards or dist.world()

    def rollout(self, step: int) -> tuple[StepBatch, dict[str, Any]]:
        """One RL step's data: G responses per prompt, their rewards, the old (and reference)
        log-probs, and the advantages; this rank's share of the step's prompts."""
        prompt_idx, prompts = self.step_prompts(step)
        outs, rollout_s = self._generate(step, prompts)
        faults.maybe_fail("rollout", step)
        rewards, group_ids, batch = self.collect(prompt_idx, prompts, outs)
        old_logp, old_ent = self.old_logprobs(batch)
        ref_logp = self._logprobs_nograd(self.ref_model, batch)[0] if self.ref_model is not None else None
        sb = self.step_batch(step, prompt_idx, outs, rewards, group_ids, batch, old_logp, old_ent, ref_logp)
        return sb, {"rollout_s": rollout_s}

    def step_prompts(self, step: int) -> tuple[list[int], list[list[int]]]:
        """This rank's prompt indices into the training split for step ``step``, and their ids."""
        prompt_idx = dist.shard(self.prompt_indices(step))
        return prompt_idx, self.train_prompt_ids.take(prompt_idx)

    def sampling(self, step: int, shard: int = 0) -> SamplingParams:
        """The sampling settings of step ``step``'s rollout chunk ``shard`` (its own seed)."""
        run = self.train_cfg
        return SamplingParams(temperature=run.temperature, top_p=run.top_p, max_new_tokens=run.max_new_tokens,
                              n=run.group_size, seed=_step_seed(run.seed, step, 1) + shard)

    def collect(self, prompt_idx: list[int], prompts: list[list[int]], outs: list[Any]
                ) -> tuple[torch.Tensor, torch.Tensor, PackedBatch]:
        """Rewards [N], group ids [N] and the packed prompt+response batch of the rollouts."""
        rewards = self.rewards(prompt_idx, outs)
        group_ids = torch.tensor([o.prompt_index for o in outs], dtype=torch.long)
        batch = pack([prompts[o.prompt_index] for o in outs], [o.token_ids for o in outs], self.pad_id)
        return rewards, group_ids, batch

    def step_batch(self, step: int, prompt_idx: list[int], outs: list[Any], rewards: torch.Tensor, group_ids: torch.Tensor,
                   batch: PackedBatch, old_logp: torch.Tensor, old_ent: torch.Tensor,
                   ref_logp: torch.Tensor | None) -> StepBatch:
        """The step's :class:`StepBatch`: the schedule's betas (if any) and the advantages."""
        sb = StepBatch(prompt_idx, group_ids, rewards, batch, old_logp, old_ent, ref_logp, torch.empty(0),
                       [o.finish_reason for o in outs])
        if self.schedule is not None:  # this step's betas from this step's rollouts
            was = self.schedule.saturated
            self.schedule = schedule_step(self.schedule, ScheduleSettings(**dataclasses.asdict(self.train_cfg.schedule)),
                                          **schedule_signals(sb, self.train_cfg.group_size))
            if self.schedule.saturated != was:  # said once per change, not every step
                self._log_saturation(step)
        sb.advantages = self.advantages(step, rewards, group_ids)
        return sb

    def _generate(self, step: int, prompts: list[list[int]]) -> tuple[list[Any], float]:
        """Sample G responses per prompt, shard by shard (seeded per shard), and the seconds it took."""
        run = self.train_cfg
        local_shards = self.shards() // dist.world()
        per_shard = len(prompts) // local_shards
        first_shard = dist.rank() * local_shards
        t0 = time.perf_counter()
        self.model.eval()
        outs = []
        with torch.no_grad(), self.backend.compute(), self.autocast():
            for j in range(local_shards):
                chunk = self.engine.generate(prompts[j * per_shard : (j + 1) * per_shard],
                                             self.sampling(step, first_shard + j))
                outs += [dataclasses.replace(o, prompt_index=o.prompt_index + j * per_shard) for o in chunk]
        return outs, time.perf_counter() - t0

    def rewards(self, prompt_idx: list[int], outs: list[Any]) -> torch.Tensor:
        """The verifiable reward: 1 when the grader accepts the answer (reasoning-gym: its score_answer), else 0."""
        _, verdicts = decode_and_grade(self.tokenizer, self.grader, outs, [self.train_rows[i] for i in prompt_idx])
        return torch.tensor([1.0 if v.correct else 0.0 for v in verdicts])

    def advantages(self, step: int, rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
        """Per-response advantages from the run's estimator (asymcli.algorithm.advantages)."""
        run = self.train_cfg
        self._check_finite(step, "rewards", rewards)
        bp, bn = self.betas()
        A = adv_mod.compute_advantages(run.estimator, rewards, group_ids, beta_pos=bp, beta_neg=bn)
        self._check_finite(step, "advantages", A)
        return A

    def betas(self) -> tuple[float | None, float | None]:
        """The (beta_pos, beta_neg) of the current step: the schedule's, else the run's."""
        if self.schedule is not None:
            return self.schedule.beta_pos, self.schedule.beta_neg
        return self.train_cfg.beta_pos, self.train_cfg.beta_neg

    def mini_batches(self, n_prompts: int) -> list[torch.Tensor]:
        """Rollout rows of this rank's share of each PPO mini-batch, in update order.

        Mini-batch m takes the m-th slice of every rollout chunk (:meth:`shards`); with one
        chunk that is the m-th run of ``mini_batch_prompts`` prompts of the step.
        """
        G = self.train_cfg.group_size
        local_shards = self.shards() // dist.world()
        per_shard = n_prompts // local_shards
        take = self.train_cfg.mini_batch_prompts // self.shards()  # prompts of one chunk per mini-batch
        out = []
        for m in range(per_shard // take):
            prompts = [j * per_shard + m * take + i for j in range(local_shards) for i in range(take)]
            out.append(torch.tensor([p * G + g for p in prompts for g in range(G)], dtype=torch.long))
        return out

    def old_logprobs(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Old-policy ``(logp, entropy)`` [N, T] of the step's rollouts.

        The first mini-batch's rows are left to the update: before its first optimizer step
        the policy is the old one, so its forward's own (detached) values are these, to the
        bit (a row's log-probs do not depend on the rows beside it); :meth:`update` fills
        them in (``self._pending``). That saves a 1/M share of a forward over the batch. Not
        with the entropy schedule, whose betas need every row's entropy before the update.
        """
        first = self.mini_batches(batch.resp_ids.shape[0] // self.train_cfg.group_size)[0] if self.schedule is None else None
        self._pending = first
        if first is None or len(first) == batch.resp_ids.shape[0]:
            self._pending = None
            return self._logprobs_nograd(self.model, batch)
        later = torch.ones(batch.resp_ids.shape[0], dtype=torch.bool)
        later[first] = False
        return self._logprobs_of_rows(batch, later.nonzero().flatten())

    def logprobs_after_update(self, sb: StepBatch, step: int) -> torch.Tensor | None:
        """Log-probs [N, T] under the updated policy for the log-prob gain on correct rollouts
        (Fig. 2 d, h), its only reader: on the correct rows alone (zero elsewhere); None on the
        steps ``train.logprob_gain_every`` skips (a diagnostic-only forward runs when asked)."""
        every = self.train_cfg.logprob_gain_every
        if not every or (step % every and step != self.train_cfg.steps):
            return None
        return self._logprobs_of_rows(sb.batch, (sb.rewards > 0.5).nonzero().flatten())[0]

    def _logprobs_of_rows(self, batch: PackedBatch, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logp, entropy)`` [N, T] of ``batch`` under the current policy on ``rows`` only, zero elsewhere."""
        N, T = batch.resp_ids.shape
        out_lp, out_ent = torch.zeros((N, T)), torch.zeros((N, T))
        if len(rows):
            lp, ent = self._logprobs_nograd(self.model, batch.select(rows))  # trimmed to these rows' width
            out_lp[rows, : lp.shape[1]] = lp
            out_ent[rows, : ent.shape[1]] = ent
        return out_lp, out_ent

    def _logprobs_nograd(self, model: Any, batch: PackedBatch, chunk_rows: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        model.eval()
        lps, ents = [], []
        with torch.no_grad(), self.backend.compute(), self.autocast():
            for s in range(0, batch.input_ids.shape[0], chunk_rows):
                sub = batch.select(slice(s, s + chunk_rows)).to(self.device)
                run = self.train_cfg
                lp, ent = response_logprobs(model, sub, temperature=run.temperature or 1.0, max_tokens=run.forward_tokens)
                T = batch.resp_ids.shape[1]
                lps.append(torch.nn.functional.pad(lp.float().cpu(), (0, T - lp.shape[1])))
                ents.append(torch.nn.functional.pad(ent.float().cpu(), (0, T - ent.shape[1])))
        return torch.cat(lps), torch.cat(ents)

    # ------------------------------------------------------------------ update

    def update(self, step: int, sb: StepBatch) -> dict[str, Any]:
        run = self.train_cfg
        self.model.train()
        lr = self.set_step_lr(step)
        micro = run.micro_batch_seqs or len(sb.group_ids)
        stats = UpdateStats()
        batches = self.mini_batches(len(sb.prompt_rows))
        first_rows = batches[0]
        for _epoch in range(run.epochs):
            for rows in batches:
                denom = self.agg_denom(sb, rows)
                self.backend.zero_grad()
                stats.start_mini_batch()
                starts = list(range(0, len(rows), micro))
                for u0 in starts:
                    idx = rows[u0 : u0 + micro]
                    sub = sb.batch.select(idx).to(self.device)
                    with self.backend.compute():
                        with self.autocast():
                            logp, ent = response_logprobs(self.model, sub, temperature=run.temperature or 1.0,
                                                          max_tokens=run.forward_tokens)
                        if self._pending is not None and _epoch == 0 and rows is first_rows:
                            # The first mini-batch's old log-probs: this forward's, before any step.
                            w = logp.shape[1]
                            sb.old_logp[idx, :w] = logp.detach().float().cpu()
                            sb.old_entropy[idx, :w] = ent.detach().float().cpu()
                        loss, mstats = self.micro_loss(sb, idx, logp, ent, sub.resp_mask, denom)
                        self._check_finite(step, "loss", loss.detach())
                        self.backend.backward(loss, last=u0 == starts[-1])
                    stats.add_micro_batch(loss, mstats, float(sub.resp_mask.sum()))
                stats.end_mini_batch(self.optimizer_step(step))
        self._check_weights(step)  # a checkpoint of this step must never hold inf/NaN weights
        if self.engine is not None:
            self.engine.update_weights(self.model, weights=self.backend.full_weights)
        return stats.result(lr)

    def set_step_lr(self, step: int) -> float:
        """Set and return the learning rate of step ``step`` (linear warm-up)."""
        lr = self.train_cfg.lr * min(1.0, step / max(1, self.train_cfg.warmup_steps))
        self.backend.set_lr(lr)
        return lr

    def agg_denom(self, sb: StepBatch, rows: torch.Tensor) -> float:
        """The whole mini-batch's loss denominator (over ranks), so that the micro-batch losses
        of every rank add up to the unsplit mini-batch loss."""
        local = float(sb.batch.resp_mask[rows].sum()) if self.train_cfg.loss_agg == "token-mean" else float(len(rows))
        return max(1.0, dist.all_reduce_sum({"d": local})["d"])

    def optimizer_step(self, step: int) -> float:
        """Clip + AdamW; the pre-clip grad norm (a non-finite one stops the run)."""
        grad_norm = self.backend.step()  # skipped when the norm is not finite
        self._check_finite(step, "gradients", torch.tensor([grad_norm]))
        faults.maybe_fail("update", step)
        return grad_norm

    def micro_loss(self, sb: StepBatch, idx: torch.Tensor, logp: torch.Tensor, ent: torch.Tensor,
                   mask: torch.Tensor, denom: float) -> tuple[torch.Tensor, dict[str, Any]]:
        """The PPO-clip loss of micro-batch rows ``idx`` (logp, ent, mask [b, T]) with the run's
        settings and the mini-batch-wide aggregation denominator ``denom``."""
        run, T = self.train_cfg, mask.shape[1]

        def cols(t: torch.Tensor) -> torch.Tensor:  # [b, T]: the stored batch may be narrower
            t = t[idx, :T]
            return torch.nn.functional.pad(t, (0, T - t.shape[1])).to(self.device)

        return policy_loss(
            logp.float(), cols(sb.old_logp), sb.advantages[idx].to(self.device), mask,
            clip_eps_low=run.clip_eps_low, clip_eps_high=run.clip_eps_high, dual_clip_c=run.dual_clip_c,
            loss_agg=run.loss_agg, entropy=ent.float() if run.entropy_coef else None,
            entropy_coef=run.entropy_coef, ref_logp=cols(sb.ref_logp) if sb.ref_logp is not None else None,
            kl_coef=run.kl_coef, agg_denom=denom, max_len=run.max_new_tokens)

    # ------------------------------------------------------------------ eval

    def eval_greedy(self) -> dict[str, Any]:
        """Greedy (T = 0) accuracy on every curve set (Appendix G's test accuracy).

        Each rank decodes its share of every set; correct counts are summed over ranks.
        Returns ``{"eval_greedy_acc": mean over the sets (the paper's average), "eval_bench":
        [{"benchmark", "n", "acc"}], "eval_s": wall seconds}``; NaN/[] without sets.
        """
        t0 = time.perf_counter()
        counts: dict[str, float] = {}
        self.model.eval()
        for cset, ids in zip(self.curve_sets, self.curve_prompt_ids):
            lo, hi = len(ids) * dist.rank() // dist.world(), len(ids) * (dist.rank() + 1) // dist.world()
            rows, mine = cset.rows[lo:hi], ids[lo:hi]
            with torch.no_grad(), self.backend.compute(), self.autocast():  # collective under ZeRO-3
                outs = self.engine.generate(mine, SamplingParams(
                    temperature=0.0, max_new_tokens=cset.max_new_tokens, n=1)) if mine else []
            counts.update(self.eval_counts(cset.name, rows, outs))
        return self.eval_result(dist.all_reduce_sum(counts), time.perf_counter() - t0)

    def eval_due(self, step: int) -> bool:
        """Whether step ``step`` measures the greedy test accuracy (``train.eval_every``, and the last step)."""
        run = self.train_cfg
        return bool(run.eval_every) and (step % run.eval_every == 0 or step == run.steps)

    def eval_result(self, counts: dict[str, float], seconds: float) -> dict[str, Any]:
        """The evaluation columns from the correct / n counts of every curve set."""
        bench = [{"benchmark": c.name, "n": int(counts[f"{c.name}/n"]),
                  "acc": counts[f"{c.name}/correct"] / counts[f"{c.name}/n"]} for c in self.curve_sets]
        return {"eval_greedy_acc": float(np.mean([b["acc"] for b in bench])) if bench else float("nan"),
                "eval_bench": bench, "eval_s": seconds}

    def _evaluate(self, step: int, row: dict[str, Any], res: dict[str, Any] | None = None) -> None:
        """Fill ``row``'s evaluation columns (``res``, else measured here) and print the result
        and its cost to the run log."""
        res = self.eval_greedy() if res is None else res
        row.update(res)
        if dist.is_main() and res["eval_bench"]:
            per = "  ".join(f"{b['benchmark']} {b['acc']:.3f} (n={b['n']})" for b in res["eval_bench"])
            self._log(f"{self.out_dir.name} step {step}: greedy test accuracy {res['eval_greedy_acc']:.4f}"
                      f" = mean of [{per}]; eval took {res['eval_s']:.1f} s")

    def eval_counts(self, name: str, rows: list[dict[str, Any]], outs: list[Any]) -> dict[str, float]:
        """``{name/correct, name/n}`` of greedy responses ``outs`` to curve-set rows ``rows``."""
        _, verdicts = decode_and_grade(self.tokenizer, self.grader, outs, rows)
        return {f"{name}/correct": float(sum(v.correct for v in verdicts)), f"{name}/n": float(len(outs))}

    def _log(self, msg: str) -> None:
        """One line of the run log (stderr; above the live progress bar when there is one).
        Printed with or without ``progress``: the Snakemake rule's log file keeps it."""
        bar = getattr(self, "_bar", None)
        if bar is not None and bar.log(msg):
            return
        print(msg, file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ one step

    def train_step(self, step: int) -> dict[str, Any]:
        t_start = time.perf_counter()
        self._check_weights(step)
        sb, timing = self.rollout(step)
        t_update = time.perf_counter()
        upd = self.update(step, sb)
        new_logp = self.logprobs_after_update(sb, step)
        row = self.step_row(step, sb, upd, new_logp, timing["rollout_s"], time.perf_counter() - t_update, t_start)
        if self.eval_due(step):
            self._evaluate(step, row)
        return row

    def step_row(self, step: int, sb: StepBatch, upd: dict[str, Any], new_logp: torch.Tensor | None, rollout_s: float,
                 update_s: float, t_start: float) -> dict[str, Any]:
        """The step's metrics row (evaluation columns NaN until :meth:`_evaluate` fills them)."""
        diag = self.diagnostics(sb, new_logp)
        tokens = diag.pop("_tokens")
        return {
            "step": step,
            **diag,
            "clipfrac_low": upd["clipfrac_low"],
            "clipfrac_high": upd["clipfrac_high"],
            "approx_kl": upd["approx_kl"],
            "loss": upd["loss"],
            "grad_norm": upd["grad_norm"],
            "lr": upd["lr"],
            "rollout_s": rollout_s,
            "update_s": update_s,
            "tokens_per_s": tokens / max(1e-9, time.perf_counter() - t_start),
            "eval_greedy_acc": float("nan"),
            "eval_bench": [],
            "eval_s": float("nan"),
            **self._beta_columns(),
        }

    def _log_saturation(self, step: int) -> None:
        st, sc = self.schedule, self.train_cfg.schedule
        assert st is not None
        if st.saturated:
            msg = (f"{self.out_dir.name} step {step}: schedule saturated: the betas are at the bound "
                   f"({st.beta_pos:g}, {st.beta_neg:g}) and the entropy target {st.target:.4g} is out of their "
                   f"reach (beta in [{sc.beta_min:g}, {sc.beta_max:g}]); the run is the fixed pair while this lasts")
        else:
            msg = f"{self.out_dir.name} step {step}: schedule back inside the bounds: ({st.beta_pos:.3g}, {st.beta_neg:.3g})"
        self._log(msg)

    def _beta_columns(self) -> dict[str, float]:
        """The betas the step's advantages used (NaN for estimators without betas), and the
        schedule's entropy target (NaN without a schedule)."""
        bp, bn = adv_mod.resolve_betas(self.train_cfg.estimator, *self.betas())
        return {"beta_pos": math.nan if bp is None else bp, "beta_neg": math.nan if bn is None else bn,
                "entropy_target": self.schedule.target if self.schedule is not None else math.nan,
                "schedule_saturated": self.schedule.saturated if self.schedule is not None else math.nan}

    def diagnostics(self, sb: StepBatch, new_logp: torch.Tensor | None) -> dict[str, Any]:
        """The step's rollout diagnostics over the whole batch (:func:`.diagnostics.step_diagnostics`)."""
        return step_diagnostics(sb, new_logp, self.train_cfg.group_size)

    # ------------------------------------------------------------------ loop

    def begin(self) -> bool:
        """Write run.json; whether step 0 (the starting policy's test accuracy, which anchors
        the accuracy curves) is still to be measured."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if dist.is_main():
            # the platform beside the run's description (not in it: resume compares the description)
            artifacts.write_json(self.out_dir / artifacts.RUN_JSON, dict(self.config_dict(), platform=platform_info()))
        return self.start_step == 1 and not self.metrics_rows and bool(self.train_cfg.eval_every)

    def end_step(self, step: int, row: dict[str, Any]) -> None:
        """Keep step ``step``'s row, checkpoint when due, call the step hook."""
        run = self.train_cfg
        self.metrics_rows.append(row)
        if (run.checkpoint_every and step % run.checkpoint_every == 0) or step == run.steps:
            self.save_checkpoint(step)
        if self.on_step is not None:
            self.on_step(step, row)

    def finish(self) -> Path:
        """Write metrics.parquet (the run's declared output, last) and close the engine."""
        path = self.out_dir / artifacts.METRICS_FILE
        if dist.is_main():
            artifacts.write_parquet(path, self.metrics_rows, artifacts.METRICS,
                                    artifacts.provenance(self.config_dict(), run_id=self.out_dir.name))
        dist.barrier()
        if self.engine is not None:
            self.engine.close()
        return path

    def train(self) -> Path:
        run = self.train_cfg
        if self.stacked:
            raise RuntimeError("a stacked trainer is trained by its Bundle (asymcli.training.bundle)")
        if self.begin():
            row0 = self._eval_row(0)
            self._evaluate(0, row0)
            self.metrics_rows.append(row0)
        bar = ProgressBar(self.out_dir.name, run.steps, done=self.start_step - 1,
                          enabled=self.progress and dist.is_main(), info=True)
        self._bar = bar
        with bar:
            for step in range(self.start_step, run.steps + 1):
                row = self.train_step(step)
                if bar.enabled:
                    bar.update(step, step_info(row))
                self.end_step(step, row)
        return self.finish()

    def _eval_row(self, step: int) -> dict[str, Any]:
        row: dict[str, Any] = {name: float("nan") for name in artifacts.METRICS.names}
        row.update(step=step, p_hist=[], w_pos_hist=[], w_neg_hist=[], w_pos_tok_hist=[], w_neg_tok_hist=[],
                   eval_bench=[], lr=0.0)
        return row

    def _check_weights(self, step: int) -> None:
        # A poisoned policy would otherwise surface as an opaque sampling error.
        with torch.no_grad():
            total = sum(p.float().sum() for p in self.model.parameters())
        self._check_finite(step, "policy weights", torch.as_tensor(total).reshape(1))

    def _check_finite(self, step: int, what: str, t: torch.Tensor) -> None:
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise NumericalError(
                f"step {step}: {bad} non-finite value(s) in {what}; run stopped, "
                + (f"last good checkpoint is step {self.last_good_step} in {self.ckpt_dir}" if self.last_good_step
                   else "no checkpoint was written yet"))

