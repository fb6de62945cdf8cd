"""Supervised warm-up: response-only loss, schedule, determinism, learning."""

from __future__ import annotations

import math

import pytest
import torch

from asymcli.embedded import sft, tiny
from asymcli.config import BaseConfig, ModelConfig
from asymcli.errors import ConfigError
from asymcli.sampling.models import encode_prompts
from asymcli.embedded.tasks import generate_arithmetic

SMALL = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64, max_position=128)


@pytest.fixture(scope="module")
def tok():
    return tiny.build_tokenizer()


@pytest.fixture(scope="module")
def examples(tok):
    rows = [r for r in generate_arithmetic(16, 0, tiers=["t1", "t2"], seed=0) if r["solution"]]
    ids = encode_prompts(tok, [r["prompt"] for r in rows], SMALL)
    return sft.build_examples(tok, ids, [r["solution"] for r in rows], max_length=SMALL.max_position)


def test_examples_end_with_eos(tok, examples):
    assert len(examples) == 16
    for e in examples:
        assert e.response_ids[-1] == tok.eos_token_id
        assert tok.decode(e.response_ids[:-1]).endswith("}")


def test_too_long_example_is_a_config_error(tok):
    with pytest.raises(ConfigError, match="max_position"):
        sft.build_examples(tok, [[1] * 10], ["1+1=2. \\boxed{2}"], max_length=12)


def test_collate_masks_everything_but_the_response(tok, examples):
    batch = examples[:3]
    ids, mask, labels = sft.collate(batch, tok.pad_token_id)
    L = max(len(e.prompt_ids) + len(e.response_ids) for e in batch)
    assert ids.shape == mask.shape == labels.shape == (3, L)
    for b, e in enumerate(batch):
        n_p, n = len(e.prompt_ids), len(e.prompt_ids) + len(e.response_ids)
        assert ids[b, :n].tolist() == e.prompt_ids + e.response_ids
        assert mask[b].tolist() == [1] * n + [0] * (L - n)
        assert labels[b, n_p:n].tolist() == e.response_ids
        assert (labels[b, :n_p] == -100).all() and (labels[b, n:] == -100).all()


def test_lr_schedule_warms_up_then_decays_to_zero():
    assert sft.lr_factor(0.0, 0, 10) == pytest.approx(0.1)
    assert sft.lr_factor(0.0, 9, 10) == pytest.approx(1.0)
    assert sft.lr_factor(0.0, 10, 10) == pytest.approx(1.0)
    assert sft.lr_factor(0.5, 50, 10) == pytest.approx(0.5)
    assert sft.lr_factor(1.0, 99, 10) == pytest.approx(0.0, abs=1e-12)
    assert sft.lr_factor(2.0, 200, 10) == pytest.approx(0.0, abs=1e-12)


def _train(tok, examples, **over):
    cfg = BaseConfig(**{"steps": 30, "batch_size": 8, "lr": 1e-2, "warmup_steps": 3, "seed": 0, **over})
    model = tiny.build_model(SMALL, tok, seed=0)
    rows = sft.supervised_warmup(model, examples, cfg, tok.pad_token_id)
    return model, rows


def test_warmup_learns_and_is_deterministic(tok, examples):
    model_a, rows_a = _train(tok, examples)
    model_b, rows_b = _train(tok, examples)
    assert [r["step"] for r in rows_a] == list(range(30))
    assert rows_a[-1]["loss"] < 0.6 * rows_a[0]["loss"]
    assert all(math.isfinite(r["loss"]) and r["seconds"] >= 0 for r in rows_a)
    assert rows_a[-1]["lr"] < rows_a[5]["lr"]
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b]
    for pa_, pb in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(pa_, pb)
    assert not model_a.training
    _, rows_c = _train(tok, examples, seed=1)
    assert [r["loss"] for r in rows_c] != [r["loss"] for r in rows_a]


def test_loss_is_the_response_tokens_cross_entropy(tok, examples):
    """Same as the model's own label loss (which also scores response tokens only)."""
    model = tiny.build_model(SMALL, tok, seed=0)
    ids, mask, labels = sft.collate(examples[:4], tok.pad_token_id)
    loss_sum, n = sft.response_loss(model, ids, mask, labels)
    assert n == sum(len(e.response_ids) for e in examples[:4])
    ref = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert (loss_sum / n).item() == pytest.approx(ref.item(), rel=1e-5)
    # Prompt tokens do not count: changing one leaves the response-position targets alone.
    assert (labels[:, : len(examples[0].prompt_ids)][0] == -100).all()


def test_batches_cover_each_epoch_once():
    import numpy as np

    exs = [sft.SFTExample([1], [2] * (i % 5 + 1)) for i in range(100)]
    gen = sft._batches(exs, 8, np.random.default_rng(0))
    epoch = np.concatenate([next(gen) for _ in range(12)])  # 100 // 8 batches per epoch
    assert len(set(epoch.tolist())) == 96
    assert len(next(sft._batches(exs[:5], 8, np.random.default_rng(0)))) == 5  # batch > data: all of it


def test_max_seconds_stops_early(tok, examples):
    _, rows = _train(tok, examples, steps=1000, max_seconds=0.5)
    assert len(rows) < 1000
    _, none = _train(tok, examples, max_seconds=0.0)
    assert none == []


def test_no_examples_is_a_config_error(tok):
    with pytest.raises(ConfigError, match="has a solution"):
        sft.supervised_warmup(tiny.build_model(SMALL, tok), [], BaseConfig(), tok.pad_token_id)
