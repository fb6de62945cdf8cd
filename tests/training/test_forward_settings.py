"""train.forward_tokens (length-grouped forwards) and train.logprob_gain_every (the diagnostic forward).

Both are speed settings of the CPU step (docs/benchmarks.md, "asym vs TRL"). What they must keep:
- forward_tokens computes the same function (a regrouping of float sums, so close, not equal),
  keeps a run in a bundle bit-identical to the run alone, and at its default changes no
  committed run (absent from the run's settings, so no fingerprint moves);
- logprob_gain_every skips only the post-update forward: every trained number (weights,
  optimizer state, every other metric) is the run with the gain measured every step.
"""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest

from asymcli.config import TrainConfig, load_config, resolve_run, run_settings
from asymcli.pipeline import fingerprint
from asymcli.training.bundle import Bundle
from asymcli.training.reruns import config_changes
from tests.cli.test_faults import TIMING
from tests.training.test_bundle import RUNS, assert_same_run, same, static_cfg, trainers

GAIN = {"logprob_gain_correct", "logprob_gain_correct_tok"}


def metrics(run_dir):
    return pq.read_table(run_dir / "metrics.parquet").to_pylist()


def test_grouped_forwards_keep_a_run_in_a_bundle_equal_to_the_run_alone(tiny_policy_dir, arith_rows, tmp_path):
    cfg = static_cfg(forward_tokens=64)  # 16 rollouts of ~20-30 tokens: several groups per forward
    alone = [Bundle([t]).train()[0].parent for t in
             (trainers(cfg, [r], arith_rows, tiny_policy_dir, tmp_path / "alone")[0] for r in RUNS[:2])]
    together = [p.parent for p in Bundle(trainers(cfg, RUNS[:2], arith_rows, tiny_policy_dir, tmp_path / "b")).train()]
    for a, b in zip(alone, together):
        assert_same_run(a, b)


def test_grouped_forwards_compute_the_same_function(tiny_policy_dir, arith_rows, tmp_path):
    one = Bundle(trainers(static_cfg(steps=1), RUNS[:1], arith_rows, tiny_policy_dir, tmp_path / "one")).train()[0]
    grouped = Bundle(trainers(static_cfg(steps=1, forward_tokens=64), RUNS[:1], arith_rows, tiny_policy_dir,
                              tmp_path / "grouped")).train()[0]
    a, b = metrics(one.parent)[1], metrics(grouped.parent)[1]
    # step 1: the same rollouts (sampled before any update), so the same data through both layouts
    assert a["reward_mean"] == b["reward_mean"] and a["response_len_mean"] == b["response_len_mean"]
    for k in ("entropy", "kappa", "loss", "grad_norm", "logprob_gain_correct", "approx_kl"):
        assert math.isclose(a[k], b[k], rel_tol=1e-4, abs_tol=1e-6), (k, a[k], b[k])


def test_logprob_gain_every_skips_only_the_diagnostic(tiny_policy_dir, arith_rows, tmp_path):
    every = Bundle(trainers(static_cfg(steps=3), RUNS[:1], arith_rows, tiny_policy_dir, tmp_path / "e1")).train()[0]
    sparse = Bundle(trainers(static_cfg(steps=3, logprob_gain_every=2), RUNS[:1], arith_rows, tiny_policy_dir,
                             tmp_path / "e2")).train()[0]
    off = Bundle(trainers(static_cfg(steps=3, logprob_gain_every=0), RUNS[:1], arith_rows, tiny_policy_dir,
                          tmp_path / "e0")).train()[0]
    ra, rs, ro = metrics(every.parent), metrics(sparse.parent), metrics(off.parent)
    # measured on steps 2 and 3 (every 2nd and the last), NaN on step 1; never with 0
    assert [math.isnan(r["logprob_gain_correct"]) for r in rs[1:]] == [True, False, False]
    assert all(math.isnan(r["logprob_gain_correct"]) for r in ro[1:])
    assert not any(math.isnan(r["logprob_gain_correct"]) for r in ra[1:])
    for x, y, z in zip(ra, rs, ro):
        for k in x:
            if k in TIMING or k in GAIN:
                continue
            assert same(x[k], y[k]) and same(x[k], z[k]), (x["step"], k)
        if not math.isnan(y["logprob_gain_correct"]):
            assert x["logprob_gain_correct"] == y["logprob_gain_correct"]
    # the weights and optimizer state: the gain's forward changes nothing trained
    import shutil
    for d in (sparse.parent, off.parent):
        shutil.copy(every.parent / "metrics.parquet", d / "metrics.parquet")  # compared above, column by column
        assert_same_run(every.parent, d)


def test_the_settings_at_their_defaults_move_no_committed_run():
    cfg = load_config(None, {})
    run = resolve_run(cfg, "grpo")
    settings = run_settings(run)
    assert "forward_tokens" not in settings and "logprob_gain_every" not in settings
    assert TrainConfig().forward_tokens == 16384 and TrainConfig().logprob_gain_every == 1
    faster = load_config(None, {"train": {"forward_tokens": 2048}})
    assert run_settings(resolve_run(faster, "grpo"))["forward_tokens"] == 2048
    assert fingerprint(cfg, "train", "grpo_s0") != fingerprint(faster, "train", "grpo_s0")
    saved = {"run": settings, "model": {}, "task": {}}
    now = {"run": run_settings(resolve_run(faster, "grpo")), "model": {}, "task": {}}
    assert config_changes(saved, now) == ["train.forward_tokens 16384 -> 2048"]
    assert config_changes(saved, {"run": settings, "model": {}, "task": {}}) == []


@pytest.mark.parametrize("key,value", [("forward_tokens", 0), ("logprob_gain_every", -1)])
def test_bad_values_are_refused_naming_the_key(key, value):
    from asymcli.errors import ConfigError

    with pytest.raises(ConfigError, match=f"train.{key}"):
        load_config(None, {"train": {key: value}})


def test_a_changed_forward_setting_reads_as_a_change_both_ways():
    at_default = run_settings(resolve_run(load_config(None, {}), "grpo"))
    grouped = run_settings(resolve_run(load_config(None, {"train": {"forward_tokens": 2048}}), "grpo"))
    desc = lambda run: {"run": run, "model": {}, "task": {}}  # noqa: E731
    assert config_changes(desc(grouped), desc(at_default)) == ["train.forward_tokens 2048 -> 16384"]
