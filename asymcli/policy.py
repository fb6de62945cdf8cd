"""Per-token log-probs and entropy of responses under a causal LM, without fp32 [B, T, V].

The trainer calls :func:`response_logprobs` for old-policy log-probs (no grad), for the
PPO update (with grad) and for the post-update log-prob gain. Only response positions
are projected through the LM head, in chunks of ``chunk_tokens`` rows, so the logits
tensor that exists at any time is ``[chunk_tokens, V]``; with ``checkpoint_head=True``
the chunk's logits are recomputed in backward instead of being kept for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint


@dataclass
class PackedBatch:
    """Prompt+response sequences, right-padded.

    input_ids:      [B, L] long
    attention_mask: [B, L] long
    resp_pos:       [B, T] long  position in the sequence of the logits that predict
                                 response token t (= prompt_len - 1 + t), 0 where padded
    resp_ids:       [B, T] long  response tokens, pad where masked
    resp_mask:      [B, T] float 1 for real response tokens
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    resp_pos: torch.Tensor
    resp_ids: torch.Tensor
    resp_mask: torch.Tensor

    def to(self, device: torch.device | str) -> "PackedBatch":
        return PackedBatch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.resp_pos,
                                                     self.resp_ids, self.resp_mask)))

    def select(self, rows: slice | torch.Tensor) -> "PackedBatch":
        """Rows of the batch, trimmed to the longest remaining sequence."""
        ids, am = self.input_ids[rows], self.attention_mask[rows]
        rm = self.resp_mask[rows]
        L = int(am.sum(1).max().item()) if am.numel() else 0
        T = int(rm.sum(1).max().item()) if rm.numel() else 0
        return PackedBatch(ids[:, :L], am[:, :L], self.resp_pos[rows][:, :T], self.resp_ids[rows][:, :T], rm[:, :T])


def pack(prompts: list[list[int]], responses: list[list[int]], pad_id: int) -> PackedBatch:
    """Right-pad prompt+response pairs into a :class:`PackedBatch`."""
    assert len(prompts) == len(responses)
    B = len(prompts)
    L = max((len(p) + len(r) for p, r in zip(prompts, responses)), default=1)
    T = max((len(r) for r in responses), default=1) or 1
    input_ids = torch.full((B, L), pad_id, dtype=torch.long)
    attn = torch.zeros((B, L), dtype=torch.long)
    resp_pos = torch.zeros((B, T), dtype=torch.long)
    resp_ids = torch.full((B, T), pad_id, dtype=torch.long)
    resp_mask = torch.zeros((B, T), dtype=torch.float32)
    for b, (p, r) in enumerate(zip(prompts, responses)):
        seq = list(p) + list(r)
        input_ids[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attn[b, : len(seq)] = 1
        n = len(r)
        if n:
            resp_pos[b, :n] = torch.arange(len(p) - 1, len(p) - 1 + n)
            resp_ids[b, :n] = torch.tensor(r, dtype=torch.long)
            resp_mask[b, :n] = 1.0
    return PackedBatch(input_ids, attn, resp_pos, resp_ids, resp_mask)


def _head_logp_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       targets: torch.Tensor, inv_temp: float) -> torch.Tensor:
    """[N, H] hidden -> [N, 2] (log-prob of target, entropy), logits in fp32 for [N, V] only."""
    logits = torch.nn.functional.linear(hidden, weight, bias).float()
    if inv_temp != 1.0:
        logits = logits * inv_temp
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)  # Eq. (7)
    return torch.stack([logp, entropy], dim=-1)


def response_logprobs(
    model: Any,
    batch: PackedBatch,
    *,
    temperature: float = 1.0,
    chunk_tokens: int = 4096,
    checkpoint_head: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs and entropies of the response tokens.

    Returns ``(logp, entropy)``, both ``[B, T]`` float32, zero where ``resp_mask`` is 0.
    Logits are divided by ``temperature`` (the sampling distribution), as verl does.
    Differentiable when grad is enabled.
    """
    base = getattr(model, model.base_model_prefix)
    out = base(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    hidden = out.last_hidden_state  # [B, L, H]
    B, T = batch.resp_ids.shape
    flat_mask = batch.resp_mask.reshape(-1) > 0
    rows = torch.arange(B, device=hidden.device).unsqueeze(1).expand(B, T).reshape(-1)[flat_mask]
    cols = batch.resp_pos.reshape(-1)[flat_mask]
    h = hidden[rows, cols]  # [N, H] only response positions: no padding waste in the head
    targets = batch.resp_ids.reshape(-1)[flat_mask]
    head = model.get_output_embeddings()
    inv_temp = 1.0 / temperature if temperature > 0 else 1.0
    pieces = []
    for s in range(0, h.shape[0], chunk_tokens):
        args = (h[s : s + chunk_tokens], head.weight, head.bias, targets[s : s + chunk_tokens], inv_temp)
        if checkpoint_head and torch.is_grad_enabled():
            pieces.append(checkpoint(_head_logp_entropy, *args, use_reentrant=False))
        else:
            pieces.append(_head_logp_entropy(*args))
    both = torch.cat(pieces, 0) if pieces else hidden.new_zeros((0, 2), dtype=torch.float32)
    logp = hidden.new_zeros((B * T,), dtype=torch.float32)
    ent = hidden.new_zeros((B * T,), dtype=torch.float32)
    idx = flat_mask.nonzero(as_tuple=True)[0]
    logp = logp.index_put((idx,), both[:, 0]).reshape(B, T)
    ent = ent.index_put((idx,), both[:, 1]).reshape(B, T)
    return logp, ent
