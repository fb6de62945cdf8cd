"""Supervised warm-up: teach a fresh policy the answer format from solutions.

RL from a random policy never sees a reward, so the embedded default first imitates the
``solution`` of training rows (prompt rendered exactly as RL renders it, loss on
the response tokens only, response = solution + EOS). AdamW, linear warm-up then cosine
decay to zero; deterministic given the seed and the thread count. ``max_seconds`` caps
the wall time: the schedule then follows whichever of step count and elapsed time is
further along, so a capped run still ends annealed (but is no longer reproducible).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..config import BaseConfig
from ..errors import ConfigError, NumericalError

ADAM_BETAS = (0.9, 0.98)  # a shorter second-moment memory suits a few thousand steps
GRAD_CLIP = 1.0


@dataclass
class SFTExample:
    prompt_ids: list[int]
    response_ids: list[int]  # ends with EOS


def build_examples(tokenizer: Any, prompt_ids: Sequence[Sequence[int]], solutions: Sequence[str],
                   max_length: int | None = None) -> list[SFTExample]:
    """Pair encoded prompts with tokenized solutions (+ EOS); too-long pairs are an error."""
    if len(prompt_ids) != len(solutions):
        raise ValueError("prompt_ids and solutions differ in length")
    eos = tokenizer.eos_token_id
    resp = tokenizer(list(solutions), add_special_tokens=False)["input_ids"] if solutions else []
    out = []
    for i, (p, r) in enumerate(zip(prompt_ids, resp)):
        ex = SFTExample(list(p), list(r) + [eos])
        if max_length is not None and len(ex.prompt_ids) + len(ex.response_ids) > max_length:
            raise ConfigError(
                f"supervised example {i} is {len(ex.prompt_ids) + len(ex.response_ids)} tokens,"
                f" over model.max_position ({max_length})"
            )
        out.append(ex)
    return out


def collate(batch: Sequence[SFTExample], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``(input_ids, attention_mask, labels)``, each ``[B, L]``; labels are -100
    except on response tokens."""
    L = max(len(e.prompt_ids) + len(e.response_ids) for e in batch)
    ids = torch.full((len(batch), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), L), dtype=torch.long)
    labels = torch.full((len(batch), L), -100, dtype=torch.long)
    for b, e in enumerate(batch):
        n_p, n = len(e.prompt_ids), len(e.prompt_ids) + len(e.response_ids)
        ids[b, :n] = torch.tensor(e.prompt_ids + e.response_ids)
        mask[b, :n] = 1
        labels[b, n_p:n] = torch.tensor(e.response_ids)
    return ids, mask, labels


def response_loss(model: Any, ids: torch.Tensor, mask: torch.Tensor,
                  labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(summed cross-entropy of the response tokens, their number); labels as :func:`collate`."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    keep = targets != -100
    loss_sum = torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum")
    return loss_sum, int(keep.sum())


def lr_factor(progress: float, step: int, warmup_steps: int) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine from 1 to 0 as progress goes 0 -> 1."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _batches(examples: Sequence[SFTExample], batch_size: int, rng: np.random.Generator):
    """Endless random batches: a fresh permutation per epoch; an epoch's tail that does not
    fill a batch is dropped. (Length-bucketed batches pad less, but on the arithmetic
    task they are nearly single-tier and halved held-out accuracy at equal steps.)"""
    bs = min(batch_size, len(examples))
    while True:
        order = rng.permutation(len(examples))
        for s in range(0, len(order) - bs + 1, bs):
            yield order[s : s + bs]


def supervised_warmup(
    model: Any,
    examples: Sequence[SFTExample],
    base_cfg: BaseConfig,
    pad_id: int,
    log: Callable[[str], None] | None = None,
    log_every: int = 100,
) -> list[dict[str, float]]:
    """Train ``model`` in place on ``examples``; one metrics row per step
    (step, loss, lr, seconds since start). Stops at ``base_cfg.steps`` or ``max_seconds``."""
    if not examples:
        raise ConfigError("no supervised examples: no training prompt has a solution")
    if base_cfg.steps < 1 or base_cfg.batch_size < 1:
        raise ConfigError(f"base.steps and base.batch_size must be >= 1, got {base_cfg.steps}, {base_cfg.batch_size}")
    torch.manual_seed(base_cfg.seed)
    rng = np.random.default_rng(base_cfg.seed)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": base_cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=base_cfg.lr, betas=ADAM_BETAS,
    )
    model.train()
    batches = _batches(examples, base_cfg.batch_size, rng)
    rows: list[dict[str, float]] = []
    start = time.perf_counter()
    for step in range(base_cfg.steps):
        elapsed = time.perf_counter() - start
        if base_cfg.max_seconds is not None and elapsed >= base_cfg.max_seconds:
            if log:
                log(f"sft: stopped at step {step} after {elapsed:.0f}s (base.max_seconds)")
            break
        progress = (step - base_cfg.warmup_steps) / max(1, base_cfg.steps - base_cfg.warmup_steps)
        if base_cfg.max_seconds:
            progress = max(progress, elapsed / base_cfg.max_seconds)
        lr = base_cfg.lr * lr_factor(progress, step, base_cfg.warmup_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = next(batches)
        ids, mask, labels = collate([examples[i] for i in idx], pad_id)
        loss_sum, n_tokens = response_loss(model, ids, mask, labels)
        loss = loss_sum / n_tokens  # mean over the batch's response tokens
        if not torch.isfinite(loss):
            raise NumericalError(f"supervised warm-up: loss is {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        rows.append({"step": step, "loss": float(loss.item()), "lr": lr, "seconds": time.perf_counter() - start})
        if log and (step % log_every == 0 or step == base_cfg.steps - 1):
            log(f"sft: step {step} loss {rows[-1]['loss']:.4f} lr {lr:.2e} {rows[-1]['seconds']:.0f}s")
    model.eval()
    return rows
