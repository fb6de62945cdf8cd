"""reasoning-gym task families as training prompts (``task.kind: reasoning_gym``).

`reasoning-gym <https://pypi.org/project/reasoning-gym/>`_ (an optional extra, ``asym[rg]``; under
constraints.txt install it with ``bash .ci/install-rg``, which says why) has procedural generators, each seeded and with its own
verifier (``score_answer``). This module turns one or more of them into PROMPTS rows:

- ``task.generators``: ``[{name, weight, config}]``; ``config`` is the generator's own
  config class's fields (not ``seed`` / ``size``, which asym sets). ``task.n_train`` training
  rows are shared out by weight (largest remainder); ``task.n_heldout`` held-out rows per
  generator.
- Splits by seed: item ``i`` of a reasoning-gym dataset is drawn from ``Random(seed + i)``;
  training rows use ``seed = task.seed * SEED_STRIDE + TRAIN_OFFSET`` and held-out rows
  ``task.seed * SEED_STRIDE + HELDOUT_OFFSET``, so no item seed is shared while a split has
  fewer than ``HELDOUT_OFFSET`` rows per generator. A held-out question that also appears in
  the training split (small problem spaces) is dropped, so the splits are disjoint as text too.
- Row: ``source`` = ``rg/<generator>``, ``difficulty`` = the generator's name, ``prompt`` =
  the generator's question + the boxed-answer instruction, ``answer`` = its oracle answer,
  ``solution`` = ``\\boxed{answer}`` (none of reasoning-gym's generators ships a worked trace
  in a common field, so the warm-up imitates answers), ``metadata`` = the entry's metadata
  as JSON (what ``score_answer`` reads back; :mod:`asymcli.grading.rg`).
- Prep checks every row: the oracle answer, scored by the generator's ``score_answer`` on the
  entry read back from JSON, must reach ``grading.rg_threshold``; otherwise the generator does
  not survive the round trip and prep stops naming it.

Imports reasoning-gym lazily; a missing package is one line saying how to install it.
"""

from __future__ import annotations

import difflib
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError, DataError

INSTALL_HINT = "bash .ci/install-rg (reasoning-gym==0.1.25 beside the pinned set), or pip install 'asym[rg]' without -c"
SOURCE_PREFIX = "rg/"
SEED_STRIDE = 10**9
TRAIN_OFFSET = 0
HELDOUT_OFFSET = 5 * 10**8
#: The instruction after the question: the arithmetic task's, so one grader path reads both.
INSTRUCTION = " Put the final answer in \\boxed{}."
#: Config fields asym sets itself (from task.seed, task.n_train, task.n_heldout).
RESERVED = ("seed", "size")


def require() -> Any:
    """The ``reasoning_gym`` module, or a one-line ConfigError saying how to install it."""
    try:
        import reasoning_gym
    except ImportError:
        raise ConfigError(f"task.kind 'reasoning_gym' needs the reasoning-gym package: {INSTALL_HINT}") from None
    return reasoning_gym


def generator_names() -> list[str]:
    from reasoning_gym.factory import DATASETS

    require()
    return sorted(DATASETS)


def _dataset(name: str, config: Mapping[str, Any], seed: int, size: int, key: str) -> Any:
    rg = require()
    names = generator_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f"close names: {', '.join(close)}" if close else f"{len(names)} generators; see reasoning_gym.factory.DATASETS"
        raise ConfigError(f"{key}.name: unknown reasoning-gym generator '{name}'; {hint}")
    for k in RESERVED:
        if k in config:
            raise ConfigError(f"{key}.config.{k}: set by asym (task.seed, task.n_train / task.n_heldout); remove it")
    try:
        return rg.create_dataset(name, seed=seed, size=max(size, 1), **dict(config))
    except Exception as exc:  # the library's own message (TypeError, AssertionError, ValueError, ...)
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"{key}.config: reasoning-gym rejects the config of '{name}': {msg}") from None


def check_generators(generators: Sequence[Any], threshold: float, where: str = "config") -> None:
    """Early checks of ``task.generators`` (ConfigError naming the key): structure, then each
    generator's name and config through reasoning-gym itself."""
    if not generators:
        raise ConfigError(f"{where}: 'task.generators' must name at least one reasoning-gym generator "
                          "when task.kind is 'reasoning_gym'")
    if not 0 < threshold <= 1:
        raise ConfigError(f"{where}: 'grading.rg_threshold' must be in (0, 1], got {threshold}")
    seen: set[str] = set()
    for i, g in enumerate(generators):
        key = f"task.generators[{i}]"
        if g.name in seen:
            raise ConfigError(f"{where}: '{key}.name' lists generator '{g.name}' twice")
        seen.add(g.name)
        if not g.weight > 0 or g.weight == float("inf"):
            raise ConfigError(f"{where}: '{key}.weight' must be a finite number > 0, got {g.weight}")
        try:
            _dataset(g.name, g.config, seed=0, size=1, key=key)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def shares(n: int, weights: Sequence[float]) -> list[int]:
    """``n`` split in proportion to ``weights`` (largest remainder; ties to the first)."""
    total = sum(weights)
    raw = [n * w / total for w in weights]
    out = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[: n - sum(out)]:
        out[i] += 1
    return out


def split_seed(task_seed: int, split: str) -> int:
    return task_seed * SEED_STRIDE + (HELDOUT_OFFSET if split == "heldout" else TRAIN_OFFSET)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


def entry_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The reasoning-gym entry a PROMPTS row came from (what ``score_answer`` reads)."""
    return {"question": row["prompt"], "answer": row["answer"], "metadata": json.loads(row["metadata"] or "{}")}


def _rows(name: str, ds: Any, split: str, skip: set[str], threshold: float) -> list[dict[str, Any]]:
    scorer = ds.score_answer
    out = []
    for i in range(len(ds)):
        e = ds[i]
        q = str(e["question"]).strip()
        if q in skip:
            continue
        skip.add(q)
        answer = str(e["answer"])
        row = {
            "problem_id": f"rg-{name}-{split}-{i}",
            "split": split,
            "source": SOURCE_PREFIX + name,
            "difficulty": name,
            "prompt": q + INSTRUCTION,
            "answer": answer,
            "solution": f"\\boxed{{{answer}}}",
            "metadata": _json(e.get("metadata", {})),
        }
        entry = dict(entry_of(row), question=q)
        if scorer(answer, entry) < threshold:
            raise DataError(f"reasoning-gym generator '{name}': its own answer to item {i} ({split}) scores below "
                            f"grading.rg_threshold after the metadata's JSON round trip; this generator is not supported")
        out.append(row)
    return out


def generate(generators: Sequence[Any], n_train: int, n_heldout: int, seed: int = 0,
             threshold: float = 1.0) -> list[dict[str, Any]]:
    """PROMPTS rows (with ``metadata``): training rows of all generators, shuffled, then
    ``n_heldout`` held-out rows per generator (fewer when held-out questions repeat training ones)."""
    if n_train < 0 or n_heldout < 0:
        raise ConfigError(f"task.n_train and task.n_heldout must be >= 0, got {n_train}, {n_heldout}")
    if max(n_train, n_heldout) >= HELDOUT_OFFSET - TRAIN_OFFSET:
        raise ConfigError(f"task.n_train and task.n_heldout must be < {HELDOUT_OFFSET} (disjoint item seeds)")
    train: list[dict[str, Any]] = []
    heldout: list[dict[str, Any]] = []
    for i, (g, n) in enumerate(zip(generators, shares(n_train, [g.weight for g in generators]))):
        key = f"task.generators[{i}]"
        seen: set[str] = set()
        if n:
            train += _rows(g.name, _dataset(g.name, g.config, split_seed(seed, "train"), n, key), "train", seen,
                           threshold)
        if n_heldout:
            heldout += _rows(g.name, _dataset(g.name, g.config, split_seed(seed, "heldout"), n_heldout, key),
                             "heldout", seen, threshold)
    random.Random(f"rg:{seed}:shuffle").shuffle(train)
    return train + heldout
