"""Loading a policy and turning problems into prompt token ids, for any HF causal LM.

Every stage that needs a model (base, train, eval) goes through :func:`load_policy` and
:func:`encode_prompts`, so the tiny embedded model and a Qwen checkpoint take the same
path. Nothing is downloaded: a hub id is used only if it is already in the local
Hugging Face cache (``HF_HUB_OFFLINE`` semantics).
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence
from typing import Any

import torch

from ..config import ModelConfig
from ..errors import ConfigError, first_line

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def _dtype_kwarg() -> str:
    # transformers renamed from_pretrained's torch_dtype to dtype in 4.56.
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def resolve_dtype(name: str, device: str | torch.device) -> torch.dtype:
    """``model.dtype`` -> torch dtype; ``auto`` is fp32 on CPU and bf16 on GPU."""
    if name == "auto":
        return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def load_policy(path: str | Path, model_cfg: ModelConfig, device: str | torch.device = "cpu") -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local HF folder, or a hub id present in the local cache.

    The model comes back in eval mode on ``device`` with ``model_cfg.dtype``. A tokenizer
    without a pad token gets its EOS as pad. Raises ConfigError naming the folder or id
    when it is missing, lacks a config or a tokenizer, or is not in the local cache.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spec = str(path)
    local = Path(spec).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ConfigError(f"{local}: model folder has no config.json")
        if not any((local / f).is_file() for f in _TOKENIZER_FILES):
            raise ConfigError(f"{local}: model folder has no tokenizer"
                              " (expected tokenizer.json or tokenizer_config.json)")
        source, kwargs = str(local), {}
    elif local.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ConfigError(f"{spec}: model folder does not exist")
    else:
        source, kwargs = spec, {"local_files_only": True}  # hub id: local cache only
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{spec}: cannot load a tokenizer ({first_line(exc)})") from None
    kwargs[_dtype_kwarg()] = resolve_dtype(model_cfg.dtype, device)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{spec}: cannot load a causal LM ({first_line(exc)})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    return model, tokenizer


def encode_prompts(tokenizer: Any, prompts: list[str], model_cfg: ModelConfig) -> list[list[int]]:
    """Token ids of each prompt as the policy sees it before its response.

    With ``model_cfg.chat_template`` the prompt is one user turn rendered by the
    tokenizer's chat template with the generation prompt (Qwen3: ``enable_thinking`` is
    passed through; templates that do not use it ignore it). Otherwise the raw text,
    with the tokenizer's own special tokens (e.g. a BOS) if it adds any.
    """
    if not prompts:
        return []
    if model_cfg.chat_template:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                f"model.chat_template is true but the tokenizer of '{tokenizer.name_or_path}' has no chat template;"
                " set model.chat_template: false"
            )
        texts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}],
                tokenize=False,
                add_generation_prompt=True,
                enable_thinking=model_cfg.enable_thinking,
            )
            for p in prompts
        ]
        return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return [list(ids) for ids in tokenizer(list(prompts), add_special_tokens=True)["input_ids"]]


class PromptIds:
    """Token ids of a list of prompts (as :func:`encode_prompts`), each encoded on first use.

    A run reads steps x prompts_per_step prompts of its training split; encoding all 20,000
    of the embedded task's up front took 2.4 s per trainer, most of `asym scan`'s time per
    pair. The first prompt is encoded at once, so a tokenizer without a chat template still
    fails when the trainer starts."""

    def __init__(self, tokenizer: Any, prompts: list[str], model_cfg: ModelConfig):
        self.tokenizer, self.prompts, self.model_cfg = tokenizer, prompts, model_cfg
        self._ids: dict[int, list[int]] = {}
        if prompts:
            self.take([0])

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, rows: Sequence[int]) -> list[list[int]]:
        """The ids of prompts ``rows`` (those not seen yet encoded in one call)."""
        missing = sorted({int(i) for i in rows} - self._ids.keys())
        if missing:
            enc = encode_prompts(self.tokenizer, [self.prompts[i] for i in missing], self.model_cfg)
            self._ids.update(zip(missing, enc))
        return [self._ids[int(i)] for i in rows]

    def __getitem__(self, i: int) -> list[int]:
        return self.take([i])[0]


def decode_responses(tokenizer: Any, responses: list[list[int]]) -> list[str]:
    """Response texts for grading: special tokens (EOS, pad) dropped."""
    return tokenizer.batch_decode(responses, skip_special_tokens=True)
