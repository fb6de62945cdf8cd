"""Per-token log-probs and entropy of responses under a causal LM, without fp32 [B, T, V].

The trainer calls :func:`response_logprobs` for old-policy log-probs (no grad), for the
PPO update (with grad) and for the post-update log-prob gain. Only response positions
are projected through the LM head, in chunks of ``chunk_tokens`` rows, so the logits
tensor that exists at any time is ``[chunk_tokens, V]``.

Padding waste: rows are sorted by length and run in groups of at most ``max_tokens``
padded tokens, each trimmed to its longest row (length bucketing). Right padding needs
no attention mask (a real token never attends past itself), so attention is plain causal
SDPA, the flash kernel on GPUs. For Qwen2/Qwen3 modules the decoder runs as plain
functions over the module's own parameters (:mod:`asymcli.engines.qwen_forward`, the
rollout engine's code), which ``compile=True`` fuses with ``torch.compile``; other
models go through the module's ``forward``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils.checkpoint import checkpoint

from ..engines import qwen_forward as qf


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
    impl: str = "auto",
    max_tokens: int = 16384,
    compile: bool | str = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs and entropies of the response tokens.

    Returns ``(logp, entropy)``, both ``[B, T]`` float32, zero where ``resp_mask`` is 0.
    Logits are divided by ``temperature`` (the sampling distribution), as verl does.
    Differentiable when grad is enabled.

    impl: "auto" (the functional Qwen forward when the model is a Qwen2/Qwen3 HF causal
        LM, else the module's forward), "fused" or "hf". Both compute the same function.
    max_tokens: padded-token budget of one forward group (rows sorted by length).
    compile: ``torch.compile`` the fused decoder layer and the head (True: inductor, or a
        backend name). A compilation error at the first call falls back to eager with a
        warning. Honours ``model.gradient_checkpointing_enable()`` (per layer).
    """
    if impl not in ("auto", "fused", "hf"):
        raise ValueError(f"impl must be 'auto', 'fused' or 'hf', got '{impl}'")
    if impl == "fused":
        qf.check_supported(model, engine="fused log-probs")
    # "auto" keeps the module's forward where it would differ: attention dropout in training.
    dropout = qf.unwrap(model).training and getattr(getattr(model, "config", None), "attention_dropout", 0.0)
    fused = impl == "fused" or (impl == "auto" and not dropout and qf.unsupported_reason(model) is None)
    B, T = batch.resp_ids.shape
    device = batch.input_ids.device
    am = batch.attention_mask
    lengths = am.sum(1)
    width = am.shape[1]
    right_padded = bool((am.bool() == (torch.arange(width, device=device) < lengths[:, None])).all())
    if right_padded:
        groups = _length_groups(lengths.tolist(), max_tokens)
    else:  # any other layout: one group, through the module with its attention mask
        groups, fused = [(list(range(B)), width)], False
    head = qf.unwrap(model).get_output_embeddings()
    hs, targets, flat_idx = [], [], []
    for rows, L in groups:
        r = torch.tensor(rows, dtype=torch.long, device=device)
        ids = batch.input_ids.index_select(0, r)[:, :L]
        if fused:
            hidden = _fused_hidden(model, ids, compile)
        else:
            base = getattr(model, model.base_model_prefix)
            mask = None if right_padded else am.index_select(0, r)[:, :L]
            hidden = base(input_ids=ids, attention_mask=mask).last_hidden_state  # [b, L, H]
        rm = batch.resp_mask.index_select(0, r) > 0
        loc, tcol = rm.nonzero(as_tuple=True)
        pos = batch.resp_pos.index_select(0, r)[loc, tcol]
        hs.append(hidden[loc, pos])  # only response positions: no padding waste in the head
        targets.append(batch.resp_ids.index_select(0, r)[loc, tcol])
        flat_idx.append(r[loc] * T + tcol)
    h = torch.cat(hs) if hs else torch.zeros((0, head.weight.shape[1]), device=device)
    tgt = torch.cat(targets) if targets else torch.zeros((0,), dtype=torch.long, device=device)
    idx = torch.cat(flat_idx) if flat_idx else torch.zeros((0,), dtype=torch.long, device=device)
    inv_temp = 1.0 / temperature if temperature > 0 else 1.0
    head_fn = qf.maybe_compiled(_head_logp_entropy, compile)
    pieces = []
    for s in range(0, h.shape[0], chunk_tokens):
        args = (h[s : s + chunk_tokens], head.weight, head.bias, tgt[s : s + chunk_tokens], inv_temp)
        pieces.append(head_fn(*args))
    both = torch.cat(pieces, 0) if pieces else h.new_zeros((0, 2), dtype=torch.float32)
    logp = torch.zeros((B * T,), dtype=torch.float32, device=device).index_put((idx,), both[:, 0])
    ent = torch.zeros((B * T,), dtype=torch.float32, device=device).index_put((idx,), both[:, 1])
    return logp.reshape(B, T), ent.reshape(B, T)


def _length_groups(lengths: list[int], max_tokens: int) -> list[tuple[list[int], int]]:
    """Rows sorted by length (longest first) cut into groups of <= max_tokens padded tokens.

    Returns ``[(rows, group_width)]``; a row longer than the budget forms its own group.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[tuple[list[int], int]] = []
    for i in order:
        if groups and (len(groups[-1][0]) + 1) * groups[-1][1] <= max_tokens:
            groups[-1][0].append(i)
        else:
            groups.append(([i], max(1, lengths[i])))
    return groups


def _fused_hidden(model: Any, ids: torch.Tensor, compile: bool | str) -> torch.Tensor:
    """Final-norm hidden states [b, L, H] of right-padded ``ids`` via the functional forward."""
    w = qf.collect_params(model)
    geo = qf.geometry(model)
    cos, sin = qf.rope_table(model, ids.shape[1], w.embed.dtype, ids.device)
    cos, sin = cos[None], sin[None]
    layer = qf.maybe_compiled(_layer_fn(geo), compile)
    remat = bool(getattr(qf.unwrap(model), "is_gradient_checkpointing", False)) and torch.is_grad_enabled()
    x = qf.embed(w, geo, ids)
    for lw in w.layers:
        args = (x, cos, sin, *lw.as_tuple())
        x = checkpoint(layer, *args, use_reentrant=False) if remat else layer(*args)
    return qf.rms_norm(x, w.norm, geo.eps)


@functools.lru_cache(maxsize=None)
def _layer_fn(geo: qf.Geometry) -> Callable[..., torch.Tensor]:
    """One decoder layer with flat tensor arguments: one compiled graph serves every layer
    (the weights are inputs); the geometry is a closure constant, never a symbolic int."""

    def layer(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *tensors: torch.Tensor | None) -> torch.Tensor:
        return qf.causal_layer(x, cos, sin, qf.LayerWeights(*tensors), geo)

    return layer
