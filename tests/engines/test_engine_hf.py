"""The rollout-engine interface, checked against every engine that can run here.

Each test is parametrised over ENGINES, so a new backend (e.g. "vllm") joins by being
added to the list; an engine that is not registered in this environment is skipped.
Models are tiny random Qwen3s (hidden 64, 2 layers, vocab 50) with a peaked init so that
greedy decoding is not decided by rounding.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from asymcli.engines.base import SamplingParams, engine_names, make_engine
from asymcli.errors import ConfigError

ENGINES = ["hf", "static"]
EOS, PAD, VOCAB = 1, 0, 50
TOKENIZER = SimpleNamespace(eos_token_id=EOS, pad_token_id=PAD)
PROMPTS = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 15, 16, 17, 18], [3]]


def tiny_model(kind: str = "qwen3", seed: int = 0, init: float = 0.2):
    """A random tiny Qwen3/Qwen2 with non-trivial norms and biases (ones/zeros would hide bugs)."""
    cls_cfg, cls_model = (Qwen3Config, Qwen3ForCausalLM) if kind == "qwen3" else (Qwen2Config, Qwen2ForCausalLM)
    cfg = cls_cfg(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                  tie_word_embeddings=kind == "qwen3", initializer_range=init, rope_theta=10000.0,
                  eos_token_id=EOS, pad_token_id=PAD, bos_token_id=None)
    torch.manual_seed(seed)
    model = cls_model(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)
    model.generation_config = GenerationConfig(eos_token_id=EOS, pad_token_id=PAD)
    return model


def processed_logprobs(model, prompt: list[int], tokens: list[int], temperature: float, top_p: float) -> torch.Tensor:
    """Log-probs of ``tokens`` after ``prompt`` from one HF forward, with HF's own warpers."""
    ids = torch.tensor([prompt + tokens])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1].float()
    if temperature > 0:
        logits = TemperatureLogitsWarper(temperature)(ids, logits)
        if top_p < 1:
            logits = TopPLogitsWarper(top_p)(ids, logits)
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(tokens)[:, None]).squeeze(1)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(params=ENGINES)
def engine_name(request):
    if request.param not in engine_names():
        pytest.skip(f"engine {request.param} is not available here")
    return request.param


def test_registry_lists_builtin_engines():
    assert {"hf", "static"} <= set(engine_names())
    with pytest.raises(ConfigError, match="unknown rollout engine 'nope'.*hf"):
        make_engine("nope", None, None)


def test_order_count_and_rollout_invariants(engine_name, model):
    params = SamplingParams(temperature=1.5, top_p=1.0, max_new_tokens=12, n=3, seed=1)
    outs = make_engine(engine_name, model, TOKENIZER).generate(PROMPTS, params)
    assert [(o.prompt_index, o.sample_index) for o in outs] == [(i, s) for i in range(len(PROMPTS)) for s in range(3)]
    for o in outs:
        assert 1 <= len(o.token_ids) <= 12 and len(o.logprobs) == len(o.token_ids)
        assert all(0 <= t < VOCAB for t in o.token_ids)
        assert all(lp <= 1e-6 and lp == lp for lp in o.logprobs)
        assert EOS not in o.token_ids[:-1]  # nothing after a stop
        if o.finish_reason == "stop":
            assert o.token_ids[-1] == EOS
        else:
            assert o.finish_reason == "length" and len(o.token_ids) == 12 and EOS not in o.token_ids


def test_seed_makes_a_call_reproducible(engine_name, model):
    engine = make_engine(engine_name, model, TOKENIZER)
    p = SamplingParams(temperature=1.0, max_new_tokens=10, n=2, seed=7)
    a = [o.token_ids for o in engine.generate(PROMPTS, p)]
    b = [o.token_ids for o in engine.generate(PROMPTS, p)]
    c = [o.token_ids for o in engine.generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=10, n=2, seed=8))]
    assert a == b
    assert a != c


def test_greedy_samples_agree_and_logprobs_are_raw(engine_name, model):
    outs = make_engine(engine_name, model, TOKENIZER).generate(PROMPTS, SamplingParams(temperature=0, max_new_tokens=10, n=2))
    for a, b in zip(outs[0::2], outs[1::2]):
        assert a.token_ids == b.token_ids
    for o in outs:
        ref = processed_logprobs(model, PROMPTS[o.prompt_index], o.token_ids, 0.0, 1.0)
        torch.testing.assert_close(torch.tensor(o.logprobs), ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.8)])
def test_sampled_logprobs_match_a_direct_forward(engine_name, model, temperature, top_p):
    """Same logits -> same probabilities: per-step log-probs equal HF forward + HF warpers."""
    params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=12, n=2, seed=3)
    outs = make_engine(engine_name, model, TOKENIZER).generate(PROMPTS, params)
    for o in outs:
        ref = processed_logprobs(model, PROMPTS[o.prompt_index], o.token_ids, temperature, top_p)
        assert torch.isfinite(ref).all(), "a token outside the top-p nucleus was sampled"
        torch.testing.assert_close(torch.tensor(o.logprobs), ref, atol=1e-4, rtol=0)


def test_update_weights_follows_the_model(engine_name):
    model = tiny_model(seed=1)
    engine = make_engine(engine_name, model, TOKENIZER)
    p = SamplingParams(temperature=0, max_new_tokens=8)
    before = [o.token_ids for o in engine.generate(PROMPTS, p)]
    with torch.no_grad():  # an optimizer step: in place
        for q in model.parameters():
            q.add_(torch.randn_like(q) * 0.2)
    engine.update_weights(model)
    after = [o.token_ids for o in engine.generate(PROMPTS, p)]
    fresh = [o.token_ids for o in make_engine(engine_name, model, TOKENIZER).generate(PROMPTS, p)]
    assert after == fresh
    assert after != before


def test_single_token_budget(engine_name, model):
    outs = make_engine(engine_name, model, TOKENIZER).generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=1, n=2))
    assert all(len(o.token_ids) == 1 for o in outs)
    assert all(o.finish_reason == ("stop" if o.token_ids == [EOS] else "length") for o in outs)


def test_qwen2_runs(engine_name):
    model = tiny_model("qwen2")
    outs = make_engine(engine_name, model, TOKENIZER).generate(PROMPTS, SamplingParams(temperature=0, max_new_tokens=6))
    for o in outs:
        ref = processed_logprobs(model, PROMPTS[o.prompt_index], o.token_ids, 0.0, 1.0)
        torch.testing.assert_close(torch.tensor(o.logprobs), ref, atol=1e-4, rtol=0)
