"""Bundles (asymcli/training/bundle.py): K runs in one process, each bit-identical to itself alone.

In-process tests build Trainers directly (a deterministic parity reward gives mixed groups,
so both advantage channels, kappa and the log-prob gain move); the CLI tests run the real
`asym train --runs` in a forked child (tests/cli/test_faults.py's harness) to kill it mid-bundle.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from asymcli.config import load_config, resolve_run
from asymcli.errors import ConfigError
from asymcli.pipeline import run_id_regex, train_bundles
from asymcli.training.bundle import Bundle, stacked_reason
from asymcli.training.trainer import Trainer
from tests.cli.test_faults import KILLED, MODEL, TIMING, asym
from tests.training.test_trainer import ParityGrader, split

RUNS = [("asym", 0.9, 0.4, 0), ("grpo", None, None, 1), ("asym_adaptive", None, None, 2), ("pos_only", None, None, 3)]


def static_cfg(**train):
    t = {"steps": 3, "prompts_per_step": 4, "mini_batch_prompts": 2, "group_size": 4, "max_new_tokens": 12,
         "eval_every": 2, "eval_prompts": 4, "checkpoint_every": 2, "lr": 1e-3, "warmup_steps": 1,
         "engine": "static", "threads": 1}
    t.update(train)
    return load_config(None, {"model": MODEL, "train": t})


def trainers(cfg, runs, rows, model_dir, root: Path) -> list[Trainer]:
    tr, he = split(rows)
    out = []
    for method, bp, bn, seed in runs:
        run = resolve_run(cfg, method, bp, bn, seed)
        out.append(Trainer(cfg, run, tr, he, model_dir, root / f"{method}_s{seed}", grader=ParityGrader(),
                           progress=False, stacked=True))
    return out


def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def assert_same_run(a: Path, b: Path) -> None:
    """Metrics (outside timing columns), final weights and optimizer state bit for bit."""
    ra, rb = pq.read_table(a / "metrics.parquet").to_pylist(), pq.read_table(b / "metrics.parquet").to_pylist()
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb):
        for k in x:
            if k not in TIMING:
                assert same(x[k], y[k]), (a.name, x["step"], k, x[k], y[k])
    ca, cb = sorted((a / "checkpoints").glob("step_*")), sorted((b / "checkpoints").glob("step_*"))
    assert [p.name for p in ca] == [p.name for p in cb] and ca
    for f in ("model.safetensors", "optimizer.pt"):
        assert (ca[-1] / f).read_bytes() == (cb[-1] / f).read_bytes() if f.endswith("safetensors") else \
            _same_state(torch.load(ca[-1] / f, weights_only=False), torch.load(cb[-1] / f, weights_only=False)), f


def _same_state(x, y) -> bool:
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and torch.equal(x, y)
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_same_state(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return len(x) == len(y) and all(_same_state(u, v) for u, v in zip(x, y))
    return x == y


def test_a_run_in_a_bundle_equals_the_run_alone(tiny_policy_dir, arith_rows, tmp_path):
    cfg = static_cfg()
    alone = [Bundle([t]).train()[0].parent for t in
             (trainers(cfg, [r], arith_rows, tiny_policy_dir, tmp_path / "alone")[0] for r in RUNS)]
    together = [p.parent for p in Bundle(trainers(cfg, RUNS, arith_rows, tiny_policy_dir, tmp_path / "bundle")).train()]
    for a, b in zip(alone, together):
        assert_same_run(a, b)
    rows = pq.read_table(together[0] / "metrics.parquet").to_pylist()
    assert any(r["mixed_frac"] > 0 for r in rows[1:]) and any(not math.isnan(r["logprob_gain_correct"]) for r in rows[1:])
    assert not math.isnan(rows[2]["eval_greedy_acc"])  # the greedy curve ran stacked too


def test_runs_at_different_steps_share_a_bundle(tiny_policy_dir, arith_rows, tmp_path):
    """A resumed run (at step 3) and a fresh one (at step 1) train in one bundle; each ends as alone."""
    cfg = static_cfg(steps=4)
    ref = [Bundle([t]).train()[0].parent for t in
           (trainers(cfg, [r], arith_rows, tiny_policy_dir, tmp_path / "ref")[0] for r in RUNS[:2])]
    short = static_cfg(steps=2)
    first = trainers(short, RUNS[:1], arith_rows, tiny_policy_dir, tmp_path / "mixed")
    Bundle(first).train()
    (tmp_path / "mixed" / "asym_s0" / "metrics.parquet").unlink()  # as if killed after its step-2 checkpoint
    both = trainers(cfg, RUNS[:2], arith_rows, tiny_policy_dir, tmp_path / "mixed")
    assert [t.start_step for t in both] == [3, 1]
    out = [p.parent for p in Bundle(both).train()]
    for a, b in zip(ref, out):
        assert_same_run(a, b)


def test_bad_bundles_are_refused_in_one_line(tiny_policy_dir, arith_rows, tmp_path):
    cfg = static_cfg()
    a = trainers(cfg, RUNS[:1], arith_rows, tiny_policy_dir, tmp_path)
    b = trainers(static_cfg(group_size=2), RUNS[1:2], arith_rows, tiny_policy_dir, tmp_path)
    with pytest.raises(ConfigError, match=r"different train\.group_size") as err:
        Bundle(a + b)
    assert "\n" not in str(err.value)
    hf = resolve_run(load_config(None, {"train": {"engine": "hf"}}), "grpo", seed=0)
    assert "engine is 'hf'" in stacked_reason(hf)
    with pytest.raises(ConfigError, match="resources.train_bundle"):
        load_config(None, {"resources": {"train_bundle": 0}})


def test_grouping_and_the_per_run_rule():
    cfg = load_config(None, {"train": {"engine": "static", "device": "cpu"}, "resources": {"train_bundle": 4},
                             "grid": {"methods": ["grpo", "reinforce"], "betas": [[0.9, 0.4]], "seeds": [0, 1, 2],
                                      "grid": [0.1, 0.5]}})
    bundles = train_bundles(cfg)
    table = {f"{m}_s{s}" for m in ("grpo", "reinforce", "asym_bp0.9_bn0.4") for s in (0, 1, 2)}
    grouped = [set(v) for v in bundles.values()]
    assert sum(len(g) for g in grouped) == len({r for g in grouped for r in g})  # each run once
    assert all(len(g) <= 4 for g in grouped)
    assert set().union(*[g for g in grouped if g & table]) == table  # table runs never bundled with grid-only ones
    assert sorted(len(g) for g in grouped if g & table) == [3, 3, 3]  # 9 runs, at most 4: 3 even bundles
    import re

    rx = re.compile(run_id_regex([r for g in grouped for r in g]))
    assert not rx.fullmatch("grpo_s0") and rx.fullmatch("grpo_s7")
    assert train_bundles(load_config(None, {"train": {"engine": "hf"}, "resources": {"train_bundle": 4}})) == {}


# ---------------------------------------------------------------------------
# The real CLI: kill mid-bundle, resume; one changed run
# ---------------------------------------------------------------------------

TRAIN = {"steps": 4, "prompts_per_step": 4, "mini_batch_prompts": 2, "group_size": 4, "max_new_tokens": 12,
         "eval_every": 2, "eval_prompts": 4, "checkpoint_every": 2, "keep_last": 2, "lr": 1e-3,
         "warmup_steps": 1, "entropy_coef": 0.05, "threads": 1, "engine": "static"}
IDS = ["grpo_s0", "asym_bp0.9_bn0.4_s2"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bundle_cli")
    cfg = {"name": "bundle", "results_dir": str(root / "results"), "model": MODEL, "train": TRAIN,
           "task": {"n_train": 64, "n_heldout": 8, "tiers": ["t1"]},
           "base": {"steps": 2, "batch_size": 4, "warmup_steps": 1, "probe_prompts": 4}}
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert asym(["prep", "--config", str(root / "cfg.yaml")], root / "logs" / "prep.log") == 0
    assert asym(["base", "--config", str(root / "cfg.yaml")], root / "logs" / "base.log") == 0
    return root


def bundle_cmd(root: Path, results: str, ids=IDS, config="cfg.yaml") -> list[str]:
    cfg = yaml.safe_load((root / config).read_text())
    cfg["results_dir"] = str(root / results)
    (root / f"{results}.yaml").write_text(yaml.safe_dump(cfg))
    return ["train", "--config", str(root / f"{results}.yaml"), "--runs", ",".join(ids),
            "--prompts", str(root / "results" / "data" / "prompts.parquet"), "--no-progress", "--fresh-on-change"]


def link_base(root: Path, results: str) -> None:
    (root / results).mkdir(exist_ok=True)
    if not (root / results / "base").exists():
        os.symlink(root / "results" / "base", root / results / "base")


def test_kill_inside_a_bundle_then_rerun_gives_the_uninterrupted_numbers(project):
    for name in ("whole", "killed"):
        link_base(project, name)
    assert asym(bundle_cmd(project, "whole"), project / "logs" / "whole.log") == 0
    cmd = bundle_cmd(project, "killed")
    assert asym(cmd, project / "logs" / "k1.log", env={"ASYM_FAULT": "update:3"}) == KILLED
    assert asym(cmd, project / "logs" / "k2.log") == 0, (project / "logs" / "k2.log").read_text()[-2000:]
    for rid in IDS:
        assert_same_run(project / "whole" / "runs" / rid, project / "killed" / "runs" / rid)
    # asym status sees bundled runs as runs: trained, their checkpoints, nothing stale or damaged
    from asymcli.pipeline import collect_status

    cfg = load_config(project / "killed.yaml", {"grid": {"methods": ["grpo", "reinforce"], "betas": [[0.9, 0.4]],
                                                       "seeds": [0, 1, 2]}})
    rows = {r.run_id: r for r in collect_status(cfg).runs}
    for rid in IDS:
        assert rows[rid].trained and rows[rid].checkpoints == [2, 4] and not rows[rid].damage, rows[rid]


def test_a_changed_run_retrains_and_the_others_stay(project):
    link_base(project, "change")
    assert asym(bundle_cmd(project, "change"), project / "logs" / "c1.log") == 0
    keep = project / "change" / "runs" / IDS[1] / "checkpoints" / "step_000004" / "model.safetensors"
    before = keep.stat().st_mtime_ns
    cfg = yaml.safe_load((project / "cfg.yaml").read_text())
    cfg["methods"] = {"grpo": {"lr": 5e-4}}  # only grpo_s0's slice changes
    (project / "cfg2.yaml").write_text(yaml.safe_dump(cfg))
    log = project / "logs" / "c2.log"
    assert asym(bundle_cmd(project, "change", config="cfg2.yaml"), log) == 0
    assert "config changed since the last checkpoint" in log.read_text()
    assert (project / "change" / "runs" / IDS[0] / "previous").is_dir()  # the old grpo run, set aside
    assert keep.stat().st_mtime_ns == before  # reinforce_s1 was not retrained
    assert (project / "change" / "runs" / IDS[1] / "metrics.parquet").exists()
