"""Warmed-up tiny bases shipped with asym, so a shipped config skips its warm-up.

Why: the supervised warm-up of the embedded default is about 3.5 minutes of one CPU core,
the largest part of the first `asym run-grid`; the headline experiment warms up three more
(about 10 of its minutes from empty). A warm-up is deterministic given its recipe (the
task's training rows, the model shape, the warm-up settings, the seed and the thread count),
and portable numerics make it the same bits on any x86-64 CPU (docs/reliability.md), so its
result can be built once and shipped: the base stage uses a shipped base when the config's
recipe hash equals its own, and warms up from scratch otherwise (any change to the task, the
model or the base section, or ``base.prebuilt: false``).

Layout: each ``asymcli/embedded/assets/{name}/`` holds the HF model folder (``model/``), the
warm-up curve (``sft_metrics.parquet``) and ``PREBUILT.json`` (recipe hash, what built it and
the command that rebuilds it): ``default-base`` (configs/default.yaml, also the mechanism and
reasoning-free testbeds' base) and ``headline-base1..3`` (configs/headline.yaml's grid.bases).
Rebuild one with the command in its manifest, e.g.::

    asym base --config configs/default.yaml --write-prebuilt
    asym base --config configs/headline.yaml --base-seed 2 --write-prebuilt
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import artifacts

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
#: the default config's base
PREBUILT_DIR = ASSETS_DIR / "default-base"
#: one folder in place of the shipped ones (tests; a lab's own shipped base)
ENV_DIR = "ASYM_PREBUILT_DIR"
MANIFEST = "PREBUILT.json"
REBUILD_COMMAND = "asym base --config configs/default.yaml --write-prebuilt"
#: base-section keys that do not change the warmed-up weights (what is recorded about them, or
#: whether the shipped copy may be used at all)
NOT_IN_RECIPE = ("probe_prompts", "prebuilt")


#: Task keys added later, at their defaults (reasoning-gym's, read only by task.kind reasoning_gym).
ADDED_TASK_KEYS: dict[str, Any] = {"generators": []}


def recipe_hash(config: Mapping[str, Any], rows: Sequence[Mapping[str, str]]) -> str:
    """sha256 of everything the warm-up's weights depend on: the task, model and base sections
    (less NOT_IN_RECIPE) and the supervised training rows (prompt, solution) themselves, so a
    change in the task generator's code is seen even when the config is unchanged."""
    base = {k: v for k, v in dict(config["base"]).items() if k not in NOT_IN_RECIPE}
    # task keys added after the shipped base was built count only when set (its recipe stays valid)
    task = {k: v for k, v in dict(config["task"]).items() if ADDED_TASK_KEYS.get(k, object()) != v}
    h = hashlib.sha256()
    h.update(json.dumps({"task": task, "model": config["model"], "base": base},
                        sort_keys=True, default=str).encode())
    for r in rows:
        h.update(b"\0" + r["prompt"].encode() + b"\1" + r["solution"].encode())
    return h.hexdigest()


def prebuilt_dir() -> Path:
    """Where the default's prebuilt base lives: ``$ASYM_PREBUILT_DIR`` if set, else the shipped folder."""
    return Path(os.environ[ENV_DIR]) if os.environ.get(ENV_DIR) else PREBUILT_DIR


def shipped_dirs() -> list[Path]:
    """Every prebuilt base folder: ``$ASYM_PREBUILT_DIR`` alone if set, else each folder of
    ``assets/`` that has a manifest, in name order."""
    if os.environ.get(ENV_DIR):
        return [Path(os.environ[ENV_DIR])]
    return sorted(p.parent for p in ASSETS_DIR.glob(f"*/{MANIFEST}"))


def folder_for(name: str) -> Path:
    """Where ``--write-prebuilt`` ships a base called ``name`` (``$ASYM_PREBUILT_DIR`` if set)."""
    return Path(os.environ[ENV_DIR]) if os.environ.get(ENV_DIR) else ASSETS_DIR / name


def manifest(folder: Path | None = None) -> dict[str, Any] | None:
    path = (folder or prebuilt_dir()) / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def find(recipe: str, folder: Path | None = None) -> Path | None:
    """The shipped base folder (``folder``, else any of :func:`shipped_dirs`) whose recipe is
    ``recipe`` and whose model is complete, else None."""
    for f in [folder] if folder else shipped_dirs():
        m = manifest(f)
        if m and m.get("recipe") == recipe and (f / "model" / "config.json").exists():
            return f
    return None


def rebuild_command(folder: Path) -> str:
    """The command that rebuilds the shipped base in ``folder`` (from its manifest)."""
    return (manifest(folder) or {}).get("rebuild", REBUILD_COMMAND)


def copy_model(src: Path, dest: Path) -> Path:
    """Copy the shipped model folder to ``dest`` atomically (a temporary sibling, then rename)."""
    with artifacts.atomic_folder(dest) as tmp:
        shutil.copytree(src / "model", tmp, dirs_exist_ok=True)
    return dest


def write(base_out: Path, recipe: str, info: Mapping[str, Any], folder: Path | None = None,
          rebuild: str = REBUILD_COMMAND) -> Path:
    """Ship the base stage's output ``base_out`` (model/ + sft_metrics.parquet) as the prebuilt
    base with ``recipe`` into ``folder`` (default: the default's); replaces the folder atomically.
    ``rebuild`` is the command recorded for rebuilding it."""
    folder = folder or prebuilt_dir()
    with artifacts.atomic_folder(folder) as tmp:
        shutil.copytree(base_out / "model", tmp / "model")
        shutil.copy2(base_out / "sft_metrics.parquet", tmp / "sft_metrics.parquet")
        (tmp / MANIFEST).write_text(json.dumps(dict(info, recipe=recipe, rebuild=rebuild),
                                               indent=1, sort_keys=True) + "\n", encoding="utf-8")
        for p in tmp.rglob("*"):  # readable by everyone once installed
            p.chmod(0o755 if p.is_dir() else 0o644)
        tmp.chmod(0o755)
    return folder
