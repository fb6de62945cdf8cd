"""Benchmark sources: where evaluation (and MATH training) problems come from, and how to read them.

``REGISTRY`` names each source of the paper's protocol (Section 4, Appendix H): the hub
dataset it is usually read from (the ids verl's and lighteval's math recipes use), which
split and columns hold the problem and the answer, the paper's sampling protocol (Avg@5
at T=0.4 for MATH-500 and OlympiadBench, Avg@10 at T=0.4 for AIME 2024/2025 and AMC 2023)
and the prompt template (the Qwen/DeepSeek math instruction that verl's recipes use).

:func:`load_benchmark` turns a :class:`~asymcli.config.BenchmarkSpec` into a table of the
PROMPTS schema, from ``spec.path`` (a local ``.parquet``, ``.jsonl`` or ``.json`` file) or,
failing that, from the hub dataset when the ``datasets`` package is installed and the data
is already in the local Hugging Face cache (read with the hub forced offline: nothing is
ever downloaded here). :func:`load_prompts_file` reads one local file and is shared with
the prep stage (MATH's training set). ``arith_heldout`` is the embedded default's held-out
split, read from the prep stage's ``prompts.parquet``.

A bad file raises :class:`~asymcli.errors.DataError` naming the file, the 1-based data row
and the column; nothing is written by this module.

Column mapping: ``columns`` maps a PROMPTS column to a file column (``{"prompt": "question",
"answer": "final_answer"}``). A column the user maps must exist. Otherwise each PROMPTS
column is looked for under the source's own column name, then under common names
(``problem``/``question`` for the prompt, ``answer``/``final_answer`` for the answer,
``id``/``unique_id`` for the id, ``level`` for the difficulty). An answer that contains a
``\\boxed{}`` (a worked solution), or a missing answer column next to a ``solution``
column, gives the last boxed content. List answers (OlympiadBench's ``final_answer``) are
joined with ", ". Missing ids become ``{source}-{row index}`` (0-based).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..artifacts import PROMPTS, read_parquet, to_table
from ..config import BenchmarkSpec
from ..errors import ConfigError, DataError
from ..grading import boxed_answer

#: The boxed-answer instruction of Qwen2.5-Math / DeepSeek-R1 that verl's math recipes append.
MATH_TEMPLATE = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{}."
#: The problem text as is (the embedded task's prompts already carry their instruction).
IDENTITY_TEMPLATE = "{problem}"


@dataclass(frozen=True)
class BenchmarkSource:
    """One named problem source."""

    name: str
    title: str  # how the paper names it
    hub_id: str | None  # default hub dataset id; None = not on the hub (arith_heldout)
    hub_split: str  # split of the hub dataset
    columns: Mapping[str, str]  # PROMPTS column -> the hub dataset's column
    k: int  # samples per problem of the paper's protocol (Avg@k)
    temperature: float  # sampling temperature of the paper's protocol
    template: str = MATH_TEMPLATE  # "{problem}" is replaced by the problem text
    split: str = "test"  # the PROMPTS split value its rows get
    hub_config: str | None = None  # hub dataset config name, if any
    alternatives: tuple[str, ...] = ()  # other hub ids with the same problems (give hub_id + columns)
    size: int | None = None  # number of problems, for reference
    notes: str = ""


REGISTRY: dict[str, BenchmarkSource] = {
    s.name: s
    for s in [
        BenchmarkSource(
            name="math_train",
            title="MATH (train)",
            hub_id="DigitalLearningGmbH/MATH-lighteval",  # verl's examples/data_preprocess/math_dataset.py
            hub_split="train",
            columns={"prompt": "problem", "solution": "solution", "difficulty": "level"},  # answer: boxed in solution
            k=1,
            temperature=0.0,  # a training set: k/temperature only matter if someone evaluates on it
            split="train",
            alternatives=("EleutherAI/hendrycks_math",),
            size=7500,
            notes="the paper's training set (Hendrycks et al., 2021); the answer is the last \\boxed{} of solution",
        ),
        BenchmarkSource(
            name="math500",
            title="MATH-500",
            hub_id="HuggingFaceH4/MATH-500",  # lighteval math_500
            hub_split="test",
            columns={"prompt": "problem", "answer": "answer", "solution": "solution",
                     "problem_id": "unique_id", "difficulty": "level"},
            k=5,
            temperature=0.4,
            alternatives=("math-ai/math500",),
            size=500,
        ),
        BenchmarkSource(
            name="aime24",
            title="AIME24",
            hub_id="HuggingFaceH4/aime_2024",  # lighteval aime24
            hub_split="train",
            columns={"prompt": "problem", "answer": "answer", "solution": "solution", "problem_id": "id"},
            k=10,
            temperature=0.4,
            alternatives=("math-ai/aime24",),  # there: problem + solution (answer boxed in solution)
            size=30,
        ),
        BenchmarkSource(
            name="aime25",
            title="AIME25",
            hub_id="math-ai/aime25",  # verl-style recipes; lighteval uses yentinglin/aime_2025 (split train)
            hub_split="test",
            columns={"prompt": "problem", "answer": "answer", "problem_id": "id"},
            k=10,
            temperature=0.4,
            alternatives=("yentinglin/aime_2025", "opencompass/AIME2025"),
            size=30,
        ),
        BenchmarkSource(
            name="amc23",
            title="AMC23",
            hub_id="math-ai/amc23",  # verl-style recipes (question/answer columns)
            hub_split="test",
            columns={"prompt": "question", "answer": "answer", "problem_id": "id"},
            k=10,
            temperature=0.4,
            alternatives=("AI-MO/aimo-validation-amc",),
            size=40,
            notes="answers may be stored as floats (27.0): integral floats are written as integers",
        ),
        BenchmarkSource(
            name="olympiadbench",
            title="Olympiad",
            hub_id="math-ai/olympiadbench",  # the 674 English text-only competition-math problems
            hub_split="test",
            columns={"prompt": "question", "answer": "final_answer", "solution": "solution", "problem_id": "id"},
            k=5,
            temperature=0.4,
            alternatives=("Hothan/OlympiadBench",),  # config OE_TO_maths_en_COMP, split train
            size=674,
            notes="final_answer is a list: joined with ', '",
        ),
        BenchmarkSource(
            name="arith_heldout",
            title="Arithmetic (held-out)",
            hub_id=None,
            hub_split="heldout",
            columns={},
            k=4,
            temperature=0.4,
            template=IDENTITY_TEMPLATE,
            split="heldout",
            notes="rows with split == 'heldout' of the prep stage's prompts.parquet (embedded default)",
        ),
        BenchmarkSource(
            name="rg_heldout",
            title="reasoning-gym (held-out)",
            hub_id=None,
            hub_split="heldout",
            columns={},
            k=4,
            temperature=0.4,
            template=IDENTITY_TEMPLATE,
            split="heldout",
            notes="rows with split == 'heldout' of prompts.parquet for task.kind reasoning_gym (graded by "
                  "each generator's score_answer, asymcli/grading/rg.py)",
        ),
    ]
}

#: Benchmarks read from the prep stage's own held-out split (prompts.parquet).
PREP_HELDOUT = ("arith_heldout", "rg_heldout")

#: Names of the paper's five evaluation benchmarks, in Table 2's column order.
PAPER_BENCHMARKS = ("math500", "aime24", "aime25", "amc23", "olympiadbench")

# Column names tried, in order, when the mapping does not name one (after the source's own).
_GUESSES: dict[str, tuple[str, ...]] = {
    "problem_id": ("problem_id", "unique_id", "id", "ID", "idx"),
    "split": (),
    "source": (),
    "difficulty": ("difficulty", "level", "Level"),
    "prompt": ("problem", "question", "prompt", "Problem", "Question"),
    "answer": ("answer", "final_answer", "Answer", "gold", "target"),
    "solution": ("solution", "Solution"),
    "metadata": (),  # reasoning-gym rows only (task.kind reasoning_gym); null elsewhere
}


def get_source(name: str) -> BenchmarkSource:
    """The registry entry of ``name``; an unknown name lists the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown benchmark '{name}'; known benchmarks: {', '.join(REGISTRY)}") from None


def paper_spec(name: str, **overrides: Any) -> BenchmarkSpec:
    """A BenchmarkSpec with the paper's k and temperature for ``name`` (plus ``overrides``)."""
    src = get_source(name)
    return BenchmarkSpec(**{"name": name, "k": src.k, "temperature": src.temperature, **overrides})


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_benchmark(spec: BenchmarkSpec, *, prompts_path: str | os.PathLike[str] | None = None) -> pa.Table:
    """The problems of ``spec`` as a PROMPTS table (template applied, first ``spec.limit`` rows).

    ``prompts_path`` is the prep stage's prompts.parquet, read for ``arith_heldout``.
    Sources in order: ``spec.path``; else ``spec.hub_id`` or the registry's hub id (local
    cache only). A name outside the registry needs a ``path`` or ``hub_id``.
    """
    _check_limit(spec.limit, f"benchmark '{spec.name}'")
    src = REGISTRY.get(spec.name)
    if src is None and not spec.path and not spec.hub_id:
        raise ConfigError(
            f"unknown benchmark '{spec.name}'; known benchmarks: {', '.join(REGISTRY)} "
            "(or give a path / hub_id for a custom one)"
        )
    if src is not None and src.name in PREP_HELDOUT:
        return _load_heldout(spec, prompts_path)
    template = spec.template if spec.template is not None else (src.template if src else MATH_TEMPLATE)
    split = src.split if src else "test"
    defaults = dict(src.columns) if src else {}
    if spec.path:
        rows = _read_rows(Path(spec.path))
        where = str(spec.path)
    else:
        hub_id = spec.hub_id or (src.hub_id if src else None)
        if not hub_id:
            raise DataError(f"benchmark '{spec.name}': give a local file in path")
        hub_split = src.hub_split if src else "test"
        rows = _read_hub(spec.name, hub_id, hub_split, src.hub_config if src and hub_id == src.hub_id else None)
        where = f"hub dataset {hub_id} (split {hub_split})"
        if spec.hub_id and src and spec.hub_id != src.hub_id:
            defaults = {}  # another dataset: its columns are unknown, use the guesses
    return _to_prompts(rows, where, source=spec.name, split=split, template=template,
                       columns=spec.columns, defaults=defaults, limit=spec.limit)


def load_prompts_file(
    path: str | os.PathLike[str],
    columns: Mapping[str, str] | None = None,
    source: str = "custom",
    split: str = "train",
    *,
    template: str | None = None,
    limit: int | None = None,
) -> pa.Table:
    """Read one local ``.parquet``/``.jsonl``/``.json`` file of problems as a PROMPTS table.

    ``columns`` maps PROMPTS columns to file columns (see the module docstring); every
    row gets ``source`` and ``split`` unless mapped. ``template`` (``{problem}`` replaced)
    defaults to the registry template of ``source`` when it is a registered name, else
    the MATH instruction. The prep stage uses this for MATH's training set.
    """
    _check_limit(limit, str(path))
    src = REGISTRY.get(source)
    if template is None:
        template = src.template if src else MATH_TEMPLATE
    rows = _read_rows(Path(path))
    return _to_prompts(rows, str(path), source=source, split=split, template=template,
                       columns=columns or {}, defaults=dict(src.columns) if src else {}, limit=limit)


def _check_limit(limit: int | None, where: str) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"{where}: limit must be an integer >= 1 (or null), got {limit!r}")


def _check_template(template: str, where: str) -> None:
    if "{problem}" not in template:
        raise ConfigError(f"{where}: prompt template must contain '{{problem}}', got {template!r}")


def _load_heldout(spec: BenchmarkSpec, prompts_path: str | os.PathLike[str] | None) -> pa.Table:
    path = spec.path or prompts_path
    if not path:
        raise DataError(
            f"benchmark '{spec.name}' reads the prep stage's prompts.parquet: run `asym prep` "
            "and pass its path (prompts_path), or set the benchmark's path"
        )
    table = read_parquet(path, PROMPTS)
    table = table.filter(pc.equal(table["split"], "heldout"))
    if table.num_rows == 0:
        raise DataError(f"{path}: no rows with split 'heldout' (benchmark '{spec.name}')")
    if spec.template is not None:
        _check_template(spec.template, f"benchmark '{spec.name}'")
        prompts = [spec.template.replace("{problem}", p) for p in table["prompt"].to_pylist()]
        table = table.set_column(table.schema.get_field_index("prompt"), "prompt", pa.array(prompts, pa.string()))
    if spec.limit is not None:
        table = table.slice(0, spec.limit)
    return table


# ---------------------------------------------------------------------------
# Reading files and the hub
# ---------------------------------------------------------------------------


def _read_rows(path: Path) -> list[Any]:
    """Records of a local file: ``.parquet``, ``.jsonl`` or ``.json`` (a list, or ``{"data": [...]}``)."""
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a .parquet, .jsonl or .json file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({_short(exc)})") from None
        for name in table.column_names:  # bytes columns must hold UTF-8 text
            column = table[name]
            if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
                for r, value in enumerate(column.to_pylist(), 1):
                    try:
                        if value is not None:
                            value.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise DataError(f"{path}: row {r}, column '{name}': not UTF-8 text (byte {exc.start})") from None
                table = table.set_column(table.column_names.index(name), name, column.cast(pa.string()))
        return table.to_pylist()
    if suffix not in (".jsonl", ".json"):
        raise DataError(f"{path}: unsupported file type '{suffix}' (use .parquet, .jsonl or .json)")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}: not UTF-8 text (line {line}, byte {exc.start})") from None
    if suffix == ".jsonl":
        rows: list[Any] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: malformed JSON on line {lineno} ({exc.msg}, column {exc.colno})") from None
        return rows
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})") from None
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        obj = obj["data"]
    if not isinstance(obj, list):
        raise DataError(f"{path}: expected a JSON list of records or {{\"data\": [...]}}, got {type(obj).__name__}")
    return obj


@contextlib.contextmanager
def _hub_offline() -> Iterator[Any]:
    """Import ``datasets`` with the hub forced offline (cache only), restoring settings after."""
    keys = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    saved_env = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ[k] = "1"
    patched: list[tuple[Any, str, Any]] = []
    try:
        import datasets  # noqa: PLC0415 - optional dependency

        targets: list[Any] = [getattr(datasets, "config", None)]
        with contextlib.suppress(ImportError):
            import huggingface_hub.constants as hub_constants  # noqa: PLC0415

            targets.append(hub_constants)
        for mod in targets:
            for attr in keys:
                if mod is not None and hasattr(mod, attr):
                    patched.append((mod, attr, getattr(mod, attr)))
                    setattr(mod, attr, True)
        yield datasets
    finally:
        for mod, attr, value in reversed(patched):
            setattr(mod, attr, value)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _read_hub(name: str, hub_id: str, split: str, config: str | None) -> list[Any]:
    hint = "or set the benchmark's path to a local .parquet/.jsonl/.json copy"
    try:
        with _hub_offline() as datasets:
            try:
                args = (hub_id, config) if config else (hub_id,)
                ds = datasets.load_dataset(*args, split=split)
                return ds.to_list() if hasattr(ds, "to_list") else [dict(r) for r in ds]
            except Exception as exc:  # noqa: BLE001 - any failure here means "not available locally"
                raise DataError(
                    f"benchmark '{name}': hub dataset '{hub_id}' (split '{split}') is not in the local "
                    f"Hugging Face cache ({_short(exc)}); download it once where there is network with "
                    f"datasets.load_dataset('{hub_id}', split='{split}'), {hint}"
                ) from None
    except ImportError:
        raise DataError(
            f"benchmark '{name}': no path given and the 'datasets' package is not installed to read "
            f"hub dataset '{hub_id}' from the local cache; pip install datasets and download it once, {hint}"
        ) from None


# ---------------------------------------------------------------------------
# Records -> PROMPTS rows
# ---------------------------------------------------------------------------


def _text(value: Any, joiner: str = ", ") -> str:
    """A cell as text: integral floats as integers, lists joined, None as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (list, tuple)):
        return joiner.join(_text(v, joiner) for v in value)
    return str(value)


def _resolve_columns(
    present: set[str], columns: Mapping[str, str], defaults: Mapping[str, str], where: str
) -> dict[str, str | None]:
    unknown = [k for k in columns if k not in PROMPTS.names]
    if unknown:
        raise DataError(
            f"{where}: the column mapping names '{unknown[0]}', which is not a prompts column "
            f"(known: {', '.join(PROMPTS.names)})"
        )
    resolved: dict[str, str | None] = {}
    for col in PROMPTS.names:
        if col in columns:
            file_col = columns[col]
            if file_col not in present:
                raise DataError(
                    f"{where}: column '{file_col}' (mapped to '{col}') is not in the data; "
                    f"its columns: {', '.join(sorted(present))}"
                )
            resolved[col] = file_col
            continue
        candidates = [defaults[col]] if col in defaults else []
        candidates += _GUESSES[col]
        resolved[col] = next((c for c in candidates if c in present), None)
    return resolved


def _to_prompts(
    rows: Sequence[Any],
    where: str,
    *,
    source: str,
    split: str,
    template: str,
    columns: Mapping[str, str],
    defaults: Mapping[str, str],
    limit: int | None,
) -> pa.Table:
    _check_template(template, where)
    if not rows:
        raise DataError(f"{where}: empty dataset (no rows)")
    present: set[str] = set()
    for r, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(f"{where}: row {r} is a {type(row).__name__}, expected a record (an object)")
        present.update(row)
    cols = _resolve_columns(present, columns, defaults, where)
    if cols["prompt"] is None:
        raise DataError(
            f"{where}: no problem column (looked for {', '.join(_GUESSES['prompt'])}); "
            f"map one with columns: {{prompt: <column>}}; its columns: {', '.join(sorted(present))}"
        )
    answer_col = cols["answer"] or cols["solution"]
    if answer_col is None:
        raise DataError(
            f"{where}: no answer column (looked for {', '.join(_GUESSES['answer'])} or a solution with "
            f"\\boxed{{}}); map one with columns: {{answer: <column>}}; its columns: {', '.join(sorted(present))}"
        )
    from_solution = cols["answer"] is None
    if limit is not None:
        rows = rows[:limit]
    out: list[dict[str, str]] = []
    first_row: dict[str, int] = {}
    for r, row in enumerate(rows, 1):
        problem = _text(row.get(cols["prompt"])).strip()
        if not problem:
            raise DataError(f"{where}: row {r}, column '{cols['prompt']}': empty problem text")
        raw_answer = _text(row.get(answer_col)).strip()
        answer = raw_answer
        if from_solution or "\\boxed" in raw_answer or "\\fbox" in raw_answer:
            answer = (boxed_answer(raw_answer) or "").strip()  # several boxes: the set of them
            if not answer and raw_answer:
                raise DataError(f"{where}: row {r}, column '{answer_col}': no \\boxed{{}} final answer in it")
        if not answer:
            raise DataError(f"{where}: row {r}, column '{answer_col}': empty answer")
        if cols["problem_id"] is not None:
            pid = _text(row.get(cols["problem_id"])).strip()
            if not pid:
                raise DataError(f"{where}: row {r}, column '{cols['problem_id']}': empty problem_id")
        else:
            pid = f"{source}-{r - 1}"
        if pid in first_row:
            raise DataError(
                f"{where}: row {r}, column '{cols['problem_id'] or 'problem_id'}': duplicate problem_id "
                f"'{pid}' (first at row {first_row[pid]})"
            )
        first_row[pid] = r
        solution = _text(row.get(cols["solution"]), "\n\n") if cols["solution"] and not from_solution else ""
        if from_solution:
            solution = raw_answer
        out.append(
            {
                "problem_id": pid,
                "split": _text(row.get(cols["split"])) if cols["split"] else split,
                "source": _text(row.get(cols["source"])) if cols["source"] else source,
                "difficulty": _text(row.get(cols["difficulty"])) if cols["difficulty"] else "",
                "prompt": template.replace("{problem}", problem),
                "answer": answer,
                "solution": solution,
            }
        )
    return to_table(out, PROMPTS)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return text or type(exc).__name__
