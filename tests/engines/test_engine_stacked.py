"""The stacked decoder (asymcli/engines/stacked.py): dropping finished rows changes no bit.

Rows finish at different steps here because several token ids stop a row (a random model
draws one of 6 stop ids out of 50 about every 8 tokens), so the decoder compacts its batch
many times, down to slices of 1-3 running rows padded to the 4-row minimum. Each run's
tokens and log-probs must equal the uncompacted decoder's, bit for bit, alone and in a bundle.
On a machine whose products round a row by the row count or its place (MKL's AVX2 branch on an
Intel Xeon), ``compaction_exact`` turns compaction off and these comparisons hold trivially; the
tests at the end check that switch.
"""

from __future__ import annotations

import pytest
import torch

from asymcli.engines import stacked as sk
from asymcli.engines.base import SamplingParams

from .test_engine_hf import PAD, tiny_model

STOPS = [1, 7, 13, 21, 34, 45]
_g = torch.Generator().manual_seed(0)
#: 16 prompts of 1-8 tokens; run k draws them in its own order
PROMPTS = [torch.randint(2, 50, (int(n),), generator=_g).tolist() for n in torch.randint(1, 9, (16,), generator=_g)]


def _prompts(k: int) -> list[list[int]]:
    return [PROMPTS[(i * (k + 1)) % len(PROMPTS)] for i in range(len(PROMPTS))]


def _rows(run):
    return [(o.prompt_index, o.sample_index, o.token_ids, o.logprobs, o.finish_reason) for o in run]


def _decode(models, params, compact):
    prompts = [_prompts(k) for k in range(len(models))]
    outs = sk.generate_stacked(models, prompts, params, width=8, eos_ids=STOPS, pad_id=PAD, compact=compact)
    return [_rows(run) for run in outs]


@pytest.mark.parametrize("sampling", [dict(temperature=1.0), dict(temperature=0.7, top_p=0.9), dict(temperature=0.0)])
@pytest.mark.parametrize("K,kind", [(1, "qwen3"), (1, "qwen2"), (3, "qwen3")])
def test_compaction_changes_no_bit(sampling, K, kind):
    models = [tiny_model(kind, seed=k) for k in range(K)]
    params = [SamplingParams(n=8 if sampling["temperature"] else 1, max_new_tokens=40, seed=11 + k, **sampling)
              for k in range(K)]
    full = _decode(models, params, compact=False)
    comp = _decode(models, params, compact=True)
    assert comp == full
    lengths = sorted({len(r[2]) for run in comp for r in run})
    assert len(lengths) > 3 and lengths[0] < 10, lengths  # rows did finish at many different steps


def test_a_run_alone_equals_the_run_in_a_compacted_bundle():
    """The other runs' rows (and so the slice width m) change nothing in a run's rows."""
    models = [tiny_model("qwen3", seed=k) for k in range(3)]
    params = [SamplingParams(n=8, max_new_tokens=40, seed=5 + k, temperature=1.0) for k in range(3)]
    bundle = _decode(models, params, compact=True)
    for k in range(3):
        alone = sk.generate_stacked([models[k]], [_prompts(k)], [params[k]], width=8, eos_ids=STOPS, pad_id=PAD)
        assert _rows(alone[0]) == bundle[k]


def test_repack_keeps_at_least_four_rows_per_slice():
    """A product of 1-3 rows takes another MKL kernel than one of 4+ (other roundings)."""
    K, m = 2, 16
    done = torch.ones(K * m, dtype=torch.bool)
    done[3] = False  # run 0: one running row; run 1: none
    kc = torch.arange(K * m, dtype=torch.float32).reshape(1, K * m, 1, 1, 1).expand(1, K * m, 1, 2, 1).contiguous()
    act, m2, kc2, _ = sk._repack(torch.arange(K * m), m, K, m, done, kc, kc.clone())
    assert m2 == sk.MIN_ROWS
    assert act.tolist() == [3, 3, 3, 3, 16, 16, 16, 16]
    assert kc2[0, :, 0, 0, 0].tolist() == [3.0, 3.0, 3.0, 3.0, 16.0, 16.0, 16.0, 16.0]


def _rows_differ_by_count(x, w):
    """A product whose rows round by the number of rows beside them (as MKL's AVX2 branch on an
    Intel Xeon does for some counts)."""
    return torch.matmul(x, w) + x.shape[1] * 1e-6


def _row_by_row(x, w):
    return torch.cat([torch.matmul(x[:, i:i + 1], w) for i in range(x.shape[1])], 1)


def test_compaction_check_finds_rows_that_round_by_their_neighbours():
    sw = sk.stack_weights([tiny_model("qwen3", seed=0)])
    assert sk.compaction_exact(sw, 16, matmul=_rows_differ_by_count) is False
    assert sk.compaction_exact(sw, 16, matmul=_row_by_row) is True
    # the answer is this machine's: cached per shape set, row count, capability and threads
    assert sk.compaction_exact(sw, 16) is sk.compaction_exact(sw, 16)


@pytest.mark.parametrize("exact", [False, True])
def test_decoder_compacts_only_where_the_check_allows(monkeypatch, exact):
    calls = []
    real = sk._repack

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(sk, "compaction_exact", lambda sw, rows, matmul=None: exact)
    monkeypatch.setattr(sk, "_repack", spy)
    models = [tiny_model("qwen3", seed=0)]
    params = [SamplingParams(n=8, max_new_tokens=40, seed=11, temperature=1.0)]
    out = _decode(models, params, compact=True)
    assert bool(calls) is exact
    if not exact:  # no compaction: the uncompacted reference itself
        monkeypatch.setattr(sk, "compaction_exact", lambda sw, rows, matmul=None: True)
        assert out == _decode(models, params, compact=False)
