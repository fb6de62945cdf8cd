"""Split-KV decode attention in Triton, for the static engine's ``decode_attention="triton"``.

One decode step attends each row's G query heads (the heads sharing one KV head) to the
row's cache slots ``start[r] .. end`` (inclusive) of a static cache ``[R, n_kv, n_ctx, D]``.
SDPA's memory-efficient kernel treats such a step as a tiny prefill; this kernel is built
for it: the keys are cut into chunks of ``CHUNK`` slots, one program per (row, KV head,
chunk) reads its K/V block once for all G heads and keeps fp32 scores, and a few torch ops
merge the chunks' partial softmaxes exactly (a second, small kernel). The n samples of a
prompt read their prompt slots from one row (``leader``), which turns the repeated prompt
reads into L2 hits: prefix sharing at decode without a second cache layout. ``end`` is read on
the device, so the launch can be captured in a CUDA graph; ``n_att`` (the attended-slot
bucket) is the only host value.

Tested on the CPU through Triton's interpreter (``TRITON_INTERPRET=1``) against
:func:`reference`; it imports Triton lazily and only when asked for.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

CHUNK = 128  # key slots per program
# Key slots per inner iteration and warps per program. ptxas (Triton 3.6, sm_90a) reports
# 253 registers at 32/4 (2 programs per SM), 153 at 16/4, 96 at 8/2, no spills; 16/4 is
# the default until timed on a GPU (bench/rollout_bench.py's triton_b8w2 variant tries 8/2).
BLOCK_N = 16
NUM_WARPS = 4


def reference(q: Tensor, k: Tensor, v: Tensor, start: Tensor, end: Tensor, n_att: int, scale: float,
              leader: Tensor | None = None, p0: Tensor | None = None) -> Tensor:
    """Plain torch: q [R, n_kv, G, D], k/v [R, n_kv, n_ctx, D] -> [R, n_kv, G, D] (fp32 softmax)."""
    if leader is not None:  # slots < p0 come from the leader row
        slot = torch.arange(k.shape[2], device=k.device)[None, None, :, None]
        k = torch.where(slot < p0, k[leader], k)
        v = torch.where(slot < p0, v[leader], v)
    j = torch.arange(n_att, device=q.device)
    mask = (j[None, :] >= start[:, None]) & (j[None, :] <= end)
    s = torch.matmul(q.float(), k[:, :, :n_att].float().transpose(-1, -2)) * scale
    p = torch.softmax(s.masked_fill(~mask[:, None, None, :], float("-inf")), -1)
    return torch.matmul(p, v[:, :, :n_att].float()).to(q.dtype)


_KERNEL = None


def _kernel():
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    import triton
    import triton.language as tl

    @triton.jit
    def decode_chunks(Q, K, V, START, END, LEADER, P0, M_OUT, L_OUT, ACC_OUT,
                      s_qr, s_qh, s_qg, s_kr, s_kh, s_kn, s_vr, s_vh, s_vn,
                      n_kv, n_att, scale,
                      G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr,
                      CHUNK_: tl.constexpr, BLOCK: tl.constexpr):
        pid = tl.program_id(0)  # row * n_kv + kv head
        split = tl.program_id(1)
        n_split = tl.num_programs(1)
        r = pid // n_kv
        h = pid % n_kv
        start = tl.load(START + r)
        end = tl.load(END)
        # Prompt slots (< p0) are read from the row's group leader: the n samples of a prompt
        # then read the same addresses, side by side, and L2 serves all but the first.
        leader = tl.load(LEADER + r)
        p0 = tl.load(P0)
        offs_g = tl.arange(0, G_PAD)
        offs_d = tl.arange(0, D)
        g_ok = offs_g < G
        q = tl.load(Q + r * s_qr + h * s_qh + offs_g[:, None] * s_qg + offs_d[None, :],
                    mask=g_ok[:, None], other=0.0).to(tl.float32) * scale
        m_i = tl.full([G_PAD], float("-inf"), tl.float32)
        l_i = tl.zeros([G_PAD], tl.float32)
        acc = tl.zeros([G_PAD, D], tl.float32)
        lo = split * CHUNK_
        for n0 in range(0, CHUNK_, BLOCK):
            offs_n = lo + n0 + tl.arange(0, BLOCK)
            ok = (offs_n >= start) & (offs_n <= end) & (offs_n < n_att)
            row = tl.where(offs_n < p0, leader, r).to(tl.int64)
            k_ptr = K + row[:, None] * s_kr + h * s_kh + offs_n[:, None] * s_kn + offs_d[None, :]
            k = tl.load(k_ptr, mask=ok[:, None], other=0.0).to(tl.float32)
            s = tl.sum(q[:, None, :] * k[None, :, :], axis=2)  # [G_PAD, BLOCK]
            s = tl.where(ok[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, axis=1))
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)  # an all-masked block adds nothing
            alpha = tl.exp(m_i - m_use)
            p = tl.exp(s - m_use[:, None])
            v_ptr = V + row[:, None] * s_vr + h * s_vh + offs_n[:, None] * s_vn + offs_d[None, :]
            vv = tl.load(v_ptr, mask=ok[:, None], other=0.0).to(tl.float32)
            acc = acc * alpha[:, None] + tl.sum(p[:, :, None] * vv[None, :, :], axis=1)
            l_i = l_i * alpha + tl.sum(p, axis=1)
            m_i = m_new
        o = (pid * n_split + split) * G_PAD
        tl.store(M_OUT + o + offs_g, m_i)
        tl.store(L_OUT + o + offs_g, l_i)
        tl.store(ACC_OUT + (o + offs_g[:, None]) * D + offs_d[None, :], acc)

    @triton.jit
    def merge_chunks(M, L, ACC, OUT, n_split,
                     G: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, S_PAD: tl.constexpr):
        # Exact merge of the chunks' partial softmaxes of one (row, KV head); a chunk with no
        # valid slot has max -inf and weight 0, and every row has a valid slot somewhere.
        pid = tl.program_id(0)
        offs_s = tl.arange(0, S_PAD)
        offs_g = tl.arange(0, G_PAD)
        offs_d = tl.arange(0, D)
        s_ok = offs_s < n_split
        idx = pid * n_split * G_PAD + offs_s[:, None] * G_PAD + offs_g[None, :]  # [S_PAD, G_PAD]
        m = tl.load(M + idx, mask=s_ok[:, None], other=float("-inf"))
        l_ = tl.load(L + idx, mask=s_ok[:, None], other=0.0)
        m_all = tl.max(m, axis=0)
        m_all = tl.where(m_all == float("-inf"), 0.0, m_all)
        w = tl.exp(m - m_all[None, :])
        denom = tl.sum(w * l_, axis=0)
        acc = tl.load(ACC + idx[:, :, None] * D + offs_d[None, None, :], mask=s_ok[:, None, None], other=0.0)
        out = tl.sum(w[:, :, None] * acc, axis=0) / denom[:, None]
        tl.store(OUT + pid * G * D + offs_g[:, None] * D + offs_d[None, :], out.to(OUT.dtype.element_ty),
                 mask=(offs_g < G)[:, None])

    _KERNEL = (decode_chunks, merge_chunks)
    return _KERNEL


def decode_attention(q: Tensor, k: Tensor, v: Tensor, start: Tensor, end: Tensor, n_att: int, scale: float,
                     leader: Tensor, p0: Tensor) -> Tensor:
    """Attention of q [R, n_kv, G, D] over slots start[r]..end of k/v [R, n_kv, n_ctx, D].

    ``start`` [R] long, ``end`` a 0-dim long tensor (inclusive), ``n_att`` the slots that may
    be read (a bound, not a length). Slots below ``p0`` (0-dim long: the prompt region) are
    read from row ``leader[r]`` (long [R]; r itself where the row shares nothing), which must
    hold the same prompt K/V. Returns [R, n_kv, G, D] in q's dtype.
    """
    R, n_kv, G, D = q.shape
    if D & (D - 1) or k.stride(-1) != 1 or v.stride(-1) != 1:
        raise ValueError("triton decode attention needs a power-of-two head_dim and contiguous last dims")
    q = q.contiguous()
    g_pad = 1 << (G - 1).bit_length()
    n_split = math.ceil(n_att / CHUNK)
    part = (R * n_kv, n_split, g_pad)
    m = torch.empty(part, dtype=torch.float32, device=q.device)
    l_ = torch.empty(part, dtype=torch.float32, device=q.device)
    acc = torch.empty((*part, D), dtype=torch.float32, device=q.device)
    chunks, merge = _kernel()
    chunks[(R * n_kv, n_split)](
        q, k, v, start, end, leader, p0, m, l_, acc,
        q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2), n_kv, n_att, scale,
        G=G, G_PAD=g_pad, D=D, CHUNK_=CHUNK, BLOCK=BLOCK_N, num_warps=NUM_WARPS)
    out = torch.empty_like(q)
    merge[(R * n_kv,)](m, l_, acc, out, n_split, G=G, G_PAD=g_pad, D=D,
                       S_PAD=1 << (n_split - 1).bit_length(), num_warps=4)
    return out
