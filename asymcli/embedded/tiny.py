"""The embedded tiny policy: a Qwen3-architecture causal LM with a character tokenizer.

Why it exists: the default pipeline must train on a laptop CPU in minutes and download
nothing, yet every later stage should treat it exactly like a Qwen checkpoint. So the
model is a real ``Qwen3ForCausalLM`` (shape from ``ModelConfig``) and the tokenizer a real
``tokenizers`` tokenizer wrapped for ``transformers``, with a ChatML chat template like
Qwen's. Both are saved as one standard HF folder that ``AutoModelForCausalLM`` /
``AutoTokenizer.from_pretrained`` reload exactly, and are then loaded through
:func:`asymcli.sampling.models.load_policy` like any other model.

Departures from a Qwen checkpoint: one token per character (a fixed vocabulary of the
printable ASCII characters plus four special tokens, so ids are stable across machines and
versions), except a few whole-word tokens for the fixed prompt text (``WORDS``);
characters outside it map to ``<|unk|>``; no ``<think>`` tokens (the template
ignores ``enable_thinking``, as Qwen3 non-thinking mode renders an empty think block that
this model has no use for).
"""

from __future__ import annotations

import contextlib
import os
import string
from pathlib import Path
from typing import Any

import torch

from ..artifacts import atomic_folder
from ..config import ModelConfig
from ..errors import ConfigError

PAD = "<|endoftext|>"  # Qwen's pad token
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"  # end of a turn: the EOS of generation, as in Qwen chat models
UNK = "<|unk|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END, UNK]

#: Every printable ASCII character plus newline, one token each, after the special tokens.
CHARS = string.digits + string.ascii_letters + string.punctuation + " \n"

#: Whole-word tokens for the fixed text every prompt repeats (the role names, the task's
#: instruction, ``\\boxed{``), as a BPE vocabulary would have merged them: they cut a
#: prompt from ~67 tokens to ~20, which is most of the compute of the CPU default.
WORDS = ["user", "assistant", "Compute ", " Put the final answer in ", "\\boxed{"]

#: ChatML, as Qwen's templates render a conversation (no system prompt by default).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


def vocab() -> dict[str, int]:
    """Token -> id of the base vocabulary: special tokens first, then ``CHARS`` in order
    (``WORDS`` follow as added tokens)."""
    return {tok: i for i, tok in enumerate(SPECIAL_TOKENS + list(CHARS))}


def build_tokenizer(max_length: int = 256) -> Any:
    """The character-level tokenizer as a ``PreTrainedTokenizerFast`` with the chat template."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=vocab(), unk_token=UNK))
    # Every character is its own pre-token ([\s\S] also matches the newline).
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()  # join characters back without separators
    tok.add_special_tokens(SPECIAL_TOKENS)
    tok.add_tokens([AddedToken(w, normalized=False, special=False) for w in WORDS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        unk_token=UNK,
        chat_template=CHAT_TEMPLATE,
        model_max_length=max_length,
        padding_side="left",  # generation pads on the left
    )


def build_model(model_cfg: ModelConfig, tokenizer: Any, seed: int = 0) -> Any:
    """A randomly initialised ``Qwen3ForCausalLM`` of ``model_cfg``'s shape (fp32)."""
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    if model_cfg.hidden_size % model_cfg.num_heads:
        raise ConfigError(
            f"model.hidden_size ({model_cfg.hidden_size}) must be divisible by model.num_heads ({model_cfg.num_heads})"
        )
    if model_cfg.num_heads % model_cfg.num_kv_heads:
        raise ConfigError(
            f"model.num_heads ({model_cfg.num_heads}) must be divisible by"
            f" model.num_kv_heads ({model_cfg.num_kv_heads})"
        )
    eos = tokenizer.convert_tokens_to_ids(IM_END)
    pad = tokenizer.convert_tokens_to_ids(PAD)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=model_cfg.hidden_size,
        num_hidden_layers=model_cfg.num_layers,
        num_attention_heads=model_cfg.num_heads,
        num_key_value_heads=model_cfg.num_kv_heads,
        head_dim=model_cfg.hidden_size // model_cfg.num_heads,  # Qwen3's default (128) is for big models
        intermediate_size=model_cfg.intermediate_size,
        max_position_embeddings=model_cfg.max_position,
        tie_word_embeddings=True,  # halves the parameters of a tiny model
        bos_token_id=None,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    with _seeded(seed):
        model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad)
    return model


@contextlib.contextmanager
def _seeded(seed: int):
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def n_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def save_policy(model: Any, tokenizer: Any, folder: str | os.PathLike[str]) -> Path:
    """Save model + tokenizer as one HF folder, atomically.

    Everything is written into a temporary sibling folder which then replaces ``folder``,
    so a reader never sees a half-written model under the final name.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return folder
