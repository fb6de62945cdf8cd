"""The static-cache engine's own logic, on the CPU (the CUDA path runs the same step code).

Greedy equality with HF ``generate`` (Qwen3 and Qwen2, ragged prompts, EOS), the sampling
distribution (chi-square of first- and second-token frequencies against HF's probabilities),
EOS stops with per-row lengths, prefill sharing, the emulated CUDA-graph capture path,
chunking, weight binding (zero-copy and bf16 shadow) and the unsupported-model error.
"""

from __future__ import annotations

import importlib.util
import math
from collections import Counter

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from asymcli.engines.base import SamplingParams, make_engine
from asymcli.engines.static import StaticEngine, sample_tokens
from asymcli.errors import ConfigError

from .test_engine_hf import EOS, PROMPTS, TOKENIZER, VOCAB, tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _static(model, **kw) -> StaticEngine:
    return make_engine("static", model, TOKENIZER, kv_block=8, **kw)


def _ids(outs):
    return [o.token_ids for o in outs]


@pytest.mark.parametrize("kind", ["qwen3", "qwen2"])
def test_greedy_equals_hf_generate(kind):
    model = tiny_model(kind)
    p = SamplingParams(temperature=0, max_new_tokens=24, n=2)
    hf = make_engine("hf", model, TOKENIZER).generate(PROMPTS, p)
    st = _static(model).generate(PROMPTS, p)
    assert _ids(st) == _ids(hf)
    assert [o.finish_reason for o in st] == [o.finish_reason for o in hf]
    for a, b in zip(st, hf):
        torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4, rtol=0)


def test_capture_path_and_matmul_attention_agree_with_eager(model):
    """The CUDA-graph path (warm-up run before the prefill, then replays) on the CPU."""
    p = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=20, n=3, seed=4)
    eager = _static(model).generate(PROMPTS, p)
    emulated = _static(model)
    emulated._emulate_capture = True
    assert _ids(emulated.generate(PROMPTS, p)) == _ids(eager)
    assert _ids(emulated.generate(PROMPTS, p)) == _ids(eager)  # captured runners reused
    greedy = SamplingParams(temperature=0, max_new_tokens=20)
    assert _ids(_static(model, decode_attention="matmul").generate(PROMPTS, greedy)) == _ids(_static(model).generate(PROMPTS, greedy))


def test_n_samples_share_prefill_like_n_separate_prompts(model):
    for p in (SamplingParams(temperature=0, max_new_tokens=16, n=3),
              SamplingParams(temperature=1.0, max_new_tokens=16, n=3, seed=5)):
        shared = _static(model).generate([PROMPTS[0]], p)
        separate = _static(model).generate([PROMPTS[0]] * 3, SamplingParams(**{**p.__dict__, "n": 1}))
        assert _ids(shared) == _ids(separate)


def test_eos_stops_rows_at_their_own_lengths(model):
    engine = _static(model, sync_every=4)
    outs = engine.generate(PROMPTS, SamplingParams(temperature=2.0, max_new_tokens=40, n=6, seed=0))
    stops = [o for o in outs if o.finish_reason == "stop"]
    assert stops and len(stops) < len(outs)
    assert len({len(o.token_ids) for o in stops}) > 1
    for o in stops:
        assert o.token_ids[-1] == EOS and EOS not in o.token_ids[:-1]
    # The early exit (all rows done, checked every sync_every steps) changes nothing.
    p = SamplingParams(temperature=0, max_new_tokens=40)
    assert _ids(_static(model, sync_every=4).generate(PROMPTS[:2], p)) == _ids(_static(model, sync_every=1000).generate(PROMPTS[:2], p))


def test_chunked_batches_equal_one_batch(model):
    p = SamplingParams(temperature=0, max_new_tokens=10, n=3)
    assert _ids(_static(model, max_batch_seqs=4).generate(PROMPTS, p)) == _ids(_static(model).generate(PROMPTS, p))


def _chi_square_ok(counts: Counter, probs: torch.Tensor, n: int) -> bool:
    """Pearson chi-square against probs, pooling bins expected < 5; generous bound (mean + 6 sd)."""
    stat, df, pooled_obs, pooled_exp = 0.0, -1, 0.0, 0.0
    for tok in range(probs.numel()):
        e = float(probs[tok]) * n
        if e < 5:
            pooled_obs += counts.get(tok, 0)
            pooled_exp += e
            continue
        stat += (counts.get(tok, 0) - e) ** 2 / e
        df += 1
    if pooled_exp > 0:
        stat += (pooled_obs - pooled_exp) ** 2 / max(pooled_exp, 1e-9)
        df += 1
    return stat < df + 6 * math.sqrt(2 * df)


def _probs(model, ids: list[int], temperature: float, top_p: float) -> torch.Tensor:
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(x).logits[:, -1].float()
    logits = TemperatureLogitsWarper(temperature)(x, logits)
    if top_p < 1:
        logits = TopPLogitsWarper(top_p)(x, logits)
    return torch.softmax(logits, -1)[0]


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.8, 0.7)])
def test_sampling_frequencies_match_model_probabilities(model, temperature, top_p):
    prompt, n = [5, 6, 7], 3000
    outs = _static(model).generate([prompt], SamplingParams(temperature=temperature, top_p=top_p,
                                                           max_new_tokens=2, n=n, seed=11))
    first = Counter(o.token_ids[0] for o in outs)
    p1 = _probs(model, prompt, temperature, top_p)
    assert all(p1[t] > 0 for t in first), "sampled a token of zero probability"
    assert _chi_square_ok(first, p1, n)
    # Second token, conditioned on the most frequent first one (exercises the decode step).
    top = first.most_common(1)[0][0]
    second = Counter(o.token_ids[1] for o in outs if o.token_ids[0] == top and len(o.token_ids) > 1)
    m = sum(second.values())
    p2 = _probs(model, prompt + [top], temperature, top_p)
    assert m > 200 and all(p2[t] > 0 for t in second)
    assert _chi_square_ok(second, p2, m)


def test_sampler_edges():
    logits = torch.tensor([[0.0, 0.0, -float("inf"), 1.0]] * 3)
    u = torch.tensor([0.0, 0.5, 1.0 - 2**-24])
    one = torch.ones(())
    tok, lp = sample_tokens(logits, u, "sample", one, one)
    assert (tok != 2).all() and torch.isfinite(lp).all()
    # top-p keeps the smallest prefix whose mass reaches top_p, like HF's TopPLogitsWarper.
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, VOCAB, generator=g) * 3
    for top_p in (0.3, 0.9):
        ref = torch.isfinite(TopPLogitsWarper(top_p)(None, logits.clone()))
        toks = set()
        for k in range(200):
            t, _ = sample_tokens(logits, torch.rand(64, generator=g), "top_p", one, torch.tensor(top_p))
            toks.update((r, int(v)) for r, v in enumerate(t))
        assert all(bool(ref[r, v]) for r, v in toks)


def test_weights_are_read_in_place(model):
    engine = _static(model)
    assert not engine.shadow
    assert engine.w.embed.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert engine.w.lm_head is engine.w.embed  # tied head stays one tensor
    m = tiny_model(seed=2)
    engine = _static(m)
    p = SamplingParams(temperature=0, max_new_tokens=8)
    before = _ids(engine.generate(PROMPTS, p))
    with torch.no_grad():
        m.model.layers[0].mlp.down_proj.weight.mul_(-3.0)  # in place, no update_weights call
    after = _ids(engine.generate(PROMPTS, p))
    assert after != before and after == _ids(_static(m).generate(PROMPTS, p))
    # Tensors re-allocated (as by model.to()): re-bound at the next generate.
    with torch.no_grad():
        m.model.layers[1].mlp.up_proj.weight.data = m.model.layers[1].mlp.up_proj.weight.data * 2.0
    assert _ids(engine.generate(PROMPTS, p)) == _ids(_static(m).generate(PROMPTS, p))


def test_bf16_shadow_is_refreshed_in_place():
    m = tiny_model(seed=3)
    engine = _static(m, dtype="bfloat16")
    assert engine.shadow and engine.w.embed.dtype == torch.bfloat16
    ptrs = [t.data_ptr() for t in engine.w.tensors()]
    p = SamplingParams(temperature=0, max_new_tokens=8)
    before = _ids(engine.generate(PROMPTS, p))
    with torch.no_grad():
        m.model.layers[0].mlp.down_proj.weight.mul_(-3.0)
    assert _ids(engine.generate(PROMPTS, p)) == before  # the shadow is stale until update_weights
    engine.update_weights(m)
    assert [t.data_ptr() for t in engine.w.tensors()] == ptrs  # same addresses: graphs stay valid
    assert _ids(engine.generate(PROMPTS, p)) == _ids(_static(m, dtype="bfloat16").generate(PROMPTS, p))


def test_unsupported_models_and_inputs_raise_clear_errors(model):
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    with pytest.raises(ConfigError, match="model_type 'llama'.*engine 'hf'"):
        make_engine("static", llama, TOKENIZER)
    with pytest.raises(ConfigError, match="prompt 1 is empty"):
        _static(model).generate([[3], []], SamplingParams())
    with pytest.raises(ConfigError, match="dtype"):
        _static(model, dtype="int8")


@pytest.mark.slow
def test_compiled_halves_trace_without_graph_breaks(model):
    """The decode layer halves and the training layer compile whole (the GPU default)."""
    from torch._dynamo.utils import counters

    from asymcli.training.policy import pack, response_logprobs

    counters.clear()
    p = SamplingParams(temperature=1.0, max_new_tokens=6, n=2, seed=2)
    engine = _static(model, compile="aot_eager")
    engine._emulate_capture = True
    assert _ids(engine.generate(PROMPTS, p)) == _ids(_static(model).generate(PROMPTS, p))
    batch = pack(PROMPTS, [[4, 5], [6], [7, 8, 9], [10]], pad_id=0)
    with torch.no_grad():
        fused = response_logprobs(model, batch, compile="aot_eager")[0]
        torch.testing.assert_close(fused, response_logprobs(model, batch, impl="hf")[0], atol=1e-5, rtol=0)
    assert not any(h.failed for h in engine._halves)
    assert not counters["graph_break"], dict(counters["graph_break"])


_TRITON_CHECK = """
import torch
from asymcli.engines import decode_attention as da
from asymcli.engines.base import SamplingParams, make_engine
from tests.engines.test_engine_hf import PROMPTS, TOKENIZER, tiny_model

g = torch.Generator().manual_seed(0)
for R, n_kv, G, D, n_ctx, n_att in [(3, 2, 2, 16, 300, 256), (2, 1, 3, 32, 40, 24)]:
    q, k, v = (torch.randn(s, generator=g) for s in [(R, n_kv, G, D), (R, n_kv, n_ctx, D), (R, n_kv, n_ctx, D)])
    start, end, p0 = torch.tensor([0, 5, 2][:R]), torch.tensor(n_att - 3), torch.tensor(7)
    leader = torch.tensor([0, 0, 2][:R])  # rows 0 and 1 share a prompt: row 1's own copy is ignored
    args = (q, k, v, start, end, n_att, D**-0.5, leader, p0)
    torch.testing.assert_close(da.decode_attention(*args), da.reference(*args), atol=1e-5, rtol=0)
    assert not torch.allclose(da.reference(*args), da.reference(*args[:7], torch.arange(R), p0))
model, p = tiny_model(), SamplingParams(temperature=0, max_new_tokens=6, n=2)
ids = [[o.token_ids for o in make_engine("static", model, TOKENIZER, kv_block=8, decode_attention=a).generate(PROMPTS[:2], p)]
       for a in ("triton", "sdpa")]
assert ids[0] == ids[1], ids
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_triton_decode_attention_in_the_interpreter():
    """The split-KV Triton kernel (CUDA engines) against torch, run by Triton's CPU interpreter
    in a fresh process (TRITON_INTERPRET must be set before Triton is first imported)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", _TRITON_CHECK], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
