"""The tiny Qwen3 policy, its character tokenizer, and load_policy / encode_prompts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from asymcli.embedded import tiny
from asymcli.config import ModelConfig
from asymcli.errors import ConfigError
from asymcli.sampling.models import decode_responses, encode_prompts, load_policy, resolve_dtype

SMALL = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64, max_position=128)
PROMPT = "Compute 7*12+5. Put the final answer in \\boxed{}."


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    tok = tiny.build_tokenizer()
    model = tiny.build_model(SMALL, tok, seed=0)
    return tiny.save_policy(model, tok, tmp_path_factory.mktemp("tiny") / "model")


def test_tokenizer_is_small_and_roundtrips_text():
    tok = tiny.build_tokenizer()
    assert len(tok) < 128
    text = "7*12=84, 84+5=89. \\boxed{89}\nuser assistant (3+14)*6-9 x"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    # digits are single characters (the model must see each digit)
    assert tok("12345", add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids(c) for c in "12345"]


def test_unknown_characters_map_to_unk():
    tok = tiny.build_tokenizer()
    ids = tok("1é2€", add_special_tokens=False)["input_ids"]
    assert ids.count(tok.unk_token_id) == 2 and len(ids) == 4
    assert tok.decode(ids, skip_special_tokens=True) == "12"


def test_chat_template_is_chatml():
    tok = tiny.build_tokenizer()
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"


def test_model_shape_and_special_ids():
    tok = tiny.build_tokenizer()
    cfg = ModelConfig()
    model = tiny.build_model(cfg, tok)
    assert type(model).__name__ == "Qwen3ForCausalLM"
    assert model.config.hidden_size == cfg.hidden_size and model.config.num_hidden_layers == cfg.num_layers
    assert model.config.head_dim == cfg.hidden_size // cfg.num_heads
    assert model.config.vocab_size == len(tok)
    assert model.generation_config.eos_token_id == tok.eos_token_id
    assert tiny.n_params(model) < 1_000_000


def test_model_init_is_deterministic_by_seed():
    tok = tiny.build_tokenizer()
    a, b, c = (tiny.build_model(SMALL, tok, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.lm_head.weight, b.lm_head.weight)
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)


@pytest.mark.parametrize("change", [{"num_heads": 3}, {"num_kv_heads": 3}])
def test_bad_shapes_are_config_errors(change):
    cfg = ModelConfig(**{**SMALL.__dict__, **change})
    with pytest.raises(ConfigError, match="divisible"):
        tiny.build_model(cfg, tiny.build_tokenizer())


def test_saved_folder_reloads_exactly(saved):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok0 = tiny.build_tokenizer()
    model0 = tiny.build_model(SMALL, tok0, seed=0)
    model = AutoModelForCausalLM.from_pretrained(saved)
    tok = AutoTokenizer.from_pretrained(saved)
    msgs = [{"role": "user", "content": PROMPT}]
    text0 = tok0.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == text0
    ids0 = tok0(text0, add_special_tokens=False)["input_ids"]
    assert tok(text0, add_special_tokens=False)["input_ids"] == ids0
    assert (tok.eos_token_id, tok.pad_token_id, tok.unk_token_id) == (
        tok0.eos_token_id, tok0.pad_token_id, tok0.unk_token_id)
    assert model.generation_config.eos_token_id == tok0.eos_token_id
    assert model.generation_config.pad_token_id == tok0.pad_token_id
    x = torch.tensor([ids0])
    with torch.no_grad():
        assert torch.equal(model(x).logits, model0.eval()(x).logits)


def test_save_policy_replaces_an_existing_folder(tmp_path):
    tok = tiny.build_tokenizer()
    target = tmp_path / "model"
    tiny.save_policy(tiny.build_model(SMALL, tok, seed=0), tok, target)
    tiny.save_policy(tiny.build_model(SMALL, tok, seed=1), tok, target)
    model, _ = load_policy(target, SMALL)
    assert torch.equal(model.lm_head.weight, tiny.build_model(SMALL, tok, seed=1).lm_head.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folders left


def test_save_policy_failure_leaves_the_old_folder(tmp_path, monkeypatch):
    tok = tiny.build_tokenizer()
    target = tmp_path / "model"
    tiny.save_policy(tiny.build_model(SMALL, tok, seed=0), tok, target)
    before = sorted(p.name for p in target.iterdir())

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(type(tok), "save_pretrained", boom)
    with pytest.raises(OSError, match="disk full"):
        tiny.save_policy(tiny.build_model(SMALL, tok, seed=1), tok, target)
    assert sorted(p.name for p in target.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_load_policy_and_encode_prompts(saved):
    model, tok = load_policy(saved, SMALL)
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    ids = encode_prompts(tok, [PROMPT, "Compute 1+1. Put the final answer in \\boxed{}."], SMALL)
    text = tok.decode(ids[0])
    assert text == f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n"
    raw = encode_prompts(tok, [PROMPT], ModelConfig(**{**SMALL.__dict__, "chat_template": False}))
    assert tok.decode(raw[0]) == PROMPT
    assert encode_prompts(tok, [], SMALL) == []
    resp = tok("1+1=2. \\boxed{2}", add_special_tokens=False)["input_ids"] + [tok.eos_token_id, tok.pad_token_id]
    assert decode_responses(tok, [resp]) == ["1+1=2. \\boxed{2}"]


def test_encode_prompts_passes_enable_thinking(saved):
    _, tok = load_policy(saved, SMALL)
    tok.chat_template = (
        "{{ messages[0]['content'] }}{% if enable_thinking is defined and not enable_thinking %}"
        "<think>\n\n</think>\n\n{% endif %}"
    )
    off = encode_prompts(tok, ["q"], SMALL)[0]
    on = encode_prompts(tok, ["q"], ModelConfig(**{**SMALL.__dict__, "enable_thinking": True}))[0]
    assert tok.decode(off) == "q<think>\n\n</think>\n\n" and tok.decode(on) == "q"


def test_chat_template_required_when_asked(saved, tmp_path):
    _, tok = load_policy(saved, SMALL)
    tok.chat_template = None
    with pytest.raises(ConfigError, match="chat_template"):
        encode_prompts(tok, [PROMPT], SMALL)


def test_load_policy_on_a_random_qwen3_folder(tmp_path):
    """Any HF Qwen3 folder works, not only the base stage's output."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = tiny.build_tokenizer()
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=8, intermediate_size=32, max_position_embeddings=64)
    folder = tmp_path / "qwen3"
    Qwen3ForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    model, tok2 = load_policy(str(folder), ModelConfig(kind="hf", path=str(folder), dtype="bfloat16"))
    assert next(model.parameters()).dtype == torch.bfloat16
    assert tok2.pad_token_id is not None
    ids = encode_prompts(tok2, [PROMPT], ModelConfig(kind="hf", path=str(folder)))
    out = model.generate(torch.tensor(ids), max_new_tokens=3, do_sample=False, pad_token_id=tok2.pad_token_id)
    assert out.shape == (1, len(ids[0]) + 3)


def test_load_policy_sets_a_missing_pad_token(saved, tmp_path):
    folder = tmp_path / "nopad"
    shutil.copytree(saved, folder)
    cfg_path = folder / "tokenizer_config.json"
    tc = json.loads(cfg_path.read_text())
    tc.pop("pad_token", None)
    cfg_path.write_text(json.dumps(tc))
    _, tok = load_policy(folder, SMALL)
    assert tok.pad_token == tok.eos_token == "<|im_end|>"


def test_load_policy_errors_name_the_folder(saved, tmp_path):
    no_tok = tmp_path / "no_tokenizer"
    no_tok.mkdir()
    for f in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(saved / f, no_tok / f)
    with pytest.raises(ConfigError, match=f"{no_tok}.*no tokenizer"):
        load_policy(no_tok, SMALL)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=f"{empty}.*no config.json"):
        load_policy(empty, SMALL)
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy(tmp_path / "results" / "base" / "model", SMALL)


def test_load_policy_never_downloads(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="no-such-org/no-such-model"):
        load_policy("no-such-org/no-such-model", SMALL)


def test_resolve_dtype():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_dtype("float16", "cpu") == torch.float16
