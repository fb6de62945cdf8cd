"""Stage eval's bundles (resources.eval_bundle, `asym eval --runs`): several runs evaluated in one
process, each run's samples and parts bit-identical to the run evaluated alone.

The runs are random tiny models (no training: evaluation only reads checkpoints) saved as
complete checkpoints; the alone side is one `asym eval --run` process per run, as the per-run
Snakemake job runs it, the bundle one `asym eval --runs` process; the settings are those of
the CPU testbed configs (train.engine static, portable numerics, one eval thread).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from asymcli import artifacts
from asymcli.config import ModelConfig, load_config
from asymcli.errors import AsymError, ConfigError
from asymcli.evaluation.evaluate import part_path
from stages import evaluate as stage
from tests.cli.test_faults import MODEL

REPO = Path(__file__).resolve().parent.parent.parent
IDS = ["grpo_s0", "asym_bp0.9_bn0.4_s1", "pos_only_s2"]
STEPS = {"grpo_s0": (2, 4), "asym_bp0.9_bn0.4_s1": (4,), "pos_only_s2": (4,)}  # eval.steps: all


def save_checkpoint(run_dir: Path, step: int, seed: int) -> Path:
    """A complete checkpoint of a random tiny model (its COMPLETE marker records its digest)."""
    from asymcli.embedded.tiny import build_model, build_tokenizer, save_policy

    tok = build_tokenizer()
    folder = run_dir / "checkpoints" / f"step_{step:06d}"
    save_policy(build_model(ModelConfig(**MODEL), tok, seed=seed), tok, folder)
    (folder / artifacts.COMPLETE_MARKER).write_text(json.dumps({"files": artifacts.folder_digest(folder)}))
    return folder


def write_project(root: Path, prompts: Path, ids: list[str] = IDS, **sections) -> Path:
    """results/ with a copy of ``prompts`` and the runs' checkpoints; returns the config file."""
    (root / "results" / "data").mkdir(parents=True)
    shutil.copy(prompts, root / "results" / "data" / "prompts.parquet")
    for i, rid in enumerate(ids):
        for step in STEPS[rid]:
            save_checkpoint(root / "results" / "runs" / rid, step, seed=10 * i + step)
    cfg = {"name": "eb", "results_dir": str(root / "results"), "model": MODEL,
           "train": {"engine": "static", "max_new_tokens": 10, "threads": 1},
           "eval": {"steps": "all", "benchmarks": [
               {"name": "arith_heldout", "k": 3, "temperature": 0.8, "limit": 6},
               # a file benchmark: the same path for every project (the path is part of its spec)
               {"name": "arith_greedy", "k": 1, "temperature": 0.0, "path": str(prompts), "columns": {},
                "limit": 4}]},
           "resources": {"eval_threads": 1, "eval_bundle": 3}}
    cfg.update(sections)
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return root / "cfg.yaml"


def same_alone_and_bundled(tmp: Path, prompts: Path, ids: list[str] = IDS, **sections) -> tuple[Path, Path]:
    """The runs ``ids`` evaluated alone (one process each) under tmp/alone and as one bundle
    (one process) under tmp/bundle, from the same checkpoint bytes; asserts their eval
    artifacts are byte for byte the same."""
    alone, bundle = tmp / "alone", tmp / "bundle"
    cfg_alone = write_project(alone, prompts, ids, **sections)
    cfg_bundle = write_project(bundle, prompts, [], **sections)
    for rid in ids:  # the same checkpoint bytes on both sides (their fingerprints key the parts)
        shutil.copytree(alone / "results" / "runs" / rid, bundle / "results" / "runs" / rid)
        asym_eval(cfg_alone, "--run", str(alone / "results" / "runs" / rid))
    asym_eval(cfg_bundle, "--runs", ",".join(ids))
    for rid in ids:
        a, b = eval_files(alone / "results", rid), eval_files(bundle / "results", rid)
        assert a.keys() == b.keys() and "samples.parquet" in a, (rid, sorted(a), sorted(b))
        assert any(name.startswith("parts/") for name in a), (rid, sorted(a))  # the parts compared too
        for name in a:
            assert a[name] == b[name], (rid, name)
    return alone, bundle


def asym_eval(cfg: Path, *args: str) -> None:
    """`asym eval` in a process of its own, as a Snakemake job runs it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-m", "asymcli", "eval", "--config", str(cfg), *args, "--no-progress"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]


def eval_files(results: Path, rid: str) -> dict[str, bytes]:
    """A run's eval artifacts: samples.parquet and every part, by path under evals/{run}/."""
    d = results / "evals" / rid
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def projects(tmp_path_factory, arith_rows):
    """The same runs evaluated alone and as one bundle (and found the same, byte for byte)."""
    tmp = tmp_path_factory.mktemp("eb")
    artifacts.write_parquet(tmp / "prompts.parquet", arith_rows, artifacts.PROMPTS)
    alone, bundle = same_alone_and_bundled(tmp, tmp / "prompts.parquet")
    return alone, bundle, bundle / "cfg.yaml"


def test_a_run_in_an_eval_bundle_equals_the_run_alone(projects):
    _, bundle, _ = projects  # the fixture compared every file
    for rid in IDS:
        rows = artifacts.read_parquet(bundle / "results" / "evals" / rid / "samples.parquet").to_pylist()
        assert {r["run_id"] for r in rows} == {rid} and {r["step"] for r in rows} == set(STEPS[rid])
        assert len(rows) == len(STEPS[rid]) * (6 * 3 + 4)
    # the runs differ (different weights): the comparison compares something
    texts = [[r["response"] for r in artifacts.read_parquet(bundle / "results" / "evals" / rid / "samples.parquet")
              .to_pylist() if r["step"] == 4] for rid in IDS]
    assert texts[0] != texts[1] != texts[2]


def test_a_reasoning_gym_run_in_an_eval_bundle_equals_the_run_alone(tmp_path):
    """configs/mechanism-rg*.yaml's path: rg_heldout, graded by the generator's score_answer."""
    pytest.importorskip("reasoning_gym", reason="reasoning-gym is not installed: bash .ci/install-rg")
    from asymcli.config import config_from_dict
    from stages import prep

    task = {"kind": "reasoning_gym", "n_train": 4, "n_heldout": 4,
            "generators": [{"name": "letter_counting", "config": {"min_words": 3, "max_words": 4}}]}
    prompts = prep.run(config_from_dict({"results_dir": str(tmp_path / "prep"), "task": task}))
    ids = IDS[1:]
    same_alone_and_bundled(tmp_path, prompts, ids, task=task,
                           eval={"steps": "final", "benchmarks": [{"name": "rg_heldout", "k": 2, "temperature": 0.4}]})
    rows = artifacts.read_parquet(tmp_path / "bundle" / "results" / "evals" / ids[0] / "samples.parquet").to_pylist()
    assert len(rows) == 4 * 2 and {r["benchmark"] for r in rows} == {"rg_heldout"}


def test_a_missing_or_retrained_run_is_the_only_one_sampled_again(projects, tmp_path):
    _, bundle, cfg_path = projects
    work = tmp_path / "work"
    shutil.copytree(bundle, work, symlinks=True)
    cfg = work / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(dict(yaml.safe_load(cfg_path.read_text()), results_dir=str(work / "results"))))
    evals = work / "results" / "evals"
    parts = {rid: {p: p.stat().st_mtime_ns for p in (evals / rid / "parts").glob("*.parquet")} for rid in IDS}
    before = {rid: eval_files(work / "results", rid) for rid in IDS}
    # a missing samples.parquet: rebuilt from the kept parts, the same bytes, nothing sampled
    (evals / IDS[0] / "samples.parquet").unlink()
    asym_eval(cfg, "--runs", ",".join(IDS))
    for rid in IDS:
        assert eval_files(work / "results", rid) == before[rid]
        assert {p: p.stat().st_mtime_ns for p in parts[rid]} == parts[rid]
    # a run whose evaluation is gone (evals/{run}/ removed): only it is sampled, to the same bytes
    shutil.rmtree(evals / IDS[2])
    asym_eval(cfg, "--runs", ",".join(IDS))
    for rid in IDS[:2]:
        assert {p: p.stat().st_mtime_ns for p in parts[rid]} == parts[rid]
    assert {rid: eval_files(work / "results", rid) for rid in IDS} == before
    parts[IDS[2]] = {p: p.stat().st_mtime_ns for p in (evals / IDS[2] / "parts").glob("*.parquet")}
    # one run retrained (a new final checkpoint): only its part of that step is sampled again
    save_checkpoint(work / "results" / "runs" / IDS[1], 4, seed=99)
    asym_eval(cfg, "--runs", ",".join(IDS))
    for rid in (IDS[0], IDS[2]):
        assert {p: p.stat().st_mtime_ns for p in parts[rid]} == parts[rid]
        assert eval_files(work / "results", rid) == before[rid]
    redone = part_path(evals / IDS[1], 4, "arith_heldout")
    assert redone.stat().st_mtime_ns != parts[IDS[1]][redone]
    assert eval_files(work / "results", IDS[1])["parts/step000004__arith_heldout.parquet"] != \
        before[IDS[1]]["parts/step000004__arith_heldout.parquet"]


def test_bad_bundles_are_refused_in_one_line(projects, tmp_path):
    _, _, cfg_path = projects
    cfg = load_config(cfg_path)
    for ids, msg in ((["grpo_s0", "grpo_s0"], "names a run twice"), ([], "--runs is empty"),
                     (["grpo_s0", "base"], "base"), (["grpo_s0", "reinforce_s7"], "run folder does not exist")):
        with pytest.raises(AsymError, match=msg) as err:
            stage.run_bundle(cfg, ids, progress=False)
        assert "\n" not in str(err.value)
    for bad in (0, -1, "two"):
        with pytest.raises(ConfigError, match=r"resources\.eval_bundle") as err:
            load_config(None, {"resources": {"eval_bundle": bad}})
        assert "\n" not in str(err.value)


def test_grouping_and_the_per_run_rule():
    import re

    from asymcli.pipeline import eval_bundles, run_id_regex

    cfg = load_config(None, {"resources": {"eval_bundle": 4},
                             "grid": {"methods": ["grpo", "reinforce"], "betas": [[0.9, 0.4]], "seeds": [0, 1, 2],
                                      "grid": [0.1, 0.5]}})
    bundles = eval_bundles(cfg)
    table = {f"{m}_s{s}" for m in ("grpo", "reinforce", "asym_bp0.9_bn0.4") for s in (0, 1, 2)}
    grouped = [set(v) for v in bundles.values()]
    assert sum(len(g) for g in grouped) == len({r for g in grouped for r in g})  # each run once
    assert set().union(*[g for g in grouped if g & table]) == table  # table runs never with grid-only ones
    assert sorted(len(g) for g in grouped if g & table) == [3, 3, 3]
    rx = re.compile(run_id_regex([r for g in grouped for r in g]))
    assert not rx.fullmatch("grpo_s0") and rx.fullmatch("grpo_s7")
    assert eval_bundles(load_config(None, {"train": {"engine": "hf"}, "resources": {"eval_bundle": 4}}))  # any engine
    assert eval_bundles(load_config(None)) == {}
