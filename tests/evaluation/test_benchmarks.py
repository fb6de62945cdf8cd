"""Benchmark registry and loaders: local files the tests write, a fake hub, no network."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from asymcli.evaluation import benchmarks
from asymcli.artifacts import PROMPTS, write_parquet
from asymcli.evaluation.benchmarks import MATH_TEMPLATE, REGISTRY, load_benchmark, load_prompts_file, paper_spec
from asymcli.config import BenchmarkSpec
from asymcli.errors import AsymError, ConfigError, DataError

ROWS = [
    {"problem": "What is $1+1$?", "answer": "2", "unique_id": "a/1", "level": 1},
    {"problem": "Simplify $\\sqrt{18}$.", "answer": "3\\sqrt{2}", "unique_id": "a/2", "level": 3},
    {"problem": "Solve $x^2=4$, $x>0$.", "answer": "2", "unique_id": "a/3", "level": 2},
]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_pq(path: Path, rows: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


def test_registry_has_the_paper_protocol() -> None:
    assert set(REGISTRY) >= {"math_train", "math500", "aime24", "aime25", "amc23", "olympiadbench", "arith_heldout"}
    for name in ("math500", "olympiadbench"):
        assert (REGISTRY[name].k, REGISTRY[name].temperature) == (5, 0.4)
    for name in ("aime24", "aime25", "amc23"):
        assert (REGISTRY[name].k, REGISTRY[name].temperature) == (10, 0.4)
    for name in benchmarks.PAPER_BENCHMARKS + ("math_train",):
        src = REGISTRY[name]
        assert src.hub_id and src.hub_split and "{problem}" in src.template
        assert "\\boxed{}" in src.template
    assert REGISTRY["math_train"].split == "train" and REGISTRY["math_train"].size == 7500
    spec = paper_spec("aime24", limit=3)
    assert (spec.k, spec.temperature, spec.limit) == (10, 0.4, 3)


def test_unknown_benchmark_lists_known_names() -> None:
    with pytest.raises(ConfigError, match="unknown benchmark 'gsm9k'.*math500.*aime24"):
        load_benchmark(BenchmarkSpec(name="gsm9k"))


# ---------------------------------------------------------------------------
# Local files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["jsonl", "json", "json_data", "parquet"])
def test_load_local_file_formats(tmp_path: Path, kind: str) -> None:
    if kind == "jsonl":
        path = write_jsonl(tmp_path / "m.jsonl", ROWS)
    elif kind == "json":
        path = tmp_path / "m.json"
        path.write_text(json.dumps(ROWS))
    elif kind == "json_data":
        path = tmp_path / "m.json"
        path.write_text(json.dumps({"data": ROWS}))
    else:
        path = write_pq(tmp_path / "m.parquet", ROWS)
    table = load_benchmark(BenchmarkSpec(name="math500", path=str(path)))
    assert table.schema.equals(PROMPTS)
    rows = table.to_pylist()
    assert [r["problem_id"] for r in rows] == ["a/1", "a/2", "a/3"]
    assert rows[1]["answer"] == "3\\sqrt{2}"
    assert rows[1]["difficulty"] == "3"
    assert rows[0]["prompt"] == MATH_TEMPLATE.replace("{problem}", "What is $1+1$?")
    assert rows[0]["prompt"].endswith("put your final answer within \\boxed{}.")
    assert {r["split"] for r in rows} == {"test"} and {r["source"] for r in rows} == {"math500"}


def test_columns_mapping_template_limit_and_generated_ids(tmp_path: Path) -> None:
    rows = [{"question": f"Q{i}?", "final_answer": [f"{i}", "x"], "extra": 1} for i in range(5)]
    path = write_jsonl(tmp_path / "o.jsonl", rows)
    spec = BenchmarkSpec(name="mine", path=str(path), columns={"prompt": "question", "answer": "final_answer"},
                         template="Q: {problem}\nA:", limit=3)
    table = load_benchmark(spec).to_pylist()
    assert [r["problem_id"] for r in table] == ["mine-0", "mine-1", "mine-2"]
    assert table[2]["answer"] == "2, x"  # list answers joined
    assert table[0]["prompt"] == "Q: Q0?\nA:"


def test_olympiadbench_and_amc_value_types(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "ob.jsonl", [
        {"id": 1, "question": "Find x.", "final_answer": ["$\\frac{1}{2}$"], "solution": ["step 1", "step 2"]},
        {"id": 2, "question": "Find y.", "final_answer": ["1", "2"], "solution": ["s"]},
    ])
    rows = load_benchmark(BenchmarkSpec(name="olympiadbench", path=str(path))).to_pylist()
    assert [r["answer"] for r in rows] == ["$\\frac{1}{2}$", "1, 2"]
    assert rows[0]["solution"] == "step 1\n\nstep 2" and rows[0]["problem_id"] == "1"
    path = write_jsonl(tmp_path / "amc.jsonl", [{"id": 0, "question": "q", "answer": 27.0},
                                                {"id": 1, "question": "r", "answer": 0.5}])
    rows = load_benchmark(BenchmarkSpec(name="amc23", path=str(path))).to_pylist()
    assert [r["answer"] for r in rows] == ["27", "0.5"]


def test_math_train_answer_from_the_boxed_solution(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [
        {"problem": "1+1?", "solution": "We add: $1+1=\\boxed{2}$.", "level": "Level 1", "type": "Algebra"},
        {"problem": "Half?", "solution": "It is $\\boxed{\\frac{1}{2}}$.", "level": "Level 2", "type": "Algebra"},
    ])
    table = load_prompts_file(path, {}, "math_train", "train")
    rows = table.to_pylist()
    assert [r["answer"] for r in rows] == ["2", "\\frac{1}{2}"]
    assert rows[0]["solution"].startswith("We add") and rows[0]["split"] == "train"
    assert rows[0]["difficulty"] == "Level 1" and rows[0]["problem_id"] == "math_train-0"
    assert rows[0]["prompt"].endswith("\\boxed{}.")  # the registry template of math_train
    same = load_benchmark(BenchmarkSpec(name="math_train", path=str(path), limit=1)).to_pylist()
    assert same == rows[:1]
    raw = load_prompts_file(path, {}, "custom", "train", template="{problem}", limit=1).to_pylist()
    assert raw[0]["prompt"] == "1+1?" and raw[0]["source"] == "custom"


# ---------------------------------------------------------------------------
# Bad files: one-line DataError naming file, row, column
# ---------------------------------------------------------------------------


def _err(tmp_path: Path, rows: list[Any], spec: dict[str, Any] | None = None) -> str:
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_benchmark(BenchmarkSpec(name="math500", path=str(path), **(spec or {})))
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_answer_column(tmp_path: Path) -> None:
    msg = _err(tmp_path, [{"problem": "p", "hint": "h"}])
    assert "no answer column" in msg and "hint" in msg


def test_missing_problem_column(tmp_path: Path) -> None:
    assert "no problem column" in _err(tmp_path, [{"text": "p", "answer": "1"}])


def test_empty_answer_names_row_and_column(tmp_path: Path) -> None:
    msg = _err(tmp_path, [{"problem": "p", "answer": "1"}, {"problem": "q", "answer": "  "}])
    assert "row 2" in msg and "'answer'" in msg and "empty answer" in msg
    msg = _err(tmp_path, [{"problem": "p", "answer": None}])
    assert "row 1" in msg and "empty answer" in msg


def test_empty_prompt(tmp_path: Path) -> None:
    msg = _err(tmp_path, [{"problem": "p", "answer": "1"}, {"problem": "p2", "answer": "1"}, {"problem": "", "answer": "1"}])
    assert "row 3" in msg and "'problem'" in msg and "empty problem" in msg


def test_duplicate_problem_id(tmp_path: Path) -> None:
    msg = _err(tmp_path, [{"problem": "p", "answer": "1", "id": 7}, {"problem": "q", "answer": "2", "id": 7}])
    assert "row 2" in msg and "'id'" in msg and "duplicate problem_id '7'" in msg and "row 1" in msg


def test_solution_without_box(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"problem": "p", "solution": "no box here"}])
    with pytest.raises(DataError, match=r"row 1, column 'solution': no \\boxed"):
        load_prompts_file(path, {}, "math_train", "train")


def test_unknown_columns_in_the_mapping(tmp_path: Path) -> None:
    assert "'quest' (mapped to 'prompt') is not in the data" in _err(
        tmp_path, ROWS, {"columns": {"prompt": "quest"}})
    assert "'question_text', which is not a prompts column" in _err(
        tmp_path, ROWS, {"columns": {"question_text": "problem"}})


def test_malformed_json_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n{\"problem\": oops}\n")
    with pytest.raises(DataError, match=r"bad.jsonl: malformed JSON on line 3"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(path)))


def test_malformed_json_file_and_shape(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"problem": "p",')
    with pytest.raises(DataError, match="malformed JSON at line 1"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(path)))
    path.write_text('{"rows": []}')
    with pytest.raises(DataError, match="expected a JSON list"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(path)))
    path.write_text('[1, 2]')
    with pytest.raises(DataError, match="row 1 is a int"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(path)))


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"problem": "p", "answer": "1"}\n{"problem": "caf\xe9", "answer": "2"}\n')
    with pytest.raises(DataError, match=r"latin.jsonl: not UTF-8 text \(line 2"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(path)))


def test_non_utf8_parquet_bytes_column(tmp_path: Path) -> None:
    table = pa.table({"problem": pa.array([b"ok", b"caf\xe9"], pa.binary()), "answer": ["1", "2"]})
    pq.write_table(table, tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"b.parquet: row 2, column 'problem': not UTF-8"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(tmp_path / "b.parquet")))
    good = pa.table({"problem": pa.array([b"ok"], pa.binary()), "answer": ["1"]})
    pq.write_table(good, tmp_path / "g.parquet")
    assert load_benchmark(BenchmarkSpec(name="math500", path=str(tmp_path / "g.parquet"))).num_rows == 1


def test_empty_dataset_and_missing_or_odd_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="empty.jsonl: empty dataset"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(empty)))
    with pytest.raises(DataError, match="does not exist"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(tmp_path / "nope.jsonl")))
    csv = tmp_path / "m.csv"
    csv.write_text("problem,answer\n")
    with pytest.raises(DataError, match="unsupported file type '.csv'"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(csv)))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="broken.parquet: not a readable Parquet file"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(broken)))


def test_bad_limit_and_template(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", ROWS)
    with pytest.raises(ConfigError, match="limit"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(path), limit=0))
    with pytest.raises(ConfigError, match=r"\{problem\}"):
        load_benchmark(BenchmarkSpec(name="math500", path=str(path), template="no placeholder"))


# ---------------------------------------------------------------------------
# arith_heldout (the prep stage's prompts.parquet)
# ---------------------------------------------------------------------------


def _prompts_rows() -> list[dict[str, str]]:
    rows = []
    for i, split in enumerate(["train", "heldout", "train", "heldout", "heldout"]):
        rows.append({"problem_id": f"t1-{i}", "split": split, "source": "arith", "difficulty": "t1",
                     "prompt": f"Compute {i}+1. Put the final answer in \\boxed{{}}.", "answer": str(i + 1),
                     "solution": ""})
    return rows


def test_arith_heldout_reads_the_heldout_split(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "prompts.parquet", _prompts_rows(), PROMPTS)
    table = load_benchmark(BenchmarkSpec(), prompts_path=str(path))
    assert table.column("problem_id").to_pylist() == ["t1-1", "t1-3", "t1-4"]
    assert table.column("prompt").to_pylist()[0] == "Compute 1+1. Put the final answer in \\boxed{}."
    limited = load_benchmark(BenchmarkSpec(limit=2, template="> {problem}"), prompts_path=str(path))
    assert limited.num_rows == 2 and limited.column("prompt").to_pylist()[0].startswith("> Compute 1+1")


def test_arith_heldout_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="prompts.parquet"):
        load_benchmark(BenchmarkSpec())
    with pytest.raises(AsymError, match="does not exist"):
        load_benchmark(BenchmarkSpec(), prompts_path=str(tmp_path / "missing.parquet"))
    only_train = [r for r in _prompts_rows() if r["split"] == "train"]
    path = write_parquet(tmp_path / "prompts.parquet", only_train, PROMPTS)
    with pytest.raises(DataError, match="no rows with split 'heldout'"):
        load_benchmark(BenchmarkSpec(), prompts_path=str(path))


# ---------------------------------------------------------------------------
# Hub datasets (a fake `datasets` module: nothing is downloaded)
# ---------------------------------------------------------------------------


class _FakeDataset:
    def __init__(self, rows: list[dict[str, Any]]):
        self._rows = rows

    def to_list(self) -> list[dict[str, Any]]:
        return list(self._rows)


def _fake_datasets(monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]] | None) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    config = types.SimpleNamespace(HF_DATASETS_OFFLINE=False, HF_HUB_OFFLINE=False)
    mod = types.ModuleType("datasets")

    def load_dataset(*args: Any, split: str) -> _FakeDataset:
        calls.append((args, split, config.HF_HUB_OFFLINE, config.HF_DATASETS_OFFLINE))
        if rows is None:
            raise FileNotFoundError(f"Couldn't find '{args[0]}' on the Hugging Face Hub in offline mode")
        return _FakeDataset(rows)

    mod.load_dataset = load_dataset  # type: ignore[attr-defined]
    mod.config = config  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", mod)
    return calls


def test_hub_dataset_from_the_local_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_datasets(monkeypatch, [{"problem": "p1", "answer": "1", "id": 60, "solution": "s", "url": "u"}])
    table = load_benchmark(BenchmarkSpec(name="aime24", k=10))
    assert calls == [(("HuggingFaceH4/aime_2024",), "train", True, True)]  # forced offline during the call
    assert sys.modules["datasets"].config.HF_HUB_OFFLINE is False  # and restored after
    assert table.to_pylist()[0] | {"prompt": ""} == {
        "problem_id": "60", "split": "test", "source": "aime24", "difficulty": "", "prompt": "",
        "answer": "1", "solution": "s", "metadata": None}


def test_hub_dataset_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_datasets(monkeypatch, None)
    with pytest.raises(DataError, match=r"'math-ai/amc23' \(split 'test'\) is not in the local Hugging Face cache.*path"):
        load_benchmark(BenchmarkSpec(name="amc23"))


def test_hub_needs_the_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails
    with pytest.raises(DataError, match="'datasets' package is not installed.*path"):
        load_benchmark(BenchmarkSpec(name="math500"))
