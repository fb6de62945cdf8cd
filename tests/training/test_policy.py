"""Response log-probs: packing, the fused (functional Qwen) and HF paths, length bucketing."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from asymcli.errors import ConfigError
from asymcli.training.policy import _length_groups, pack, response_logprobs

from tests.engines.test_engine_hf import VOCAB, tiny_model

PROMPTS = [[2, 3, 4], [5, 6], [7, 8, 9, 10, 11], [12]]
RESPONSES = [[13, 14, 15, 16], [17], [18, 19], []]


def reference(model, prompts, responses, temperature=1.0):
    """The definition: one sequence at a time, full-vocabulary fp32 log-softmax."""
    logps, ents = [], []
    for p, r in zip(prompts, responses):
        if not r:
            logps.append(torch.zeros(0))
            ents.append(torch.zeros(0))
            continue
        logits = model(torch.tensor([p + r])).logits[0, len(p) - 1 : -1].float() / temperature
        lp = torch.log_softmax(logits, -1)
        logps.append(lp.gather(1, torch.tensor(r)[:, None]).squeeze(1))
        ents.append(-(lp.exp() * lp).sum(-1))
    return logps, ents


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _run(model, batch, **kw):
    model.zero_grad(set_to_none=True)
    logp, ent = response_logprobs(model, batch, **kw)
    ((logp * batch.resp_mask).sum() + 0.3 * (ent * batch.resp_mask).sum()).backward()
    return logp.detach(), ent.detach(), _grads(model)


def test_pack_layout_and_select():
    b = pack(PROMPTS, RESPONSES, pad_id=0)
    assert b.input_ids.shape == (4, 7) and b.resp_ids.shape == (4, 4)
    assert b.input_ids[0].tolist() == [2, 3, 4, 13, 14, 15, 16]
    assert b.attention_mask.sum(1).tolist() == [7, 3, 7, 1]
    assert b.resp_pos[0].tolist() == [2, 3, 4, 5] and b.resp_pos[2, :2].tolist() == [4, 5]
    assert b.resp_mask.sum(1).tolist() == [4, 1, 2, 0]
    sub = b.select(torch.tensor([1, 3]))
    assert sub.input_ids.shape == (2, 3) and sub.resp_ids.shape == (2, 1)


@pytest.mark.parametrize("kind", ["qwen3", "qwen2"])
def test_fused_and_hf_paths_match_the_definition(kind):
    model = tiny_model(kind)
    batch = pack(PROMPTS, RESPONSES, pad_id=0)
    ref_lp, ref_ent = reference(model, PROMPTS, RESPONSES, temperature=0.7)
    runs = {impl: _run(model, batch, impl=impl, temperature=0.7) for impl in ("hf", "fused")}
    for impl, (logp, ent, _) in runs.items():
        for b, r in enumerate(RESPONSES):
            torch.testing.assert_close(logp[b, : len(r)], ref_lp[b].detach(), atol=1e-5, rtol=0)
            torch.testing.assert_close(ent[b, : len(r)], ref_ent[b].detach(), atol=1e-5, rtol=0)
        assert (logp[batch.resp_mask == 0] == 0).all() and (ent[batch.resp_mask == 0] == 0).all()
    g_hf, g_fused = runs["hf"][2], runs["fused"][2]
    assert g_hf.keys() == g_fused.keys()
    for name in g_hf:
        torch.testing.assert_close(g_fused[name], g_hf[name], atol=1e-5, rtol=1e-4, msg=name)


def test_bucketing_chunking_and_checkpointing_change_nothing():
    model = tiny_model()
    batch = pack(PROMPTS, RESPONSES, pad_id=0)
    base_lp, base_ent, base_g = _run(model, batch)
    variants = [dict(max_tokens=8), dict(chunk_tokens=2), dict(impl="hf", max_tokens=1)]
    for kw in variants:
        lp, ent, g = _run(model, batch, **kw)
        torch.testing.assert_close(lp, base_lp, atol=1e-5, rtol=0)
        torch.testing.assert_close(ent, base_ent, atol=1e-5, rtol=0)
        for name in base_g:
            torch.testing.assert_close(g[name], base_g[name], atol=1e-5, rtol=1e-4)
    model.gradient_checkpointing_enable()
    model.train()
    lp, _, g = _run(model, batch)
    torch.testing.assert_close(lp, base_lp, atol=1e-5, rtol=0)
    for name in base_g:
        torch.testing.assert_close(g[name], base_g[name], atol=1e-5, rtol=1e-4)


def test_length_groups_cover_rows_once_within_budget():
    lengths = [5, 40, 7, 40, 1, 12, 33]
    groups = _length_groups(lengths, max_tokens=80)
    rows = [r for g, _ in groups for r in g]
    assert sorted(rows) == list(range(len(lengths)))
    for g, width in groups:
        assert width == max(lengths[r] for r in g)
        assert len(g) == 1 or len(g) * width <= 80
    assert groups[0] == ([1, 3], 40)  # longest first
    assert _length_groups([100], max_tokens=10) == [([0], 100)]


def test_left_padded_batch_uses_the_mask():
    model = tiny_model()
    right = pack(PROMPTS[:3], RESPONSES[:3], pad_id=0)
    # Shift each row to the right edge: a layout the bucketing path does not assume.
    left = pack(PROMPTS[:3], RESPONSES[:3], pad_id=0)
    L = left.input_ids.shape[1]
    for b in range(3):
        n = int(right.attention_mask[b].sum())
        left.input_ids[b] = torch.cat([torch.zeros(L - n, dtype=torch.long), right.input_ids[b, :n]])
        left.attention_mask[b] = torch.cat([torch.zeros(L - n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
        left.resp_pos[b] = right.resp_pos[b] + (L - n)
    with torch.no_grad():
        a = response_logprobs(model, right)
        b_ = response_logprobs(model, left)
    torch.testing.assert_close(b_[0], a[0], atol=1e-5, rtol=0)


def test_bf16_autocast_paths_agree():
    model = tiny_model()
    batch = pack(PROMPTS, RESPONSES, pad_id=0)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hf = response_logprobs(model, batch, impl="hf")
        fused = response_logprobs(model, batch, impl="fused")
    torch.testing.assert_close(fused[0], hf[0], atol=2e-2, rtol=0)


def test_other_architectures_take_the_module_path():
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    batch = pack(PROMPTS, RESPONSES, pad_id=0)
    with torch.no_grad():
        logp, _ = response_logprobs(llama, batch)
    ref_lp, _ = reference(llama, PROMPTS, RESPONSES)
    torch.testing.assert_close(logp[0, :4], ref_lp[0], atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="llama"):
        response_logprobs(llama, batch, impl="fused")
    with pytest.raises(ValueError, match="impl"):
        response_logprobs(llama, batch, impl="vllm")


def test_empty_responses_give_zeros():
    model = tiny_model()
    batch = pack([[2, 3], [4]], [[], []], pad_id=0)
    logp, ent = response_logprobs(model, batch)
    assert logp.shape == ent.shape == (2, 1) and (logp == 0).all() and (ent == 0).all()
