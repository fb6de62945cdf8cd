"""`asym scan`: each beta pair's entropy effect predicted before training (docs/scan.md).

From one starting model (the base, a checkpoint or any model folder) and one config:

1. **One rollout batch** (the first training step's prompts, G rollouts each, the train
   temperature), graded, with the old-policy log-probs. kappa_B (Appendix E) is the mean
   over mixed groups of k_g = p(1-p) delta_g log(p/(1-p)); its 95% CI is a percentile
   bootstrap over the mixed groups.
2. **Per beta pair or method, two predictions of its entropy effect relative to REINFORCE:**
   - ``prop1``: Proposition 1 (Eq. 6) summed over the channels, lr * kappa_B * (beta_pos -
     beta_neg). Defined for the beta family (AsymGRPO, REINFORCE, GRPO's (0.5, 0.5), Pos-Only,
     Neg-Only); NaN for the flipped methods and Dr.GRPO, whose channels are not Eq. (5)'s.
   - ``first_order``: Appendix B's first-order term before Eq. (6)'s closed form, lr *
     E_g[-Cov_g(L, A - A_REIN)] over the batch's mixed groups, with each method's own
     advantages A on this batch (asymcli.algorithm.theory.entropy_shift). Defined for every
     estimator; it sees the advantages only (not an entropy bonus or a clip change).
   - ``lookahead``: the measured effect of one real update. Every pair starts from the same
     weights (a fresh trainer on the model folder, its own AdamW) and takes one PPO step
     (the config's mini-batches, at the full lr) on the same batch with its own advantages;
     then the next training step's prompts are sampled from the updated policy with one
     fixed seed for all pairs (common random numbers) and their mean token entropy is read.
     The value is that entropy minus REINFORCE's.
   The sign and rank of these, not their size, are what transfer to a whole run: the lr of a
   step and Adam's per-weight scaling stand in for Eq. (6)'s eta.
3. **Proposition 2's peaks** per pair: W_+ at p = 1 - beta_pos, W_- at p = beta_neg.

It uses the trainer's own rollout, grading, advantage and update code (any engine and
backend ``asym train`` runs with), so one scan costs one rollout batch plus, per pair, one
update and one probe batch.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..algorithm import advantages as adv_mod
from ..algorithm import metrics as M
from ..algorithm.theory import entropy_shift, peak_neg, peak_pos
from ..config import METHODS, Config, resolve_run
from .diagnostics import StepBatch
from .trainer import Trainer

REFERENCE = "reinforce"
#: Estimators of the beta family of Eq. (5), where Proposition 1's closed form applies
#: (GRPO's advantages are AsymGRPO (0.5, 0.5)'s: (r - p) / sqrt(p (1 - p))).
BETA_FAMILY = ("asym", "reinforce", "pos_only", "neg_only", "grpo")


@dataclass(frozen=True)
class ScanPair:
    """One row of a scan: a named method, or AsymGRPO with a beta pair (method ``asym``)."""

    method: str
    beta_pos: float | None = None
    beta_neg: float | None = None

    @property
    def label(self) -> str:
        if self.method == "asym":
            return f"asym({self.beta_pos:g}, {self.beta_neg:g})"
        return self.method


@dataclass
class ScanResult:
    kappa: float
    kappa_ci: tuple[float, float]
    n_groups: int
    n_mixed: int
    reward_mean: float
    entropy: float  # mean token entropy of the scanned batch
    probe_entropy: float  # of the probe batch sampled from the unchanged policy
    lr: float
    batches: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def kappa_ci(k_groups: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean of the mixed groups' k_g (resampling groups).
    (NaN, NaN) with fewer than two mixed groups."""
    if len(k_groups) < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = k_groups[rng.integers(0, len(k_groups), size=(n_boot, len(k_groups)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def default_pairs(cfg: Config) -> list[ScanPair]:
    """The config's grid (grid.betas and the cartesian grid.grid) and its named methods, with
    REINFORCE first (the reference) and Table 2's GRPO and AsymGRPO (0.9, 0.4) always in."""
    pairs = [ScanPair(REFERENCE)]
    for m in [*cfg.grid.methods, "grpo"]:
        if m in METHODS and m not in (REFERENCE, "asym", "asym_adaptive"):
            pairs.append(ScanPair(m))
    betas = [(float(a), float(b)) for a, b in cfg.grid.betas] + [(a, b) for a in cfg.grid.grid for b in cfg.grid.grid]
    for bp, bn in [*betas, (0.9, 0.4)]:
        pairs.append(ScanPair("asym", bp, bn))
    out, seen = [], set()
    for p in pairs:
        if p.label not in seen:
            seen.add(p.label)
            out.append(p)
    return out


def _mean_entropy(trainer: Trainer, batch: Any) -> float:
    _, ent = trainer._logprobs_nograd(trainer.model, batch)
    mask = batch.resp_mask
    return float(M.masked_sum(ent, mask) / mask.sum().clamp(min=1))


def _probe(trainer: Trainer, seed_step: int) -> float:
    """Mean token entropy of the rollouts the policy samples for training step ``seed_step``'s
    prompts with that step's seed: the same prompts and random streams for every pair."""
    from .policy import pack

    prompts = trainer.train_prompt_ids.take(trainer.prompt_indices(seed_step))
    outs, _ = trainer._generate(seed_step, prompts)
    batch = pack([prompts[o.prompt_index] for o in outs], [o.token_ids for o in outs], trainer.pad_id)
    return _mean_entropy(trainer, batch)


def scan(cfg: Config, model_path: str | Path, train_rows: Sequence[dict[str, Any]],
         pairs: Sequence[ScanPair], *, seed: int = 0, batches: int = 4, lookahead: bool = True,
         on_pair: Callable[[int, int, str], None] | None = None, grader: Any = None) -> ScanResult:
    """Scan ``pairs`` from ``model_path`` (see the module docstring) on ``batches`` rollout
    batches: the prompts and sampling streams of training steps 1..batches of a run with
    seed ``seed``, all sampled from the unchanged policy. kappa_B pools the mixed groups of
    every batch; the predictions are means over the batches; the probe batch is step
    batches + 1's, the same for every pair and batch."""
    if batches < 1:
        raise ValueError(f"batches must be >= 1, got {batches}")
    t0 = time.perf_counter()
    ref_run = resolve_run(cfg, REFERENCE, seed=seed)
    probe_step = batches + 1
    with tempfile.TemporaryDirectory(prefix="asym-scan-") as tmp:
        def trainer_for(run: Any) -> Trainer:
            return Trainer(cfg, run, train_rows, [], model_path, Path(tmp) / "run", grader=grader, progress=False,
                           curve_sets=[])

        ref = trainer_for(ref_run)
        sbs = [ref.rollout(b + 1)[0] for b in range(batches)]
        probe0 = _probe(ref, probe_step) if lookahead else math.nan
        ref.engine.close()
        seq_logps = [M.seq_mean_logp(sb.old_logp, sb.batch.resp_mask) for sb in sbs]
        k_groups = np.concatenate([M.kappa_groups(L, sb.rewards, sb.group_ids).numpy() for L, sb in zip(seq_logps, sbs)])
        kappa = float(k_groups.mean()) if len(k_groups) else math.nan
        lr = ref_run.lr
        rows, probe = [], {}
        for i, pair in enumerate(pairs):
            if on_pair is not None:
                on_pair(i, len(pairs), pair.label)
            run = resolve_run(cfg, pair.method, pair.beta_pos, pair.beta_neg, seed)
            bp, bn = adv_mod.resolve_betas(run.estimator, run.beta_pos, run.beta_neg)
            advs = [adv_mod.compute_advantages(run.estimator, sb.rewards, sb.group_ids, beta_pos=bp, beta_neg=bn)
                    for sb in sbs]
            beta_family = run.estimator in BETA_FAMILY and bp is not None and bn is not None
            shifts = [entropy_shift(L, A, sb.advantages, sb.rewards, sb.group_ids) for L, A, sb in zip(seq_logps, advs, sbs)]
            rows.append({
                "label": pair.label, "method": pair.method,
                "beta_pos": _nan(bp), "beta_neg": _nan(bn),
                "prop1": lr * kappa * (bp - bn) + 0.0 if beta_family else math.nan,  # type: ignore[operator]
                "first_order": lr * float(np.nanmean(shifts)) if not all(map(math.isnan, shifts)) else math.nan,
                "peak_pos": _nan(peak_pos(bp) if beta_family else None),
                "peak_neg": _nan(peak_neg(bn) if beta_family else None),
            })
            if lookahead:  # one fresh trainer per batch: every step starts from the same weights
                probe[pair.label] = float(np.mean([_one_step(trainer_for(run), sb, A, probe_step)
                                                   for sb, A in zip(sbs, advs)]))
        if lookahead:
            base = probe.get(REFERENCE)
            if base is None:  # the reference was not asked for: measure it too
                base = float(np.mean([_one_step(trainer_for(ref_run), sb, sb.advantages, probe_step) for sb in sbs]))
        for row in rows:
            row["probe_entropy"] = probe.get(row["label"], math.nan)
            row["lookahead"] = row["probe_entropy"] - base if lookahead else math.nan
    tokens = sum(float(sb.batch.resp_mask.sum()) for sb in sbs)
    return ScanResult(
        kappa=kappa, kappa_ci=kappa_ci(k_groups, seed=seed), n_groups=sum(len(sb.prompt_rows) for sb in sbs),
        n_mixed=len(k_groups), reward_mean=float(np.mean([float(sb.rewards.mean()) for sb in sbs])),
        entropy=sum(float(M.masked_sum(sb.old_entropy, sb.batch.resp_mask)) for sb in sbs) / max(tokens, 1.0),
        probe_entropy=probe0, lr=lr, batches=batches, rows=rows, seconds=time.perf_counter() - t0)


def _one_step(trainer: Trainer, sb: StepBatch, A: torch.Tensor, probe_step: int) -> float:
    """One PPO step of ``trainer`` (fresh from the model folder) on ``sb`` with advantages
    ``A`` at the full lr, then the probe batch's mean token entropy."""
    step_batch = StepBatch(sb.prompt_rows, sb.group_ids, sb.rewards, sb.batch, sb.old_logp, sb.old_entropy,
                           sb.ref_logp, A, sb.finish)
    trainer.update(max(1, trainer.train_cfg.warmup_steps), step_batch)
    out = _probe(trainer, probe_step)
    trainer.engine.close()
    return out


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)

