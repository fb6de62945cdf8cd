"""task.kind reasoning_gym: generation, the PROMPTS artifact, the reward from score_answer, errors,
the base's accuracy lines, and eval on a held-out set (asymcli/rg_tasks.py, asymcli/grading/rg.py)."""

from __future__ import annotations

import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from asymcli import artifacts
from asymcli.config import GeneratorSpec, config_from_dict, load_config
from asymcli.errors import ConfigError

rg_lib = pytest.importorskip("reasoning_gym", reason="reasoning-gym is not installed: bash .ci/install-rg")

from asymcli import rg_tasks as rg  # noqa: E402
from asymcli.grading import Grader  # noqa: E402
from asymcli.grading.rg import RGScorer  # noqa: E402
from stages import base as base_stage  # noqa: E402
from stages import prep  # noqa: E402

GENS = [GeneratorSpec("spell_backward", 1.0, {"min_word_len": 3, "max_word_len": 6}),
        GeneratorSpec("basic_arithmetic", 1.0, {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1})]


def _cfg(tmp_path, grading=None, **task):
    t = {"kind": "reasoning_gym", "n_train": 30, "n_heldout": 6,
         "generators": [{"name": "spell_backward", "config": {"min_word_len": 3, "max_word_len": 6}}], **task}
    return config_from_dict({"results_dir": str(tmp_path / "results"), "task": t, "grading": grading or {}})


def test_generation_is_deterministic_weighted_and_the_splits_disjoint():
    a = rg.generate(GENS, 40, 10, seed=3)
    assert a == rg.generate(GENS, 40, 10, seed=3)
    assert a != rg.generate(GENS, 40, 10, seed=4)
    train = [r for r in a if r["split"] == "train"]
    held = [r for r in a if r["split"] == "heldout"]
    assert {r["source"] for r in train} == {"rg/spell_backward", "rg/basic_arithmetic"}
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held}  # disjoint as text
    assert len({r["problem_id"] for r in a}) == len(a)
    # item seeds: train seed + i and held-out seed + j never meet
    assert rg.split_seed(3, "heldout") - rg.split_seed(3, "train") == rg.HELDOUT_OFFSET > 40
    assert rg.shares(10, [1.0, 3.0]) == [3, 7] and rg.shares(5, [1, 1]) == [3, 2]
    assert rg.generate([GeneratorSpec("spell_backward", 1.0, {})], 0, 0) == []


def test_prep_writes_prompts_with_the_generator_and_its_metadata(tmp_path):
    cfg = _cfg(tmp_path)
    path = prep.run(cfg)
    rows = artifacts.read_parquet(path, artifacts.PROMPTS).to_pylist()
    assert [r["split"] for r in rows].count("train") == 30
    r = rows[0]
    assert r["source"] == "rg/spell_backward" and r["difficulty"] == "spell_backward"
    assert r["prompt"].endswith(rg.INSTRUCTION) and r["solution"] == f"\\boxed{{{r['answer']}}}"
    assert json.loads(r["metadata"])["source_dataset"] == "spell_backward"
    assert prep.run(cfg, tmp_path / "b.parquet").read_bytes() != b""  # deterministic:
    assert artifacts.read_parquet(path).drop(["metadata"]).equals(
        artifacts.read_parquet(tmp_path / "b.parquet").drop(["metadata"]))


def test_an_old_prompts_file_without_metadata_still_reads(tmp_path, arith_rows):
    old = pa.schema([f for f in artifacts.PROMPTS if f.name != "metadata"])
    pq.write_table(pa.Table.from_pylist(arith_rows, schema=old), tmp_path / "old.parquet")
    table = artifacts.read_parquet(tmp_path / "old.parquet", artifacts.PROMPTS)
    assert table.column("metadata").null_count == table.num_rows
    assert Grader().grade_rows(["\\boxed{1}"], [dict(arith_rows[0], metadata=None, answer="1")])[0].correct


def test_reward_is_score_answer_made_binary_by_the_threshold():
    row = next(r for r in rg.generate(GENS[:1], 5, 0) if len(r["answer"]) >= 4)
    gold = row["answer"]
    ds = rg_lib.create_dataset("spell_backward", seed=0, size=1)
    near = gold[:-1] + ("x" if gold[-1] != "x" else "y")  # all but the last letter: partial credit
    partial = ds.score_answer(near, rg.entry_of(row))
    assert 0 < partial < 1
    strict, loose = RGScorer(1.0), RGScorer(partial - 1e-9)
    assert strict.score(f"\\boxed{{{gold}}}", row) == (1.0, strict.score(f"\\boxed{{{gold}}}", row)[1])
    assert strict.score(f"\\boxed{{{gold}}}", row)[1].correct
    assert not strict.score(f"\\boxed{{{near}}}", row)[1].correct
    assert loose.score(f"\\boxed{{{near}}}", row)[1].correct
    assert strict.score("no box here", row)[1].reason == "no_answer"
    # through the one Grader, beside an arithmetic row graded by its answer
    arith = {"problem_id": "a", "source": "arith", "prompt": "Compute 1+1.", "answer": "2", "metadata": None}
    verdicts = Grader(rg_threshold=1.0).grade_rows([f"\\boxed{{{gold}}}", "\\boxed{2}", f"\\boxed{{{near}}}"],
                                                   [row, arith, row])
    assert [v.correct for v in verdicts] == [True, True, False]


def test_numeric_answers_are_also_graded_by_the_math_grader():
    row = rg.generate(GENS[1:], 3, 0)[0]
    s = RGScorer()
    s.score(f"\\boxed{{{row['answer']}}}", row)
    s.score("\\boxed{12345}", row)
    assert s.checked == 2 and s.disagreements == []


def test_bad_generator_name_and_config_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"task.generators\[0\].name: unknown reasoning-gym generator "
                                          r"'spel_backward'; close names: spell_backward") as e:
        _cfg(tmp_path, generators=[{"name": "spel_backward"}])
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"task.generators\[0\].config: reasoning-gym rejects the config of "
                                          r"'spell_backward': .*min_word_len") as e:
        _cfg(tmp_path, generators=[{"name": "spell_backward", "config": {"min_word_len": 0}}])
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"task.generators\[0\].config.seed: set by asym"):
        _cfg(tmp_path, generators=[{"name": "spell_backward", "config": {"seed": 1}}])
    with pytest.raises(ConfigError, match=r"unexpected keyword|no_such_field"):
        _cfg(tmp_path, generators=[{"name": "spell_backward", "config": {"no_such_field": 1}}])
    with pytest.raises(ConfigError, match="'task.generators' must name at least one"):
        _cfg(tmp_path, generators=[])
    with pytest.raises(ConfigError, match=r"'grading.rg_threshold' must be in \(0, 1\]"):
        _cfg(tmp_path, grading={"rg_threshold": 0})
    with pytest.raises(ConfigError, match=r"'task.generators\[1\].name' lists generator 'spell_backward' twice"):
        _cfg(tmp_path, generators=[{"name": "spell_backward"}, {"name": "spell_backward"}])
    with pytest.raises(ConfigError, match="'task.generators' is read only with task.kind 'reasoning_gym'"):
        load_config(None, {"task": {"generators": [{"name": "spell_backward"}]}})


def test_missing_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # import fails
    with pytest.raises(ConfigError, match=r"needs the reasoning-gym package: bash .ci/install-rg"):
        _cfg(tmp_path)


def test_base_accuracy_lines_say_which_families_rl_can_use():
    lines = base_stage.accuracy_lines({"aiw": [0, 64], "spell_backward": [30, 64], "chain_sum": [60, 64],
                                       "t1": [5, 64]}, "task.generators[].config")
    aiw, chain, spell, t1 = lines
    assert aiw.startswith("base accuracy on aiw: 0.000 (0/64 samples); the base cannot solve it at all")
    assert "usable for RL" in spell and "above 80%" in chain and "below 20%" in t1


def test_eval_on_a_reasoning_gym_heldout_set(tmp_path, tiny_policy_dir):
    from stages import evaluate as eval_stage

    cfg = _cfg(tmp_path, n_train=4, n_heldout=3)
    cfg = config_from_dict({**{"results_dir": str(tmp_path / "results")},
                            "task": {"kind": "reasoning_gym", "n_train": 4, "n_heldout": 3,
                                     "generators": [{"name": "spell_backward",
                                                     "config": {"min_word_len": 3, "max_word_len": 4}}]},
                            "train": {"max_new_tokens": 6},
                            "eval": {"benchmarks": [{"name": "rg_heldout", "k": 2, "temperature": 0.4}]}})
    prompts = prep.run(cfg)
    out = eval_stage.run(cfg, model=tiny_policy_dir, prompts=prompts, progress=False)
    rows = artifacts.read_parquet(out, artifacts.SAMPLES).to_pylist()
    assert len(rows) == 3 * 2 and {r["benchmark"] for r in rows} == {"rg_heldout"}
    assert all(r["verdict"] in {"correct", "wrong", "no_answer", "unparsable"} for r in rows)


@pytest.mark.parametrize("name,family", [("mechanism-rg", "letter_counting"),
                                         ("mechanism-rg-spell", "spell_backward")])
def test_the_shipped_configs_load(name, family):
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml")
    assert cfg.task.kind == "reasoning_gym" and [g.name for g in cfg.task.generators] == [family]
    assert [b.name for b in cfg.eval.benchmarks] == ["rg_heldout"] and len(cfg.grid.seeds) == 5


@pytest.mark.slow
def test_smoke_run_grid_end_to_end(tmp_path):
    """`asym run-grid` on configs/smoke-rg.yaml: prep, base, 3 runs, eval on rg_heldout, Table 2."""
    import shutil
    import subprocess
    from pathlib import Path

    import yaml

    if shutil.which("asym") is None:
        pytest.skip("the asym command is not installed")
    repo = Path(__file__).resolve().parents[2]
    raw = yaml.safe_load((repo / "configs" / "smoke-rg.yaml").read_text())
    raw["results_dir"] = str(tmp_path / "results")
    (tmp_path / "smoke-rg.yaml").write_text(yaml.safe_dump(raw))
    res = subprocess.run(["asym", "run-grid", "--config", str(tmp_path / "smoke-rg.yaml")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    table = (tmp_path / "results" / "report" / "table2.md").read_text()
    assert "GRPO" in table and "AsymGRPO" in table


def test_constant_answer_baseline_scores_rg_rows_by_their_generator():
    from collections import Counter

    rows = rg.generate([GeneratorSpec("letter_counting", 1.0, {"min_words": 3, "max_words": 6})], 60, 20, seed=1)
    train = [r for r in rows if r["split"] == "train"]
    held = [r for r in rows if r["split"] == "heldout"]
    grader = Grader(rg_threshold=1.0)
    got = base_stage.constant_answer_baseline(train, held, grader)["letter_counting"]
    counts = Counter(r["answer"] for r in train)
    assert counts[got["answer"]] == max(counts.values())
    assert got["train"]["right"] == counts[got["answer"]] and got["train"]["rows"] == len(train)
    assert got["heldout"]["right"] == sum(r["answer"] == got["answer"] for r in held)
    assert grader.rg.checked == len(rows)  # every row went through its generator's score_answer
