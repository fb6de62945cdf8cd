"""Shared fixtures: a tiny random policy folder and generated prompts, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asymcli.platform import apply_numerics

# Portable numerics (asymcli/platform.py) before torch loads: the tests' numbers are the same
# on an AVX512 host as on an AVX2 one, as the CLI's with numerics.portable (the default).
apply_numerics(True)

import torch  # noqa: E402

# Tests share 2 cores with each other and with the grader's workers; one thread keeps timings sane.
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny Qwen3 + char tokenizer saved as an HF folder."""
    from asymcli.config import ModelConfig
    from asymcli.embedded.tiny import build_model, build_tokenizer, save_policy

    folder = tmp_path_factory.mktemp("policy") / "model"
    tok = build_tokenizer()
    model = build_model(ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                                    intermediate_size=64), tok, seed=0)
    save_policy(model, tok, folder)
    return folder


@pytest.fixture(scope="session")
def arith_rows() -> list[dict]:
    from asymcli.embedded.tasks import generate_arithmetic

    return generate_arithmetic(120, 6, seed=0)
