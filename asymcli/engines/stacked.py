"""K runs' Qwen2/Qwen3 decoders sampled as one stacked computation (bundles on the CPU).

A bundle trains K runs that share a base and every tensor shape (different seeds, methods
that differ in the advantage, ...). The testbed's model is tiny (hidden 64, 2 layers): a
decode step of one run is a few hundred rows, dominated by per-op dispatch and by matrix
products too small to use the core, so one op over K runs costs little more than over one.
Here every weight is stacked along a leading run axis ``[K, ...]`` and every activation is
laid out run-major (``[K * rows, ...]``, run k's rows contiguous), so each linear layer is one
``bmm`` over the K runs and every other op (norms, rope, SDPA, sampling) one op over all rows.

Why a run's numbers do not depend on its bundle (tests/training/test_bundle.py checks it bit for bit):
- every per-row op (norms, softmax, SDPA, sampling) computes a row from that row alone;
- ``bmm`` computes slice k from slice k alone, whatever K (measured on torch 2.13 CPU at one
  thread, for every shape used here; at several threads MKL may split one product but not a
  batched one, so the stacked path runs at ``train.threads`` = 1 for its guarantee);
- every shape a run sees is *canonical*, a function of its config and data alone, never of
  the other runs: the prompt width (the caller's: the longest prompt of the split), rows =
  prompts x G. A reduction over a padded axis (a softmax sum over cache slots) changes its
  summation order when the padding moves, so the padding never depends on the bundle;
- each run draws its sampling noise from its own generator, seeded as it would be alone;
- finished rows leave the decode batch (:func:`_repack`), so a slice's row count m depends
  on the bundle; a row's values do not, where a product gives every row the bits it gets in
  any other m >= 4 at any place (MKL on the AMD EPYCs: its 1-3-row kernel rounds otherwise,
  so slices keep at least 4 rows). Where it does not (MKL's AVX2 branch on an Intel Xeon
  rounds a row by the row count and its place in 6-row blocks), :func:`compaction_exact`
  finds it at the first call and every row decodes to the end instead.

So a run alone is a bundle of one through this same code: :class:`asymcli.training.bundle.Bundle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from . import qwen_forward as qf
from .base import Rollout, SamplingParams
from .static import GREEDY, _round_rows, is_eos, sample_tokens, sampling_mode, to_rollouts

__all__ = ["StackedWeights", "stack_weights", "generate_stacked"]


@dataclass
class StackedWeights:
    """K runs' tensors stacked on a leading axis (``qf.Weights`` with ``[K, ...]`` tensors)."""

    w: qf.Weights
    K: int


def stack_weights(models: list[Any]) -> StackedWeights:
    """Stack the K modules' parameters (differentiable: gradients flow back to each module's
    own parameters, so each run keeps its own optimizer). A tied head stays tied."""
    ws = [qf.collect_params(m) for m in models]
    memo: dict[tuple[int, ...], Tensor] = {}

    def st(ts: list[Tensor | None]) -> Tensor | None:
        if ts[0] is None:
            return None
        key = tuple(id(t) for t in ts)
        if key not in memo:
            memo[key] = torch.stack(ts)  # type: ignore[arg-type]
        return memo[key]

    layers = [qf.LayerWeights(*(st([w.layers[i].as_tuple()[j] for w in ws])
                                for j in range(len(ws[0].layers[i].as_tuple()))))
              for i in range(len(ws[0].layers))]
    return StackedWeights(qf.Weights(st([w.embed for w in ws]), layers, st([w.norm for w in ws]),
                                     st([w.lm_head for w in ws]), st([w.lm_head_bias for w in ws])), len(ws))


# ---------------------------------------------------------------------------- ops


def linear(x: Tensor, w: Tensor, b: Tensor | None, K: int) -> Tensor:
    """x [K*n, ..., in] (run-major) by w [K, out, in] (+ b [K, out]) -> [K*n, ..., out]: one bmm."""
    shape = x.shape
    y = torch.matmul(x.reshape(K, -1, shape[-1]), w.transpose(1, 2))
    if b is not None:
        y = y + b[:, None, :]
    return y.reshape(*shape[:-1], w.shape[1])


def rms_norm(x: Tensor, w: Tensor, eps: float, K: int) -> Tensor:
    """As :func:`qf.rms_norm`, with run k's weight w[k] on run k's rows."""
    dtype = x.dtype
    h = x.to(torch.float32)
    h = (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)).to(dtype)
    return (w[:, None, :] * h.reshape(K, -1, h.shape[-1])).reshape(h.shape)


def embed(w: StackedWeights, geo: qf.Geometry, ids: Tensor) -> Tensor:
    """ids [K*n, L] -> [K*n, L, hidden]; one lookup per run (its own gradient scatter)."""
    parts = ids.reshape(w.K, -1, *ids.shape[1:])
    return torch.cat([F.embedding(parts[k], w.w.embed[k], geo.padding_idx) for k in range(w.K)])


def qkv(x: Tensor, lw: qf.LayerWeights, geo: qf.Geometry, cos: Tensor, sin: Tensor, K: int
        ) -> tuple[Tensor, Tensor, Tensor]:
    """x [R, L, hidden] -> q [R, H, L, D], k and v [R, n_kv, L, D] (normed, roped)."""
    h = rms_norm(x, lw.ln1, geo.eps, K)
    shape = (*h.shape[:-1], -1, geo.head_dim)
    q = linear(h, lw.wq, lw.bq, K).view(shape)
    k = linear(h, lw.wk, lw.bk, K).view(shape)
    v = linear(h, lw.wv, lw.bv, K).view(shape)
    if lw.q_norm is not None:
        q = rms_norm(q, lw.q_norm, geo.eps, K)
    if lw.k_norm is not None:
        k = rms_norm(k, lw.k_norm, geo.eps, K)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    return qf.apply_rope(q, cos, sin), qf.apply_rope(k, cos, sin), v


def after_attention(x: Tensor, att: Tensor, lw: qf.LayerWeights, geo: qf.Geometry, K: int) -> Tensor:
    """o_proj, residual, RMSNorm, SwiGLU MLP, residual (att [R, L, H*D])."""
    x = x + linear(att, lw.wo, lw.bo, K)
    h = rms_norm(x, lw.ln2, geo.eps, K)
    return x + linear(F.silu(linear(h, lw.w_gate, None, K)) * linear(h, lw.w_up, None, K), lw.w_down, None, K)


#: Compacting costs one copy of the KV cache; it pays once this many of a slice's rows are done.
MIN_ROWS = 4

_EXACT: dict[tuple, bool] = {}


def compaction_exact(sw: StackedWeights, rows: int, matmul: Any = torch.matmul) -> bool:
    """Whether dropping finished rows leaves every running row's bits as they are, on this
    machine, for these weights' products: each product of ``rows`` rows must give the rows of
    any window of m in [MIN_ROWS, rows) of them the same bits alone (its first and its last m
    rows are tried, so both the row count and a row's place change).

    Why a check and not a rule: which row counts and places a BLAS kernel rounds alike is the
    kernel's business. MKL on the AMD EPYCs measured here: every m >= 4 alike (so slices keep
    MIN_ROWS); MKL's AVX2 branch on an Intel Xeon: a row's bits follow the row count and its
    place in 6-row blocks, and for a 105-wide output most counts below 56 differ. Compaction
    is a speed-up that must change no bit (a run alone = the run in a bundle), so where the
    check fails every row decodes to the end. Deterministic inputs from a private generator
    (no draw from the runs' streams); once per process and shape set: 0.002 s on the Xeon, where
    the first window differs; where every window passes, 2 x (rows - MIN_ROWS) small products per
    product shape of the model."""
    layers = sw.w.layers
    shapes = sorted({(int(t.shape[-1]), int(t.shape[-2])) for lw in layers
                     for t in (lw.wq, lw.wk, lw.wv, lw.wo, lw.w_gate, lw.w_up, lw.w_down)}
                    | {(int(sw.w.lm_head.shape[-1]), int(sw.w.lm_head.shape[-2]))})
    key = (tuple(shapes), rows, torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(), matmul)
    if key not in _EXACT:
        g = torch.Generator().manual_seed(0)
        ok = True
        for i, o in shapes:
            x = torch.randn(1, rows, i, generator=g)
            wt = torch.randn(1, o, i, generator=g).transpose(1, 2)  # as linear(): a transposed view
            full = matmul(x, wt)
            for m in range(MIN_ROWS, rows):
                if any(not torch.equal(matmul(x[:, a:a + m].contiguous(), wt), full[:, a:a + m])
                       for a in (0, rows - m)):
                    ok = False
                    break
            if not ok:
                break
        _EXACT[key] = ok
    return _EXACT[key]


def _repack(act: Tensor, m: int, K: int, rows: int, done: Tensor, kc: Tensor, vc: Tensor
            ) -> tuple[Tensor, int, Tensor, Tensor]:
    """Drop finished rows from the decode batch when enough have finished.

    Returns the new ``(act, m, kc, vc)``: ``act`` [K*m'] maps compact rows to rows, every run's
    slice m' long (the most running rows of any run, at least :data:`MIN_ROWS`), padded with
    repeats of one of the run's own rows; ``kc``/``vc`` are the caches of those compact rows.

    Why the numbers do not change: a row's values never depend on the rows beside it, with one
    exception measured on torch 2.13's CPU with MKL on the AMD EPYCs: a matrix product of 1-3 rows
    takes another kernel than one of 4 or more, with other roundings. So a slice keeps at least
    4 rows, and every run's rows are bit for bit what they are uncompacted, alone or in a bundle
    (tests/engines/test_engine_stacked.py compares the two paths). Where a machine's products
    round rows otherwise (an Intel Xeon's), :func:`compaction_exact` keeps this from being called.
    """
    running = ~done.index_select(0, act)
    live = running.reshape(K, m).sum(1)
    m_new = max(MIN_ROWS, int(live.max()))
    if m - m_new < max(MIN_ROWS, m // 8):
        return act, m, kc, vc
    pick = []
    for k in range(K):
        idx = torch.nonzero(running[k * m:(k + 1) * m]).flatten() + k * m
        if idx.numel() == 0:
            idx = torch.tensor([k * m])
        pad = idx[-1:].expand(m_new - idx.numel())
        pick.append(torch.cat([idx, pad]))
    sel = torch.cat(pick)
    return act.index_select(0, sel), m_new, kc.index_select(1, sel), vc.index_select(1, sel)


# ---------------------------------------------------------------------------- generation


@torch.no_grad()
def generate_stacked(models: list[Any], prompts: list[list[list[int]]],
                     params: list[SamplingParams], width: int, *, eos_ids: list[int], pad_id: int,
                     max_batch_seqs: int = 256, prefill_tokens: int = 16384, kv_block: int = 16,
                     sync_every: int = 1, compact: bool = True) -> list[list[Rollout]]:
    """Sample ``params[k].n`` responses per prompt of ``prompts[k]`` from ``models[k]``, for all
    K runs at once; returns each run's rollouts ordered by prompt, then sample.

    The static engine's algorithm (:mod:`asymcli.engines.static`: prefill once per prompt,
    static KV cache, inverse-CDF sampling from one uniform per row), on the CPU, with the
    prompts left-padded to ``width`` (canonical: at least the longest prompt the runs can
    draw). The runs must ask for the same number of prompts, n, length and sampling mode;
    each run's noise comes from its own generator seeded with ``params[k].seed``.

    ``kv_block`` 16 and ``sync_every`` 1 are the CPU's settings (the static engine's 128 and
    32 serve CUDA graphs): attention reads the cache up to the step rounded to 16 slots, and
    decoding stops at the first step where every row is done (on the CPU the check costs
    nothing); together 40% less decode time at the testbed's shapes (docs/benchmarks.md).
    ``compact`` drops finished rows from the batch as they finish (:func:`_repack`), another
    30% of the generation at those shapes, with the same bits, where :func:`compaction_exact`
    says this machine's products allow it (``False``, or where they do not: every row decodes to
    the end, the reference the tests compare with).
    """
    K = len(models)
    p0 = params[0]
    for p in params:
        if (p.n, p.max_new_tokens, p.temperature, p.top_p) != (p0.n, p0.max_new_tokens, p0.temperature, p0.top_p):
            raise ValueError("runs of one stacked generate call need the same n, max_new_tokens, temperature, top_p")
    counts = {len(p) for p in prompts}
    if len(counts) != 1:
        raise ValueError(f"runs of one stacked generate call need the same number of prompts, got {sorted(counts)}")
    longest = max((len(x) for run in prompts for x in run), default=0)
    if longest > width:
        raise ValueError(f"prompt of {longest} tokens is wider than the canonical width {width}")
    n_prompts = counts.pop()
    flat = [(i, s) for i in range(n_prompts) for s in range(p0.n)]
    if not flat:
        return [[] for _ in range(K)]
    sw = stack_weights(models)
    geo = qf.geometry(models[0])
    gens = []
    for p in params:
        g = torch.Generator()
        g.manual_seed(p.seed)
        gens.append(g)
    chunk = max_batch_seqs if max_batch_seqs < 16 else max_batch_seqs // 16 * 16
    n_ctx = -(-(width + p0.max_new_tokens - 1) // kv_block) * kv_block
    cos, sin = qf.rope_table(models[0], n_ctx, torch.float32, torch.device("cpu"))
    out: list[list[Rollout]] = [[] for _ in range(K)]
    eos = torch.tensor(eos_ids, dtype=torch.long)
    for start in range(0, len(flat), chunk):
        part = flat[start:start + chunk]
        res = _chunk(sw, geo, prompts, part, p0, width, n_ctx, cos, sin, gens, eos, pad_id,
                     prefill_tokens, kv_block, sync_every, compact)
        for k in range(K):
            out[k].extend(res[k])
    return out


def _chunk(sw: StackedWeights, geo: qf.Geometry, prompts: list[list[list[int]]], part: list[tuple[int, int]],
           params: SamplingParams, P: int, n_ctx: int, cos: Tensor, sin: Tensor, gens: list[torch.Generator],
           eos: Tensor, pad_id: int, prefill_tokens: int, kv_block: int, sync_every: int,
           compact: bool) -> list[list[Rollout]]:
    K, w = sw.K, sw.w
    B = len(part)
    rows = _round_rows(B)
    compact = compact and compaction_exact(sw, rows)
    R = K * rows
    S = params.max_new_tokens
    mode = sampling_mode(params)
    temperature = torch.tensor(params.temperature or 1.0)
    top_p = torch.tensor(params.top_p)
    local: dict[int, int] = {}
    for pi, _ in part:
        local.setdefault(pi, len(local))
    U = len(local)
    src = torch.tensor([local[pi] for pi, _ in part], dtype=torch.long)  # row -> distinct prompt
    kc = torch.zeros((geo.n_layers, R, geo.n_kv, n_ctx, geo.head_dim))
    vc = torch.zeros_like(kc)
    tokens = torch.zeros((R, S), dtype=torch.long)
    logp = torch.zeros((R, S))
    plen = torch.ones(R, dtype=torch.long)  # padding rows: a 1-token "prompt" at slot P-1
    for k in range(K):
        lens = torch.tensor([len(prompts[k][pi]) for pi in local], dtype=torch.long)
        plen[k * rows: k * rows + B] = lens[src]
    start = P - plen
    # ---- prefill: each distinct prompt once per run, K*u prompts per forward
    logits_u = torch.empty((K, U, geo.vocab))
    per = max(1, prefill_tokens // P)
    j = torch.arange(P)
    order = list(local)
    for a in range(0, U, per):
        u = min(per, U - a)
        ids = torch.full((K, u, P), pad_id, dtype=torch.long)
        first = torch.empty((K, u), dtype=torch.long)
        for k in range(K):
            for i, pi in enumerate(order[a:a + u]):
                p = prompts[k][pi]
                ids[k, i, P - len(p):] = torch.tensor(p, dtype=torch.long)
                first[k, i] = P - len(p)
        first = first.reshape(K * u)
        pos = (j[None, :] - first[:, None]).clamp(min=0)
        valid = j[None, :] >= first[:, None]
        mask = ((valid[:, None, :] & (j[:, None] >= j[None, :])[None]) | torch.eye(P, dtype=torch.bool)[None])[:, None]
        c, s = cos[pos], sin[pos]
        x = embed(sw, geo, ids.reshape(K * u, P))
        # cache rows of this part's prompts: run k, row r holds prompt src[r]
        sel = [(r, int(src[r]) - a) for r in range(B) if a <= int(src[r]) < a + u]
        dst = torch.tensor([k * rows + r for k in range(K) for r, _ in sel], dtype=torch.long)
        loc = torch.tensor([k * u + i for k in range(K) for _, i in sel], dtype=torch.long)
        for layer, lw in enumerate(w.layers):
            q, kk, v = qkv(x, lw, geo, c, s, K)
            kc[layer, :, :, :P].index_copy_(0, dst, kk.index_select(0, loc))
            vc[layer, :, :, :P].index_copy_(0, dst, v.index_select(0, loc))
            att = F.scaled_dot_product_attention(q, qf.repeat_kv(kk, geo.group), qf.repeat_kv(v, geo.group),
                                                 attn_mask=mask, scale=geo.scaling)
            x = after_attention(x, att.transpose(1, 2).reshape(K * u, P, -1), lw, geo, K)
        h = rms_norm(x[:, -1:], w.norm, geo.eps, K)
        logits_u[:, a:a + u] = linear(h, w.lm_head, w.lm_head_bias, K).float().reshape(K, u, -1)
    uniform = torch.zeros(R)
    for k in range(K):
        uniform[k * rows:(k + 1) * rows].uniform_(generator=gens[k])
    first_logits = torch.cat([torch.cat([logits_u[k].index_select(0, src),
                                         torch.zeros((rows - B, geo.vocab))]) for k in range(K)])
    tok, lp = sample_tokens(first_logits, uniform, mode, temperature, top_p)
    live = torch.zeros(R, dtype=torch.bool)
    for k in range(K):
        live[k * rows: k * rows + B] = True
    tokens[:, 0] = torch.where(live, tok, torch.zeros_like(tok))
    logp[:, 0] = torch.where(live, lp, torch.zeros_like(lp))
    done = ~live | is_eos(tokens[:, 0], eos)
    # ---- decode, on the rows still running: `act` [K*m] maps compact row -> row, run k's
    # slice k*m:(k+1)*m holding its running rows (padded with repeats of one of its rows).
    act = torch.arange(R)
    m = rows
    for t in range(S - 1):
        if t and t % sync_every == 0:
            if bool(done.all()):
                break
            if compact:
                act, m, kc, vc = _repack(act, m, K, rows, done, kc, vc)
        if mode != GREEDY:
            for k in range(K):
                uniform[k * rows:(k + 1) * rows].uniform_(generator=gens[k])
        slot = P + t
        n_att = min(n_ctx, -(-(slot + 1) // kv_block) * kv_block)
        pos = plen.index_select(0, act) + t
        c, s = cos.index_select(0, pos)[:, None], sin.index_select(0, pos)[:, None]
        jj = torch.arange(n_att)
        mask = ((jj[None, :] >= start.index_select(0, act)[:, None]) & (jj[None, :] <= slot))[:, None, None, :]
        x = embed(sw, geo, tokens.index_select(0, act)[:, t:t + 1])
        for layer, lw in enumerate(w.layers):
            q, kk, v = qkv(x, lw, geo, c, s, K)
            kc[layer, :, :, slot] = kk[:, :, 0]
            vc[layer, :, :, slot] = v[:, :, 0]
            qg = q.reshape(K * m, geo.n_kv, geo.group, geo.head_dim)
            att = F.scaled_dot_product_attention(qg, kc[layer, :, :, :n_att], vc[layer, :, :, :n_att],
                                                 attn_mask=mask, scale=geo.scaling)
            x = after_attention(x, att.reshape(K * m, 1, -1), lw, geo, K)
        h = rms_norm(x[:, 0], w.norm, geo.eps, K)
        logits = linear(h, w.lm_head, w.lm_head_bias, K).float()
        new, lp = sample_tokens(logits, uniform.index_select(0, act), mode, temperature, top_p)
        # a row repeated as padding gets the same token twice: the writes agree
        tokens[act, t + 1] = new
        logp[act, t + 1] = lp
        done[act] |= is_eos(new, eos)
    eos_ids = eos.tolist()
    return [to_rollouts(tokens[k * rows: k * rows + B], logp[k * rows: k * rows + B], part, eos_ids)
            for k in range(K)]
