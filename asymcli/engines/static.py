"""Static-KV-cache rollout engine ("static") for Qwen2 / Qwen3 on plain torch.

HF ``generate`` spends an RLVR step's rollout time on Python and per-step launches; this
backend runs the same weights through :mod:`asymcli.engines.qwen_forward` with:

- **Weights in place.** The forward reads the tensors of the trainer's HF module. When the
  engine computes in the module's dtype they are the module's own storage (no copy at all:
  optimizer steps are seen at once). When the module keeps fp32 master weights on a GPU the
  engine computes in bf16 from one persistent bf16 shadow per tensor, refreshed *in place*
  by :meth:`StaticEngine.update_weights` (which the trainer calls after every update), so
  addresses never change and captured CUDA graphs stay valid. A module whose tensors moved
  (``.to()``, a new model) is re-bound automatically at the next ``generate``.
- **Static cache, prefill once per prompt.** One ``[layers, rows, kv_heads, n_ctx, head_dim]``
  K and V buffer per batch geometry. Prompts are left-aligned to a common width P, so the
  t-th generated token of every row sits in the same slot P + t. Each distinct prompt is
  prefilled once (batched, SDPA with a causal + padding mask) and its K/V is copied into
  the slots of its n samples; the first token of each sample is drawn from that one set of
  logits.
- **Decode without host syncs.** A decode step reads its inputs from device buffers (step
  index, previous token, per-row start slot and prompt length, uniform noise) and writes
  token, log-prob and a done flag back to device buffers, so the host loop only launches.
  It checks "all rows done" every ``sync_every`` steps (the only sync), and copies the
  results once at the end. Finished rows keep decoding (masked out afterwards) until then.
- **CUDA graphs.** On CUDA the step is captured once per (attended-length bucket, sampling
  mode) for the batch geometry, before the prefill, in a shared memory pool, and replayed.
  The attended length is the prompt width plus the step, rounded up to ``kv_block`` slots,
  so early steps do not read the whole cache. Within the step, the two halves of each layer
  around attention (norms, projections, rope, SwiGLU) are ``torch.compile``d on CUDA, which
  fuses their elementwise work into a few kernels. On the CPU the very same step function
  runs eagerly: the CPU tests exercise the code that the graphs capture.
- **Attention** needs no flash-attn: prefill is torch SDPA with a mask; decode treats the G
  query heads sharing a KV head as G query rows of one KV head (GQA without copying K/V),
  through SDPA (default), a matmul softmax, or a split-KV Triton kernel (``decode_attention``;
  it reads a row's prompt slots from the first sample of its prompt, so the n samples'
  repeated prompt reads hit L2).
- **Sampling on device.** Temperature, then top-p (sort only when top_p < 1), then inverse-CDF
  sampling from one uniform per row drawn from a ``torch.Generator`` seeded by
  ``params.seed``. HF's greedy convention for log-probs (raw logits) is kept.

Limits: Qwen2/Qwen3 only (anything else raises, advising engine "hf"); no continuous batching
(a batch decodes until its longest row ends or all rows are done); the noise is per row, so
the same seed with a different batch composition gives different samples.
"""

from __future__ import annotations

import functools
import gc
import warnings
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from . import qwen_forward as qf
from .base import Rollout, RolloutEngine, SamplingParams, register_engine
from .decode_attention import decode_attention as triton_decode

GREEDY, SAMPLE, TOP_P = "greedy", "sample", "top_p"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# ---------------------------------------------------------------------------- sampling


def sampling_mode(params: SamplingParams) -> str:
    if params.temperature == 0:
        return GREEDY
    return TOP_P if params.top_p < 1 else SAMPLE


def _inverse_cdf(logz: Tensor, u: Tensor) -> Tensor:
    """Index [R, 1] drawn from log-probs logz [R, V] with uniforms u [R] in [0, 1)."""
    cdf = logz.exp().cumsum(-1)
    total = cdf[:, -1:].contiguous()
    idx = torch.searchsorted(cdf, u.unsqueeze(1) * total, right=True)
    # u * total may round up to total: clamp to the first index that reaches it (a token
    # of positive probability), never past the end or onto a zero-probability tail.
    return torch.minimum(idx, torch.searchsorted(cdf, total, right=False))


def sample_tokens(logits: Tensor, u: Tensor, mode: str, temperature: Tensor, top_p: Tensor
                  ) -> tuple[Tensor, Tensor]:
    """Draw one token per row of fp32 ``logits`` [R, V].

    Returns ``(tokens [R] long, logprobs [R] float32)``, the log-probability under the
    distribution sampled from: temperature-scaled and top-p-truncated logits, renormalised
    (as HF's ``log_softmax(scores)``); for greedy, of the raw logits. ``temperature`` and
    ``top_p`` are 0-dim device tensors so a captured graph serves every value.
    """
    if mode == GREEDY:
        tok = logits.argmax(-1, keepdim=True)
        return tok.squeeze(1), torch.log_softmax(logits, -1).gather(1, tok).squeeze(1)
    z = logits / temperature
    if mode == SAMPLE:
        logz = torch.log_softmax(z, -1)
        idx = _inverse_cdf(logz, u)
        return idx.squeeze(1), logz.gather(1, idx).squeeze(1)
    # top-p: keep the smallest prefix of the sorted distribution whose mass reaches top_p
    # (a token stays if the mass strictly before it is < top_p; the top token always stays).
    zs, order = z.sort(-1, descending=True)
    ps = torch.softmax(zs, -1)
    keep = (ps.cumsum(-1) - ps) < top_p
    logz = torch.log_softmax(zs.masked_fill(~keep, float("-inf")), -1)
    idx = _inverse_cdf(logz, u)
    return order.gather(1, idx).squeeze(1), logz.gather(1, idx).squeeze(1)


def default_eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Stop tokens: the model's generation config's, else the tokenizer's EOS (none if neither has one)."""
    gen_cfg = getattr(qf.unwrap(model), "generation_config", None)
    eos = getattr(gen_cfg, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    return [int(e) for e in (list(eos) if isinstance(eos, (list, tuple)) else ([] if eos is None else [eos]))]


def is_eos(tok: Tensor, eos: Tensor) -> Tensor:
    """Whether each token of ``tok`` [R] is one of ``eos`` [E] (all False without stop tokens)."""
    if eos.numel() == 0:
        return torch.zeros_like(tok, dtype=torch.bool)
    return (tok[:, None] == eos[None, :]).any(-1)


def to_rollouts(tokens: Tensor, logp: Tensor, chunk: list[tuple[int, int]], eos_ids: list[int]) -> list[Rollout]:
    """Rollouts of decoded rows (``tokens``/``logp`` [B, S] on the CPU, row r = ``chunk[r]`` =
    (prompt, sample)), each cut after its first stop token ("stop"), else full length ("length")."""
    B, S = tokens.shape
    if eos_ids:
        hit = torch.isin(tokens, torch.tensor(eos_ids))
        ends = torch.where(hit.any(1), hit.int().argmax(1) + 1, S).tolist()
        stops = hit.any(1).tolist()
    else:
        ends, stops = [S] * B, [False] * B
    return [Rollout(pi, si, tokens[r, : ends[r]].tolist(), logp[r, : ends[r]].tolist(),
                    "stop" if stops[r] else "length")
            for r, (pi, si) in enumerate(chunk)]


# ---------------------------------------------------------------------------- buffers


def _round_rows(b: int) -> int:
    """Batch rows for b sequences: a power of two up to 8, then a multiple of 16 (graph buckets)."""
    if b <= 8:
        return 1 << (b - 1).bit_length()
    return -(-b // 16) * 16


class _Workspace:
    """Static device buffers of one batch geometry; CUDA graphs capture their addresses."""

    def __init__(self, geo: qf.Geometry, rows: int, n_ctx: int, n_new: int, dtype: torch.dtype,
                 device: torch.device, eos: list[int], cos: Tensor, sin: Tensor):
        self.rows, self.n_ctx, self.n_new = rows, n_ctx, n_new
        shape = (geo.n_layers, rows, geo.n_kv, n_ctx, geo.head_dim)
        # Zeros, not empty: masked slots are multiplied by a zero weight, and 0 * NaN = NaN.
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.cos, self.sin = cos, sin  # [n_ctx, head_dim] rope table
        self.tokens = torch.zeros((rows, n_new), dtype=torch.long, device=device)
        self.logp = torch.zeros((rows, n_new), dtype=torch.float32, device=device)
        self.done = torch.ones(rows, dtype=torch.bool, device=device)
        self.start = torch.zeros(rows, dtype=torch.long, device=device)  # first valid slot of a row
        self.plen = torch.ones(rows, dtype=torch.long, device=device)  # prompt length = position of token 0
        self.leader = torch.arange(rows, device=device)  # first row holding the same prompt
        self.p0 = torch.zeros((), dtype=torch.long, device=device)  # slot of generated token 0 (= P)
        self.step = torch.zeros((), dtype=torch.long, device=device)  # t: the step feeds token t
        self.uniform = torch.zeros(rows, dtype=torch.float32, device=device)
        self.temperature = torch.ones((), dtype=torch.float32, device=device)
        self.top_p = torch.ones((), dtype=torch.float32, device=device)
        self.eos = torch.tensor(eos, dtype=torch.long, device=device)
        self.runners: dict[tuple[int, str], Callable[[], None]] = {}  # (attended slots, mode)
        self.pool: Any = None  # CUDA graph memory pool shared by this geometry's graphs

    def nbytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()

    def reset_for_capture(self, p0: int) -> None:
        # Valid indices for the warm-up run that precedes a capture; the prefill that follows
        # overwrites every buffer a later step reads before reading it.
        self.p0.fill_(p0)
        self.step.zero_()
        self.start.zero_()
        self.plen.fill_(1)


# ---------------------------------------------------------------------------- engine


class StaticEngine(RolloutEngine):
    """Rollouts for Qwen2/Qwen3 from a static KV cache, CUDA-graphed decode on GPUs.

    Args (all optional):
        dtype: compute dtype: "auto" (bf16 for an fp32 module on CUDA, else the module's
            dtype), "model", "bfloat16", "float16" or "float32". When it differs from the
            module's dtype the engine keeps one shadow copy, refreshed by ``update_weights``.
        max_batch_seqs: most sequences decoded together (more are run in chunks).
        kv_cache_gib: GPU memory for the KV cache (default: half the free memory at the call).
        kv_block: attended-length bucket, in cache slots (also one CUDA graph per bucket).
        cuda_graphs: capture the decode step on CUDA (False: eager, for debugging).
        sync_every: decode steps between "all rows done?" checks (host syncs).
        prefill_tokens: padded prompt tokens per prefill forward.
        decode_attention: "sdpa" (default), "matmul" (HF-eager-like math) or "triton" (the
            split-KV kernel of :mod:`asymcli.engines.decode_attention`, CUDA only).
        compile: ``torch.compile`` the two halves of a decode layer around attention (fuses
            the norms, rope and SwiGLU into a few kernels; default: on CUDA only). A backend
            name picks another backend; a compilation failure falls back to eager.
        eos_token_ids: stop tokens (default: the generation config's, else the tokenizer's);
            an empty list never stops early (benchmarks).
    """

    name = "static"

    def __init__(self, model: Any, tokenizer: Any, *, dtype: str = "auto", max_batch_seqs: int = 256,
                 kv_cache_gib: float | None = None, kv_block: int = 128, cuda_graphs: bool = True,
                 sync_every: int = 32, prefill_tokens: int = 16384, decode_attention: str = "sdpa",
                 eos_token_ids: list[int] | None = None, compile: bool | str | None = None, **_: Any):
        qf.check_supported(model)
        if dtype not in ("auto", "model", *_DTYPES):
            raise ConfigError(f"static engine dtype must be auto, model or one of {', '.join(_DTYPES)}; got '{dtype}'")
        if decode_attention not in ("sdpa", "matmul", "triton"):
            raise ConfigError(f"static engine decode_attention must be 'sdpa', 'matmul' or 'triton'; "
                              f"got '{decode_attention}'")
        if decode_attention == "triton":
            import importlib.util
            import os

            on_cuda = qf.collect_params(model).embed.device.type == "cuda"
            if importlib.util.find_spec("triton") is None or not (on_cuda or os.environ.get("TRITON_INTERPRET") == "1"):
                raise ConfigError("static engine decode_attention 'triton' needs Triton and a CUDA model "
                                  "(or TRITON_INTERPRET=1); use 'sdpa'")
        for name, value in (("max_batch_seqs", max_batch_seqs), ("kv_block", kv_block),
                            ("sync_every", sync_every), ("prefill_tokens", prefill_tokens)):
            if value < 1:
                raise ConfigError(f"static engine {name} must be >= 1, got {value}")
        self.tokenizer = tokenizer
        self.dtype_option = dtype
        self.max_batch_seqs = max_batch_seqs
        self.kv_cache_gib = kv_cache_gib
        self.kv_block = kv_block
        self.cuda_graphs = cuda_graphs
        self.sync_every = sync_every
        self.prefill_tokens = prefill_tokens
        self.decode_attention = decode_attention
        self.compile = compile
        self.eos_ids = ([int(e) for e in eos_token_ids] if eos_token_ids is not None
                        else default_eos_ids(model, tokenizer))
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0))
        self._ws: _Workspace | None = None
        self._graph_failed: set[str] = set()
        self._emulate_capture = False  # tests: run the capture path (warm-up + replay) on the CPU
        self._bind(model)

    # ------------------------------------------------------------------ weights

    def _compute_dtype(self, param_dtype: torch.dtype, device: torch.device) -> torch.dtype:
        if self.dtype_option == "auto":
            return torch.bfloat16 if device.type == "cuda" and param_dtype == torch.float32 else param_dtype
        if self.dtype_option == "model":
            return param_dtype
        return _DTYPES[self.dtype_option]

    @staticmethod
    def _ptrs(w: qf.Weights) -> list[int]:
        return [t.data_ptr() for t in w.tensors()]

    def _bind(self, model: Any) -> None:
        qf.check_supported(model)
        old = self._ptrs(self.w) if hasattr(self, "w") else None
        self.model = model
        self.geo = qf.geometry(model)
        params = qf.collect_params(model)
        self.device = params.embed.device
        self.dtype = self._compute_dtype(params.embed.dtype, self.device)
        self.shadow = any(t.dtype != self.dtype for t in params.tensors())
        if self.shadow:
            self.w = params.map(lambda t: t.detach().to(self.dtype, copy=True))
        else:
            self.w = params.map(lambda t: t.detach())  # views of the module's storage
        self._param_ptrs = self._ptrs(params)
        self._layer_args = [(qf.attn_in_args(lw), qf.attn_out_args(lw)) for lw in self.w.layers]
        compile_ = self.device.type == "cuda" if self.compile is None else self.compile
        self._halves = tuple(qf.maybe_compiled(f, compile_) for f in qf.layer_halves(self.geo))
        if old is not None and old != self._ptrs(self.w):
            self._drop_graphs()
        if self._ws is not None and self._ws.k.device != self.device:
            self._free_workspace()

    def update_weights(self, model: Any, weights: Any = None) -> None:
        """Sample from ``model``'s current weights.

        Same dtype: nothing to copy (the engine reads the module's tensors); a different
        module is re-bound. Shadow (e.g. fp32 master weights, bf16 engine): the shadow
        tensors are overwritten in place, so captured CUDA graphs remain valid.
        """
        qf.check_supported(model)
        params = qf.collect_params(model)
        src, dst = params.tensors(), self.w.tensors()
        same_layout = len(src) == len(dst) and all(
            a.shape == b.shape and a.device == b.device for a, b in zip(src, dst))
        if self.shadow and same_layout and self._compute_dtype(params.embed.dtype, self.device) == self.dtype:
            with torch.no_grad():
                for d, s in zip(dst, src):
                    d.copy_(s)
            self.model = model
            self._param_ptrs = self._ptrs(params)
            return
        self._bind(model)

    def _refresh(self) -> None:
        # The module's tensors were re-allocated (model.to(), load into a new module): re-bind.
        if self._ptrs(qf.collect_params(self.model)) != self._param_ptrs:
            self.update_weights(self.model)

    def _drop_graphs(self) -> None:
        if self._ws is not None:
            self._ws.runners.clear()
            self._ws.pool = None

    def _free_workspace(self) -> None:
        self._ws = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def close(self) -> None:
        self._free_workspace()

    # ------------------------------------------------------------------ generate

    @torch.no_grad()
    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[Rollout]:
        for i, p in enumerate(prompt_ids):
            if len(p) == 0:
                raise ConfigError(f"prompt {i} is empty: the static engine needs at least one prompt token")
        self._refresh()
        flat = [(i, s) for i in range(len(prompt_ids)) for s in range(params.n)]
        if not flat:
            return []
        n_ctx = max(len(p) for p in prompt_ids) + params.max_new_tokens
        chunk = self._rows_per_chunk(n_ctx)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(params.seed)
        out: list[Rollout] = []
        with torch.autocast(self.device.type, enabled=False):
            for start in range(0, len(flat), chunk):
                out.extend(self._generate_chunk(prompt_ids, flat[start:start + chunk], params, gen))
        return out

    def _rows_per_chunk(self, n_ctx: int) -> int:
        cap = self.max_batch_seqs
        if self.device.type == "cuda":
            g = self.geo
            itemsize = torch.empty((), dtype=self.dtype).element_size()
            per_row = 2 * g.n_layers * g.n_kv * g.head_dim * itemsize * self._ctx_slots(n_ctx)
            if self.kv_cache_gib is not None:
                budget = self.kv_cache_gib * 2**30
            else:
                free, _ = torch.cuda.mem_get_info(self.device)
                budget = 0.5 * (free + (self._ws.nbytes() if self._ws is not None else 0))
            cap = min(cap, max(1, int(budget // per_row)))
        return cap if cap < 16 else cap // 16 * 16

    def _ctx_slots(self, n: int) -> int:
        return -(-n // self.kv_block) * self.kv_block

    def _bucket(self, n: int, ws: _Workspace) -> int:
        return min(ws.n_ctx, self._ctx_slots(n))

    def _workspace(self, rows: int, n_ctx: int, n_new: int) -> _Workspace:
        ws = self._ws
        if ws is not None and ws.rows == rows and ws.n_ctx >= n_ctx and ws.n_new >= n_new:
            return ws
        if ws is not None:
            n_ctx, n_new = max(n_ctx, ws.n_ctx), max(n_new, ws.n_new)
            self._free_workspace()
        n_ctx = self._ctx_slots(n_ctx)
        cos, sin = qf.rope_table(self.model, n_ctx, self.dtype, self.device)
        self._ws = _Workspace(self.geo, rows, n_ctx, n_new, self.dtype, self.device, self.eos_ids, cos, sin)
        return self._ws

    def _graphs_on(self, mode: str) -> bool:
        if self._emulate_capture:
            return True
        return self.device.type == "cuda" and self.cuda_graphs and mode not in self._graph_failed

    def _generate_chunk(self, prompt_ids: list[list[int]], chunk: list[tuple[int, int]],
                        params: SamplingParams, gen: torch.Generator) -> list[Rollout]:
        B = len(chunk)
        rows = _round_rows(B)
        local: dict[int, int] = {}
        for pi, _ in chunk:
            local.setdefault(pi, len(local))
        prompts = [prompt_ids[pi] for pi in local]
        src = [local[pi] for pi, _ in chunk]  # row -> distinct prompt of this chunk
        P = max(len(p) for p in prompts)
        S = params.max_new_tokens
        # Slots 0..P-1 hold the prompt, P+t the t-th generated token; the last one is never fed.
        ws = self._workspace(rows, P + S - 1, S)
        mode = sampling_mode(params)
        ws.temperature.fill_(params.temperature or 1.0)
        ws.top_p.fill_(params.top_p)
        if self._graphs_on(mode):
            ws.reset_for_capture(P)
            for t in range(S - 1):
                key = (self._bucket(P + t + 1, ws), mode)
                if key not in ws.runners:
                    ws.runners[key] = self._capture(ws, *key)
        self._prefill(ws, prompts, src, P, mode, gen)
        self._decode(ws, mode, P, S, gen)
        return to_rollouts(ws.tokens[:B, :S].cpu(), ws.logp[:B, :S].cpu(), chunk, self.eos_ids)

    # ------------------------------------------------------------------ prefill

    def _prefill(self, ws: _Workspace, prompts: list[list[int]], src: list[int], P: int, mode: str,
                 gen: torch.Generator) -> None:
        """Run each distinct prompt once, copy its K/V into its samples' rows, draw token 0."""
        geo, w, dev = self.geo, self.w, self.device
        B, U = len(src), len(prompts)
        lens = torch.tensor([len(p) for p in prompts], dtype=torch.long)
        src_t = torch.tensor(src, dtype=torch.long)
        plen = torch.ones(ws.rows, dtype=torch.long)  # padding rows: a 1-token "prompt" at slot P-1
        plen[:B] = lens[src_t]
        ws.plen.copy_(plen)
        ws.start.copy_(P - plen)
        leader = torch.arange(ws.rows)
        first: dict[int, int] = {}
        for r, prompt in enumerate(src):
            leader[r] = first.setdefault(prompt, r)
        ws.leader.copy_(leader)
        ws.p0.fill_(P)
        logits_u = torch.empty((U, geo.vocab), dtype=torch.float32, device=dev)
        per = max(1, self.prefill_tokens // P)
        j = torch.arange(P)
        for a in range(0, U, per):
            part = prompts[a:a + per]
            u = len(part)
            ids = torch.full((u, P), self.pad_id, dtype=torch.long)
            for i, p in enumerate(part):
                ids[i, P - len(p):] = torch.tensor(p, dtype=torch.long)
            first = P - lens[a:a + u]
            pos = (j[None, :] - first[:, None]).clamp(min=0)
            valid = j[None, :] >= first[:, None]  # [u, P] real prompt slots
            # Causal over real keys; a padding query also sees itself so no row is all-masked.
            mask = (valid[:, None, :] & (j[:, None] >= j[None, :])[None]) | torch.eye(P, dtype=torch.bool)[None]
            mask = mask[:, None].to(dev)
            rows_sel = [r for r, s in enumerate(src) if a <= s < a + u]
            dst = torch.tensor(rows_sel, dtype=torch.long, device=dev)
            loc = torch.tensor([src[r] - a for r in rows_sel], dtype=torch.long, device=dev)
            pos = pos.to(dev)
            cos, sin = ws.cos[pos], ws.sin[pos]
            x = qf.embed(w, geo, ids.to(dev))
            for layer, (w_in, w_out) in enumerate(self._layer_args):
                q, k, v = qf.attn_in(x, geo, cos, sin, *w_in)
                ws.k[layer, :, :, :P].index_copy_(0, dst, k.index_select(0, loc))
                ws.v[layer, :, :, :P].index_copy_(0, dst, v.index_select(0, loc))
                att = F.scaled_dot_product_attention(q, qf.repeat_kv(k, geo.group), qf.repeat_kv(v, geo.group),
                                                     attn_mask=mask, scale=geo.scaling)
                x = qf.attn_out(x, att.transpose(1, 2).reshape(u, P, -1), geo, *w_out)
            h = qf.rms_norm(x[:, -1], w.norm, geo.eps)  # left-aligned: every prompt ends at slot P-1
            logits_u[a:a + u] = F.linear(h, w.lm_head, w.lm_head_bias).float()
        ws.uniform.uniform_(generator=gen)
        tok, lp = sample_tokens(logits_u.index_select(0, src_t.to(dev)), ws.uniform[:B], mode,
                                ws.temperature, ws.top_p)
        ws.tokens[:, 0] = 0
        ws.tokens[:B, 0] = tok
        ws.logp[:B, 0] = lp
        ws.done.fill_(True)
        ws.done[:B] = self._is_eos(ws, tok)

    # ------------------------------------------------------------------ decode

    def _is_eos(self, ws: _Workspace, tok: Tensor) -> Tensor:
        return is_eos(tok, ws.eos)

    def _decode(self, ws: _Workspace, mode: str, P: int, S: int, gen: torch.Generator) -> None:
        for t in range(S - 1):
            if t and t % self.sync_every == 0 and bool(ws.done.all()):
                break  # the only host sync of the loop
            ws.step.fill_(t)
            if mode != GREEDY:
                ws.uniform.uniform_(generator=gen)
            key = (self._bucket(P + t + 1, ws), mode)
            runner = ws.runners.get(key)
            if runner is None:
                runner = ws.runners[key] = functools.partial(self._step, ws, *key)
            runner()

    def _step(self, ws: _Workspace, n_att: int, mode: str) -> None:
        """One decode step for every row: feed token t at slot P+t, draw token t+1.

        Reads and writes only ``ws`` buffers (no host values besides the bucket size and the
        mode), so it can be captured in a CUDA graph. Re-running it with the same buffers
        writes the same values (the capture's warm-up run relies on this).
        """
        geo, w = self.geo, self.w
        rows = ws.rows
        t = ws.step.view(1)
        slot = ws.p0 + ws.step
        tok = ws.tokens.index_select(1, t)  # [rows, 1]
        pos = ws.plen + ws.step
        cos, sin = ws.cos.index_select(0, pos)[:, None], ws.sin.index_select(0, pos)[:, None]
        mask = None
        if self.decode_attention != "triton":  # the kernel masks by start/slot itself
            j = torch.arange(n_att, device=ws.k.device)
            mask = ((j[None, :] >= ws.start[:, None]) & (j[None, :] <= slot))[:, None, None, :]
        x = qf.embed(w, geo, tok)  # [rows, 1, hidden]
        attn_in, attn_out = self._halves
        for layer, (w_in, w_out) in enumerate(self._layer_args):
            q, k, v = attn_in(x, cos, sin, *w_in)
            ws.k[layer].index_copy_(2, slot.view(1), k)
            ws.v[layer].index_copy_(2, slot.view(1), v)
            keys, values = ws.k[layer, :, :, :n_att], ws.v[layer, :, :, :n_att]
            # GQA: the G query heads of a KV head become G query rows against that head.
            qg = q.reshape(rows, geo.n_kv, geo.group, geo.head_dim)
            if self.decode_attention == "sdpa":
                att = F.scaled_dot_product_attention(qg, keys, values, attn_mask=mask, scale=geo.scaling)
            elif self.decode_attention == "triton":
                att = triton_decode(qg, ws.k[layer], ws.v[layer], ws.start, slot, n_att, geo.scaling,
                                    ws.leader, ws.p0)
            else:
                scores = torch.matmul(qg, keys.transpose(-1, -2)) * geo.scaling
                probs = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1, dtype=torch.float32)
                att = torch.matmul(probs.to(values.dtype), values)
            x = attn_out(x, att.reshape(rows, 1, -1), *w_out)
        h = qf.rms_norm(x[:, 0], w.norm, geo.eps)
        logits = F.linear(h, w.lm_head, w.lm_head_bias).float()
        new, lp = sample_tokens(logits, ws.uniform, mode, ws.temperature, ws.top_p)
        nxt = (ws.step + 1).view(1)
        ws.tokens.index_copy_(1, nxt, new[:, None])
        ws.logp.index_copy_(1, nxt, lp[:, None])
        ws.done.logical_or_(self._is_eos(ws, new))

    def _capture(self, ws: _Workspace, n_att: int, mode: str) -> Callable[[], None]:
        """A CUDA graph of one decode step (eager step where graphs are off or failed)."""
        step = functools.partial(self._step, ws, n_att, mode)
        if self.device.type != "cuda":  # CPU emulation for tests: the warm-up, then eager "replays"
            step()
            return step
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):  # warm-up: lazy inits (cuBLAS, SDPA) outside the capture
                step()
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=ws.pool):
                step()
        except RuntimeError as exc:
            warnings.warn(f"static engine: CUDA graph capture failed for mode '{mode}' "
                          f"({str(exc).splitlines()[0]}); decoding it eagerly", stacklevel=2)
            self._graph_failed.add(mode)
            return step
        if ws.pool is None:
            ws.pool = graph.pool()
        return graph.replay  # the bound method keeps the graph alive as long as the runner


@register_engine("static")
def _make(model: Any, tokenizer: Any, **kwargs: Any) -> StaticEngine:
    return StaticEngine(model, tokenizer, **kwargs)
