"""The Qwen2 / Qwen3 decoder as plain functions over the parameters of the HF module.

Both the static-cache rollout engine (:mod:`asymcli.engines.static`) and the packed
training path of :func:`asymcli.training.policy.response_logprobs` run this code instead of the
module's ``forward``. It reads the tensors of a ``Qwen3ForCausalLM`` / ``Qwen2ForCausalLM``
in place: :func:`collect_params` returns the module's own ``Parameter`` objects, so the
trainer's optimizer updates are seen without a copy and gradients flow to the module.

Each op mirrors the HF implementation (transformers 5.x ``modeling_qwen3.py``) so that the
two agree to rounding: RMSNorm computed in fp32 and cast back before the weight multiply,
q/k RMSNorm over the head dim (Qwen3 only), RoPE with ``rotate_half`` and the cos/sin
table of the module's own rotary embedding (so the config's ``rope_theta`` and static
rope scalings are honoured), GQA, SwiGLU MLP, tied or untied ``lm_head``. Qwen2 differs
only by the q/k/v biases and the absence of q/k norm; both come from the module.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, fields
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError

SUPPORTED_MODEL_TYPES = ("qwen2", "qwen3")
# Rope types whose cos/sin depend only on the position (not on the sequence length).
_STATIC_ROPE_TYPES = ("default", "linear", "yarn", "llama3")


def unwrap(model: Any) -> Any:
    """The HF module under a ``torch.compile`` wrapper (``_orig_mod``), else ``model``."""
    return getattr(model, "_orig_mod", model)


def unsupported_reason(model: Any) -> str | None:
    """Why this functional forward cannot run ``model``, or None when it can."""
    model = unwrap(model)
    cfg = getattr(model, "config", None)
    model_type = getattr(cfg, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model_type '{model_type}' is not one of {', '.join(SUPPORTED_MODEL_TYPES)}"
    base = getattr(model, "model", None)
    if base is None or not hasattr(base, "layers") or not hasattr(model, "lm_head"):
        return f"{type(model).__name__} is not a *ForCausalLM with .model.layers and .lm_head"
    layer_types = getattr(cfg, "layer_types", None) or []
    if getattr(cfg, "use_sliding_window", False) or any(t != "full_attention" for t in layer_types):
        return "sliding-window attention layers are not implemented"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"hidden_act '{cfg.hidden_act}' is not silu"
    rope_type = getattr(getattr(base, "rotary_emb", None), "rope_type", "default")
    if rope_type not in _STATIC_ROPE_TYPES:
        return f"rope type '{rope_type}' depends on the sequence length"
    return None


def check_supported(model: Any, engine: str = "static") -> None:
    """Raise :class:`ConfigError` (advising engine "hf") when ``model`` is not supported."""
    reason = unsupported_reason(model)
    if reason is not None:
        raise ConfigError(f"engine '{engine}' runs Qwen2/Qwen3 causal LMs only: {reason}; "
                          f"use train.engine 'hf' for this model")


@dataclass
class LayerWeights:
    """One decoder layer's tensors; biases and q/k norms are None where the model has none."""

    ln1: Tensor
    wq: Tensor
    bq: Tensor | None
    wk: Tensor
    bk: Tensor | None
    wv: Tensor
    bv: Tensor | None
    wo: Tensor
    bo: Tensor | None
    q_norm: Tensor | None
    k_norm: Tensor | None
    ln2: Tensor
    w_gate: Tensor
    w_up: Tensor
    w_down: Tensor

    def as_tuple(self) -> tuple[Tensor | None, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


@dataclass
class Weights:
    """All tensors the forward reads. ``lm_head is embed`` when the embeddings are tied."""

    embed: Tensor
    layers: list[LayerWeights]
    norm: Tensor
    lm_head: Tensor
    lm_head_bias: Tensor | None

    def tensors(self) -> list[Tensor]:
        """Every distinct tensor once (a tied head counts once)."""
        out: list[Tensor] = []
        seen: set[int] = set()
        for t in [self.embed, self.norm, self.lm_head, self.lm_head_bias,
                  *(x for lw in self.layers for x in lw.as_tuple())]:
            if t is not None and id(t) not in seen:
                seen.add(id(t))
                out.append(t)
        return out

    def map(self, fn: Callable[[Tensor], Tensor]) -> "Weights":
        """Apply ``fn`` to every tensor, once per distinct tensor (tied tensors stay tied)."""
        memo: dict[int, Tensor] = {}

        def m(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            if id(t) not in memo:
                memo[id(t)] = fn(t)
            return memo[id(t)]

        layers = [LayerWeights(*(m(t) for t in lw.as_tuple())) for lw in self.layers]
        return Weights(m(self.embed), layers, m(self.norm), m(self.lm_head), m(self.lm_head_bias))


@dataclass(frozen=True)
class Geometry:
    n_layers: int
    hidden: int
    n_heads: int
    n_kv: int
    head_dim: int
    vocab: int
    eps: float
    scaling: float
    padding_idx: int | None

    @property
    def group(self) -> int:
        return self.n_heads // self.n_kv


def _bias(linear: Any) -> Tensor | None:
    return getattr(linear, "bias", None)


def collect_params(model: Any) -> Weights:
    """The module's own parameters (same objects: in-place updates and grads are shared)."""
    model = unwrap(model)
    base = model.model
    layers = []
    for layer in base.layers:
        att, mlp = layer.self_attn, layer.mlp
        q_norm = getattr(att, "q_norm", None)
        k_norm = getattr(att, "k_norm", None)
        layers.append(LayerWeights(
            ln1=layer.input_layernorm.weight,
            wq=att.q_proj.weight, bq=_bias(att.q_proj),
            wk=att.k_proj.weight, bk=_bias(att.k_proj),
            wv=att.v_proj.weight, bv=_bias(att.v_proj),
            wo=att.o_proj.weight, bo=_bias(att.o_proj),
            q_norm=q_norm.weight if q_norm is not None else None,
            k_norm=k_norm.weight if k_norm is not None else None,
            ln2=layer.post_attention_layernorm.weight,
            w_gate=mlp.gate_proj.weight, w_up=mlp.up_proj.weight, w_down=mlp.down_proj.weight,
        ))
    head = model.lm_head
    return Weights(base.embed_tokens.weight, layers, base.norm.weight, head.weight, _bias(head))


def geometry(model: Any) -> Geometry:
    model = unwrap(model)
    cfg = model.config
    base = model.model
    att = base.layers[0].self_attn
    n_heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    eps = base.norm.variance_epsilon if hasattr(base.norm, "variance_epsilon") else cfg.rms_norm_eps
    return Geometry(
        n_layers=len(base.layers), hidden=cfg.hidden_size, n_heads=n_heads,
        n_kv=cfg.num_key_value_heads, head_dim=head_dim, vocab=base.embed_tokens.weight.shape[0],
        eps=float(eps), scaling=float(getattr(att, "scaling", head_dim**-0.5)),
        padding_idx=base.embed_tokens.padding_idx,
    )


def rope_table(model: Any, n_positions: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(cos, sin)``, each ``[n_positions, head_dim]`` in ``dtype``, from the module's rotary embedding.

    Using the module (its ``inv_freq`` buffer and ``attention_scaling``) rather than
    re-deriving the frequencies keeps rope_theta and the static rope scalings exact.
    """
    rotary = unwrap(model).model.rotary_emb
    probe = torch.empty(0, dtype=dtype, device=device)
    pos = torch.arange(n_positions, device=device).unsqueeze(0)
    cos, sin = rotary(probe, pos)
    return cos[0], sin[0]


# ---------------------------------------------------------------------------- ops


def rms_norm(x: Tensor, w: Tensor, eps: float) -> Tensor:
    # As HF: normalise in fp32, cast back to the input dtype, then scale.
    dtype = x.dtype
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return w * h.to(dtype)


def rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x [b, heads, L, D]; cos/sin [b, L, D] (or broadcastable)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return x * cos + rotate_half(x) * sin


def project_qkv(h: Tensor, geo: Geometry, cos: Tensor, sin: Tensor, wq: Tensor, bq: Tensor | None, wk: Tensor,
                bk: Tensor | None, wv: Tensor, bv: Tensor | None, q_norm: Tensor | None, k_norm: Tensor | None
                ) -> tuple[Tensor, Tensor, Tensor]:
    """h [b, L, hidden] (already normed) -> q [b, H, L, D], k and v [b, n_kv, L, D] (q, k roped)."""
    shape = (*h.shape[:-1], -1, geo.head_dim)
    q = F.linear(h, wq, bq).view(shape)
    k = F.linear(h, wk, bk).view(shape)
    v = F.linear(h, wv, bv).view(shape)
    if q_norm is not None:
        q = rms_norm(q, q_norm, geo.eps)
    if k_norm is not None:
        k = rms_norm(k, k_norm, geo.eps)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v


def attn_in(x: Tensor, geo: Geometry, cos: Tensor, sin: Tensor, ln1: Tensor, wq: Tensor, bq: Tensor | None,
            wk: Tensor, bk: Tensor | None, wv: Tensor, bv: Tensor | None, q_norm: Tensor | None,
            k_norm: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """The layer up to attention: input RMSNorm, q/k/v projections, q/k norm, rope."""
    return project_qkv(rms_norm(x, ln1, geo.eps), geo, cos, sin, wq, bq, wk, bk, wv, bv, q_norm, k_norm)


def attn_out(residual: Tensor, att: Tensor, geo: Geometry, wo: Tensor, bo: Tensor | None, ln2: Tensor,
             w_gate: Tensor, w_up: Tensor, w_down: Tensor) -> Tensor:
    """The layer after attention (att [b, L, H*D]): o_proj, residual, RMSNorm, SwiGLU MLP, residual."""
    x = residual + F.linear(att, wo, bo)
    h = rms_norm(x, ln2, geo.eps)
    return x + F.linear(F.silu(F.linear(h, w_gate)) * F.linear(h, w_up), w_down)


def attn_in_args(lw: LayerWeights) -> tuple[Tensor | None, ...]:
    return (lw.ln1, lw.wq, lw.bq, lw.wk, lw.bk, lw.wv, lw.bv, lw.q_norm, lw.k_norm)


def attn_out_args(lw: LayerWeights) -> tuple[Tensor | None, ...]:
    return (lw.wo, lw.bo, lw.ln2, lw.w_gate, lw.w_up, lw.w_down)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """[b, n_kv, L, D] -> [b, n_kv * n_rep, L, D], head h reading kv head h // n_rep (as HF)."""
    if n_rep == 1:
        return x
    b, n_kv, L, D = x.shape
    return x[:, :, None].expand(b, n_kv, n_rep, L, D).reshape(b, n_kv * n_rep, L, D)


@functools.lru_cache(maxsize=None)
def layer_halves(geo: Geometry) -> tuple[Callable[..., tuple[Tensor, Tensor, Tensor]], Callable[..., Tensor]]:
    """``(attn_in(x, cos, sin, *attn_in_args), attn_out(residual, att, *attn_out_args))`` for ``geo``.

    Flat tensor arguments so that one compiled graph serves every layer (the weights are
    inputs); the geometry is a closure constant, never a symbolic int. The rollout
    engine's decode step writes the KV cache and runs attention between the two.
    """

    def attn_in_(x: Tensor, cos: Tensor, sin: Tensor, *w: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        return attn_in(x, geo, cos, sin, *w)

    def attn_out_(residual: Tensor, att: Tensor, *w: Tensor | None) -> Tensor:
        return attn_out(residual, att, geo, *w)

    return attn_in_, attn_out_


def causal_layer(x: Tensor, cos: Tensor, sin: Tensor, lw: LayerWeights, geo: Geometry) -> Tensor:
    """One decoder layer over full right-padded sequences x [b, L, hidden] (training path).

    Causal attention without a mask: with right padding a real token only ever sees real
    tokens, so the padded tail changes nothing that is read back, and SDPA can take its
    fastest (flash) kernel. GQA goes through ``enable_gqa`` as HF's SDPA path does.
    """
    q, k, v = attn_in(x, geo, cos, sin, *attn_in_args(lw))
    a = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=geo.scaling,
                                       enable_gqa=geo.group > 1)
    return attn_out(x, a.transpose(1, 2).reshape(*x.shape[:-1], -1), geo, *attn_out_args(lw))


def embed(w: Weights, geo: Geometry, ids: Tensor) -> Tensor:
    # padding_idx only changes the gradient (no update of the pad row), as nn.Embedding does.
    return F.embedding(ids, w.embed, geo.padding_idx)


# ---------------------------------------------------------------------------- compile


class Compiled:
    """``torch.compile(fn)`` that falls back to ``fn`` (warning once) if compiling fails.

    Compilation happens at the first call, so a failure there is caught; ``dynamic=None``
    compiles the first shapes static and a dimension that later changes as symbolic.
    """

    def __init__(self, fn: Callable[..., Any], backend: str):
        self.eager = fn
        self.compiled = torch.compile(fn, backend=backend, dynamic=None)
        self.failed = False

    def __call__(self, *args: Any) -> Any:
        if not self.failed:
            try:
                return self.compiled(*args)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: run eagerly
                self.failed = True
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                              "running eagerly", stacklevel=2)
        return self.eager(*args)


_COMPILED: dict[tuple[Callable[..., Any], str], Compiled] = {}


def maybe_compiled(fn: Callable[..., Any], compile: bool | str) -> Callable[..., Any]:
    """``fn`` itself, or its cached :class:`Compiled` (True: inductor, or a backend name)."""
    if not compile:
        return fn
    backend = "inductor" if compile is True else str(compile)
    key = (fn, backend)
    if key not in _COMPILED:
        _COMPILED[key] = Compiled(fn, backend)
    return _COMPILED[key]
