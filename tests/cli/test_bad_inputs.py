"""Every bad input gets one clear line and loses nothing.

Each case drives the real CLI (``asymcli.cli.app`` through Typer's CliRunner) with one
thing wrong and checks: exit code 2, exactly one line on stderr, starting with ``error:``
and naming the culprit (file, key, option, row or column), no traceback, and no file
created, changed or removed anywhere under the test's folder.

The grader cases at the end are the opposite kind: hostile answers (huge powers, 1 MB
answers, deep nesting, unbalanced LaTeX) are not errors; `asym grade` must return a
verdict, exit 0, within a bounded time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from asymcli import artifacts
from asymcli.cli import app

MODEL = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 64}
TRAIN = {"steps": 2, "prompts_per_step": 4, "mini_batch_prompts": 2, "group_size": 4, "max_new_tokens": 8,
         "eval_every": 0, "checkpoint_every": 0, "threads": 1}


@dataclass
class WS:
    """A workspace: good inputs next to bad ones; every output would land under ``root``."""

    root: Path
    prompts: Path
    model: Path
    run: Path  # a run folder with one complete checkpoint (step 2)

    def config(self, name: str, overrides: dict | None = None, text: str | None = None) -> str:
        path = self.root / "configs" / f"{name}.yaml"
        if text is None:
            data = {"results_dir": str(self.root / "results"), "model": dict(MODEL), "train": dict(TRAIN),
                    "eval": {"benchmarks": [{"name": "arith_heldout", "k": 2, "temperature": 0.4, "limit": 4}]}}
            for key, value in (overrides or {}).items():
                node = data
                *head, last = key.split(".")
                for h in head:
                    node = node.setdefault(h, {})
                node[last] = value
            text = yaml.safe_dump(data)
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return str(path)

    def file(self, name: str, data: bytes | str) -> str:
        path = self.root / "inputs" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def prompts_file(self, name: str, rows: list[dict] | None = None, table: pa.Table | None = None) -> str:
        path = self.root / "inputs" / name
        path.parent.mkdir(exist_ok=True)
        pq.write_table(table if table is not None else pa.Table.from_pylist(rows, schema=artifacts.PROMPTS), path)
        return str(path)

    def train(self, cfg: str, *extra: str, prompts: str | None = None, model: str | None = None) -> list[str]:
        return ["train", "--config", cfg, "--prompts", prompts or str(self.prompts), "--model", model or str(self.model),
                "--out", str(self.root / "results" / "runs" / "r"), "--no-progress", *extra]

    def eval(self, cfg: str, *extra: str, source: tuple[str, ...] | None = None) -> list[str]:
        return ["eval", "--config", cfg, *(source or ("--model", str(self.model))), "--prompts", str(self.prompts),
                "--out", str(self.root / "results" / "evals" / "x" / "samples.parquet"), "--no-progress", *extra]


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny_policy_dir, arith_rows) -> WS:
    root = tmp_path_factory.mktemp("bad_inputs")
    prompts = root / "inputs" / "prompts.parquet"
    artifacts.write_parquet(prompts, arith_rows, artifacts.PROMPTS)
    model = root / "inputs" / "model"
    shutil.copytree(tiny_policy_dir, model)
    run = root / "inputs" / "run"
    ckpt = run / "checkpoints" / "step_000002"
    shutil.copytree(tiny_policy_dir, ckpt)
    (ckpt / "COMPLETE").write_text(json.dumps({"step": 2}))
    (root / "results").mkdir()
    return WS(root, prompts, model, run)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (-1, 0)
            for p in sorted(root.rglob("*"))}


def check_one_line_error(ws: WS, args: list[str], *needles: str) -> str:
    before = snapshot(ws.root)
    result = CliRunner().invoke(app, args)
    err = result.stderr
    context = f"args={args}\nexit={result.exit_code}\nstderr={err!r}\nstdout={result.stdout[-500:]!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), context
    assert result.exit_code == 2, context
    assert "Traceback" not in err + result.stdout, context
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), context
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not named\n{context}"
    after = snapshot(ws.root)
    # Inputs written by this very case (its config) were made before `before`.
    assert after == before, f"files changed: {set(after.items()) ^ set(before.items())}\n{context}"
    return lines[0]


# ---------------------------------------------------------------------------
# The corpus: (id, args builder, culprit(s) the line must name)
# ---------------------------------------------------------------------------

Case = tuple[str, Callable[[WS], list[str]], tuple[str, ...]]


def _rows(ws: WS) -> list[dict]:
    return artifacts.read_parquet(ws.prompts, artifacts.PROMPTS).to_pylist()


def _dup_ids(ws: WS) -> str:
    rows = _rows(ws)
    rows[5]["problem_id"] = rows[2]["problem_id"]
    return ws.prompts_file("dup_ids.parquet", rows)


def _no_answer_col(ws: WS) -> str:
    t = pa.Table.from_pylist(_rows(ws), schema=artifacts.PROMPTS).drop(["answer"])
    return ws.prompts_file("no_answer.parquet", table=t)


def _truncated(ws: WS) -> str:
    data = ws.prompts.read_bytes()
    return ws.file("truncated.parquet", data[: len(data) // 2])


def _model_without_tokenizer(ws: WS) -> str:
    folder = ws.root / "inputs" / "model_no_tok"
    if not folder.exists():
        shutil.copytree(ws.model, folder)
        for f in folder.iterdir():
            if f.name.startswith(("tokenizer", "special_tokens", "vocab", "merges", "chat_template")):
                f.unlink()
    return str(folder)


def _bench(ws: WS, name: str, data: bytes | str, **spec) -> str:
    path = ws.file(name, data)
    return ws.config(f"bench_{name}", {"eval.benchmarks": [{"name": "custom", "k": 1, "temperature": 0.0,
                                                           "path": path, **spec}]})


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _samples(run_id: str, step: int, k: int) -> list[dict]:
    method = "base" if run_id == "base" else run_id.split("_s")[0]
    return [{"run_id": run_id, "method": method, "beta_pos": float("nan"), "beta_neg": float("nan"), "seed": -1,
             "step": step, "benchmark": "arith_heldout", "problem_id": f"p{i}", "difficulty": "t1", "sample_idx": j,
             "temperature": 0.4, "response": "\\boxed{1}", "extracted": "1", "verdict": "wrong", "correct": False,
             "n_tokens": 3, "finish_reason": "stop"} for i in range(3) for j in range(k)]


def _samples_with_k(ws: WS, k: int) -> str:
    """A results folder whose base evaluation drew ``k`` samples per problem; the config asks 4."""
    results = ws.root / "inputs" / f"results_k{k}"
    if not results.exists():
        artifacts.write_parquet(results / "evals" / "base" / "samples.parquet", _samples("base", 0, k), artifacts.SAMPLES)
    return ws.config(f"agg_k{k}", {"results_dir": str(results),
                                   "eval.benchmarks": [{"name": "arith_heldout", "k": 4, "temperature": 0.4}]})


def _reported_step_not_evaluated(ws: WS) -> str:
    """A GRPO run evaluated at its final step 6 only, while report.checkpoint asks for step 4."""
    results = ws.root / "inputs" / "results_step"
    if not results.exists():
        artifacts.write_parquet(results / "evals" / "base" / "samples.parquet", _samples("base", 0, 2), artifacts.SAMPLES)
        artifacts.write_parquet(results / "evals" / "grpo_s0" / "samples.parquet", _samples("grpo_s0", 6, 2),
                                artifacts.SAMPLES)
    return ws.config("agg_step", {"results_dir": str(results), "report.checkpoint": "4"})


def _truncated_metrics(ws: WS) -> str:
    results = ws.root / "inputs" / "results_trunc"
    path = results / "runs" / "grpo_s0" / "metrics.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True)
        path.write_bytes(b"PAR1" + b"\0" * 64)
    return ws.config("agg_trunc", {"results_dir": str(results)})


CASES: list[Case] = [
    # --- config files
    ("malformed_yaml", lambda w: w.train(w.config("malformed", text="train: [steps: 3\n")), ("malformed.yaml", "malformed YAML", "line")),
    ("yaml_not_a_mapping", lambda w: w.train(w.config("listy", text="- 1\n- 2\n")), ("listy.yaml", "mapping")),
    ("config_missing", lambda w: w.train(str(w.root / "configs" / "nope.yaml")), ("nope.yaml", "does not exist")),
    ("config_not_utf8", lambda w: w.train(_latin1(w)), ("latin1.yaml", "not UTF-8")),
    ("unknown_top_key", lambda w: w.train(w.config("unk_top", {"trian": {"steps": 3}})), ("'trian'",)),
    ("unknown_nested_key", lambda w: w.train(w.config("unk_nested", {"train.stpes": 3})), ("'train.stpes'",)),
    ("unknown_estimator_override", lambda w: w.train(w.config("unk_est", {"methods": {"grpo": {"estimator": "grpoo"}}}), "--method", "grpo"),
     ("grpoo", "known estimators")),
    ("unknown_estimator_train", lambda w: w.train(w.config("unk_est2", {"train.estimator": "asymm"})), ("train.estimator", "asymm")),
    ("unknown_method_option", lambda w: w.train(w.config("ok1"), "--method", "grpoo"), ("grpoo", "known methods")),
    ("unknown_method_in_grid", lambda w: w.train(w.config("unk_grid_m", {"grid.methods": ["reinforc"]})), ("grid.methods", "reinforc")),
    # --- betas
    ("beta_negative_option", lambda w: w.train(w.config("ok2"), "--beta-pos", "-0.1"), ("--beta-pos", "-0.1")),
    ("beta_nan_option", lambda w: w.train(w.config("ok3"), "--beta-pos", "nan"), ("--beta-pos", "nan")),
    ("beta_inf_option", lambda w: w.train(w.config("ok4"), "--beta-neg", "inf"), ("--beta-neg", "inf")),
    ("beta_string_option", lambda w: w.train(w.config("ok5"), "--beta-pos", "high"), ("--beta-pos",)),
    ("beta_string_config", lambda w: w.train(w.config("beta_str", {"train.beta_pos": "high"})), ("train.beta_pos", "high")),
    ("beta_negative_config", lambda w: w.train(w.config("beta_neg", {"train.beta_neg": -1})), ("beta_neg", "-1")),
    ("beta_nan_grid", lambda w: w.train(w.config("beta_nan_grid", {"grid.betas": [[float("nan"), 0.4]]})),
     ("grid.betas[0][0]", "nan")),
    ("betas_option_not_a_pair", lambda w: ["run-grid", "--config", w.config("ok6"), "--betas", "0.9", "--dry-run"], ("--betas", "pair")),
    ("betas_option_string", lambda w: ["run-grid", "--config", w.config("ok7"), "--betas", "high,0.4", "--dry-run"], ("--betas", "'high'")),
    ("beta_for_non_asym", lambda w: w.train(w.config("ok8"), "--method", "grpo", "--beta-pos", "0.5"), ("--beta-pos", "grpo")),
    # --- training settings
    ("group_size_1", lambda w: w.train(w.config("g1", {"train.group_size": 1})), ("train.group_size", ">= 2")),
    ("temperature_negative", lambda w: w.train(w.config("tneg", {"train.temperature": -0.5})), ("train.temperature", "-0.5")),
    ("temperature_nan", lambda w: w.train(w.config("tnan", {"train.temperature": float("nan")})), ("train.temperature", "nan")),
    ("eval_temperature_negative", lambda w: w.eval(w.config("etneg", {"eval.benchmarks": [{"name": "arith_heldout", "temperature": -1.0}]})),
     ("eval.benchmarks[0].temperature",)),
    ("lr_overflow", lambda w: w.train(w.config("lr_big", {"train.lr": 1e39})), ("train.lr",)),
    ("top_p_zero", lambda w: w.train(w.config("top_p0", {"train.top_p": 0.0})), ("train.top_p",)),
    ("mini_batch_not_dividing", lambda w: w.train(w.config("mb3", {"train.mini_batch_prompts": 3})), ("train.mini_batch_prompts",)),
    ("steps_option_zero", lambda w: w.train(w.config("ok9"), "--steps", "0"), ("--steps",)),
    ("seed_option_string", lambda w: w.train(w.config("ok10"), "--seed", "first"), ("--seed",)),
    ("unknown_option", lambda w: w.train(w.config("ok11"), "--betapos", "0.9"), ("--betapos",)),
    # --- k and the samples it promises
    ("k_zero", lambda w: w.eval(w.config("k0", {"eval.benchmarks": [{"name": "arith_heldout", "k": 0}]})), ("eval.benchmarks[0].k",)),
    ("k_above_one_greedy", lambda w: w.eval(w.config("kgreedy", {"eval.benchmarks": [{"name": "arith_heldout", "k": 4, "temperature": 0.0}]})),
     ("eval.benchmarks[0].k", "temperature 0")),
    ("k_larger_than_samples", lambda w: ["aggregate", "--config", _samples_with_k(w, 2), "--part", "table2"],
     ("samples.parquet", "arith_heldout", "k=2", "k=4")),
    ("reported_step_not_evaluated", lambda w: ["aggregate", "--config", _reported_step_not_evaluated(w), "--part", "table2"],
     ("grpo_s0/samples.parquet", "step 4", "report.checkpoint", "[6]")),
    ("duplicate_benchmark", lambda w: w.eval(w.config("dupbench", {"eval.benchmarks": [{"name": "arith_heldout"}, {"name": "arith_heldout"}]})),
     ("eval.benchmarks", "twice")),
    # --- data files
    ("prompts_missing", lambda w: w.train(w.config("ok12"), prompts=str(w.root / "inputs" / "none.parquet")), ("none.parquet", "does not exist")),
    ("prompts_truncated", lambda w: w.train(w.config("ok13"), prompts=_truncated(w)), ("truncated.parquet", "truncated or corrupted")),
    ("prompts_empty", lambda w: w.train(w.config("ok14"), prompts=w.prompts_file("empty.parquet", [])), ("empty.parquet", "no rows")),
    ("prompts_missing_answer_column", lambda w: w.train(w.config("ok15"), prompts=_no_answer_col(w)), ("no_answer.parquet", "'answer'")),
    ("prompts_duplicate_ids", lambda w: w.train(w.config("ok16"), prompts=_dup_ids(w)), ("dup_ids.parquet", "duplicate problem_id")),
    ("benchmark_empty", lambda w: w.eval(_bench(w, "empty.jsonl", "")), ("empty.jsonl", "empty dataset")),
    ("benchmark_missing_answer", lambda w: w.eval(_bench(w, "noans.jsonl", _jsonl([{"problem": "1+1?"}]))), ("noans.jsonl", "no answer column")),
    ("benchmark_duplicate_ids", lambda w: w.eval(_bench(w, "dups.jsonl", _jsonl([{"id": "a", "problem": "1+1", "answer": "2"},
                                                                             {"id": "a", "problem": "2+2", "answer": "4"}]))),
     ("dups.jsonl", "row 2", "duplicate problem_id 'a'")),
    ("benchmark_not_utf8", lambda w: w.eval(_bench(w, "latin.jsonl", b'{"problem": "caf\xe9", "answer": "1"}\n')), ("latin.jsonl", "not UTF-8", "line 1")),
    ("benchmark_malformed_json", lambda w: w.eval(_bench(w, "broken.jsonl", '{"problem": "1+1", "answer": 2\n')), ("broken.jsonl", "line 1")),
    ("benchmark_unknown", lambda w: w.eval(w.config("unkbench", {"eval.benchmarks": [{"name": "math5000"}]})), ("math5000", "known benchmarks")),
    ("benchmark_not_in_config", lambda w: w.eval(w.config("ok17"), "--benchmarks", "aime24"), ("aime24",)),
    # --- models and checkpoints
    ("model_missing", lambda w: w.train(w.config("ok18"), model=str(w.root / "inputs" / "no_model")), ("no_model", "does not exist")),
    ("model_without_tokenizer", lambda w: w.train(w.config("ok19"), model=_model_without_tokenizer(w)), ("model_no_tok", "tokenizer")),
    ("eval_model_without_config", lambda w: w.eval(w.config("ok20"), source=("--model", str(w.root / "inputs"))), ("inputs", "config.json")),
    ("checkpoint_step_missing", lambda w: w.eval(w.config("ok21"), "--steps", "99", source=("--run", str(w.run))),
     ("[99]", "do not exist", "available steps: [2]")),
    ("checkpoint_steps_not_numbers", lambda w: w.eval(w.config("ok22"), "--steps", "last", source=("--run", str(w.run))), ("--steps", "last")),
    ("eval_run_and_model", lambda w: w.eval(w.config("ok23"), source=("--run", str(w.run), "--model", str(w.model))), ("--run", "--model")),
    ("eval_run_missing", lambda w: w.eval(w.config("ok24"), source=("--run", str(w.root / "inputs" / "no_run"))), ("no_run", "does not exist")),
    # --- pipeline commands
    ("aggregate_truncated_metrics", lambda w: ["aggregate", "--config", _truncated_metrics(w), "--part", "curves"],
     ("metrics.parquet", "truncated or corrupted")),
    ("aggregate_unknown_part", lambda w: ["aggregate", "--config", w.config("ok25"), "--part", "tabel2"], ("--part", "tabel2")),
    ("report_checkpoint_word", lambda w: ["report", "--config", w.config("rcp", {"report.checkpoint": "last"})], ("report.checkpoint", "last")),
    ("run_grid_cores_zero", lambda w: ["run-grid", "--config", w.config("ok26"), "--cores", "0", "--dry-run"], ("--cores",)),
    ("run_grid_unknown_target", lambda w: ["run-grid", "--config", w.config("ok27"), "--target", "tabel2", "--dry-run"], ("--target", "tabel2")),
    ("run_grid_bad_seeds", lambda w: ["run-grid", "--config", w.config("ok28"), "--seeds", "0,-1", "--dry-run"], ("--seeds",)),
    ("curves_unknown_estimator", lambda w: ["curves", "--estimator", "asymm"], ("asymm", "known estimators")),
    ("curves_group_size_1", lambda w: ["curves", "--estimator", "grpo", "--group-size", "1"], ("group",)),
    ("grade_bad_format", lambda w: ["grade", "\\boxed{1}", "1", "--format", "xml"], ("--format", "xml")),
    ("grade_bad_timeout", lambda w: ["grade", "\\boxed{1}", "1", "--timeout", "0"], ("--timeout",)),
]


def _latin1(w: WS) -> str:
    path = w.root / "configs" / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    return str(path)


def test_corpus_is_large_enough():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_writes_nothing(case: Case, ws: WS):
    _, build, needles = case
    args = build(ws)  # builds the bad input first: the snapshot is taken after
    check_one_line_error(ws, args, *needles)


# ---------------------------------------------------------------------------
# The grader: hostile answers get a verdict, in bounded time, never an error
# ---------------------------------------------------------------------------

HOSTILE = [
    ("power_tower", "The answer is \\boxed{9^{9^{9^{9}}}}", "1"),
    ("huge_power", "\\boxed{10^{10^{100}}}", "10"),
    ("huge_factorial", "\\boxed{100000!}", "1"),
    ("megabyte_answer", "\\boxed{" + "1" * 1_000_000 + "}", "1"),
    ("megabyte_response_no_box", "x" * 1_000_000, "1"),
    ("deep_braces", "\\boxed{" + "{" * 20_000 + "1" + "}" * 20_000 + "}", "1"),
    ("deep_fractions", "\\boxed{" + "\\frac{1}{" * 500 + "2" + "}" * 500 + "}", "1"),
    ("unbalanced_open", "\\boxed{\\frac{1}{2", "1/2"),
    ("unbalanced_left_right", "\\boxed{\\left( 1, 2 }", "(1,2)"),
    ("unbalanced_gold", "\\boxed{2}", "\\frac{1}{"),
    ("many_boxes", "\\boxed{}" * 50_000 + "\\boxed{3}", "3"),
]


@pytest.mark.parametrize("pred,gold", [(p, g) for _, p, g in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_grader_returns_a_verdict_in_bounded_time(pred: str, gold: str):
    t0 = time.perf_counter()
    result = CliRunner().invoke(app, ["grade", pred, gold, "--format", "json", "--timeout", "2"])
    elapsed = time.perf_counter() - t0
    assert result.exit_code == 0, (result.exit_code, result.stderr[-500:])
    verdict = json.loads(result.stdout)
    assert verdict["reason"] in {"correct", "wrong", "no_answer", "unparsable", "timeout"}
    assert isinstance(verdict["correct"], bool)
    assert elapsed < 15, f"grading took {elapsed:.1f}s"


def test_many_boxes_grades_the_last():
    result = CliRunner().invoke(app, ["grade", "\\boxed{}" * 50_000 + "\\boxed{3}", "3", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["correct"] is True


# ---------------------------------------------------------------------------
# The installed entry point (a real process): same one line, same exit code
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("args,needle", [
    (["train", "--beta-pos", "high"], "--beta-pos"),
    (["status", "--config", "{config}"], "malformed YAML"),
], ids=["usage_error", "config_error"])
def test_entry_point_process_gives_one_line(args, needle, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [\n")
    args = [a.replace("{config}", str(bad)) for a in args]
    before = snapshot(tmp_path)
    res = subprocess.run([sys.executable, "-m", "asymcli.cli", *args], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert needle in lines[0] and "Traceback" not in res.stderr + res.stdout
    assert snapshot(tmp_path) == before
