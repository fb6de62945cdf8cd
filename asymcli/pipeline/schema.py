"""The config Snakemake sees: the resolved config file, and the JSON schema generated from the
dataclasses of asymcli/config.py (with their field comments as descriptions)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .. import artifacts
from ..config import Config, config_from_dict, config_to_dict
from .layout import Layout, REPO_ROOT


SCHEMA_FILE = REPO_ROOT / "workflow" / "schemas" / "config.schema.json"


def resolved_config_text(cfg: Config) -> str:
    head = ("# Written by the Snakefile: the merged, validated config every rule passes to\n"
            "# `asym <stage> --config`. Edit the config you ran with, not this file.\n")
    return head + yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)


def write_resolved_config(cfg: Config) -> Path:
    """Write ``{results_dir}/config.resolved.yaml``, only when its text changes."""
    path = Layout.of(cfg).resolved_config
    text = resolved_config_text(cfg)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        artifacts.write_text(path, text)
    return path


def schema_text() -> str:
    """workflow/schemas/config.schema.json as it must be (a test keeps the file equal):
    ``config_json_schema()`` plus, for every key, its default and a description taken
    from the field's comment in asymcli/config.py.

    Regenerate: python -c "from asymcli import pipeline; pipeline.write_schema()"
    """
    from .. import config as config_mod

    schema = config_mod.config_json_schema()
    # Snakemake validates with the 2020-12 validator whatever $schema says (and warns when
    # it says another draft); the keywords used here mean the same in both drafts.
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = ("asym experiment config, generated from the dataclasses in "
                             "asymcli/config.py; see configs/default.yaml for an example")
    _annotate(schema, config_mod.Config)
    return json.dumps(schema, indent=2) + "\n"


def _field_comments(cls: type) -> dict[str, str]:
    import inspect

    out = {}
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"\s+(\w+):[^#]*#\s*(.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _annotate(schema: dict[str, Any], cls: type) -> None:
    """Add description/default to every property of dataclass ``cls``'s schema, recursively."""
    import typing

    doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
    schema.setdefault("description", doc)
    comments = _field_comments(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        prop = schema["properties"][f.name]
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            _annotate(prop, tp)
            if f.name in comments:
                prop["description"] = comments[f.name]
            continue
        args = typing.get_args(tp)
        if typing.get_origin(tp) is list and args and dataclasses.is_dataclass(args[0]):
            _annotate(prop["items"], args[0])
        prop["description"] = comments.get(f.name, f"{cls.__name__}.{f.name}")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        prop["default"] = _plain(default)


def _plain(x: Any) -> Any:
    """A default as JSON data (dataclasses -> dicts)."""
    if dataclasses.is_dataclass(x):
        return dataclasses.asdict(x)  # type: ignore[arg-type]
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return x


def write_schema() -> Path:
    artifacts.write_text(SCHEMA_FILE, schema_text())
    return SCHEMA_FILE


def workflow_config(data: dict[str, Any], sources: Sequence[str | os.PathLike[str]]) -> Config:
    """Validate Snakemake's merged config dict with asym's own checks (range checks too)."""
    where = ", ".join(str(s) for s in sources) or "snakemake config"
    return config_from_dict(json.loads(json.dumps(data)), where)
