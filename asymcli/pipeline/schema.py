"""The config Snakemake sees: the resolved config file; and the JSON schema and docs/config.md,
generated from the declarations of asymcli/config_sections.py."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .. import artifacts
from ..config import Config, config_from_dict, config_json_schema, config_to_dict
from ..config_fields import markdown_reference
from .layout import Layout, REPO_ROOT


SCHEMA_FILE = REPO_ROOT / "workflow" / "schemas" / "config.schema.json"
CONFIG_DOCS = REPO_ROOT / "docs" / "config.md"


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
    ``config_json_schema()``, each key with the type, default, range and description its
    section declares (asymcli/config_sections.py).

    Regenerate (with docs/config.md): python -c "from asymcli import pipeline; pipeline.write_schema()"
    """
    schema = config_json_schema()
    # Draft 2020-12 for editors and validators; the keywords used here mean the same in draft 7.
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = ("asym experiment config, generated from the declarations in "
                             "asymcli/config_sections.py; see configs/default.yaml for an example")
    return json.dumps(schema, indent=2) + "\n"


def config_docs_text() -> str:
    """docs/config.md as it must be (a test keeps the file equal): every key's type, default,
    range and description, from the same declarations as the schema."""
    head = ["# Config reference", "",
            "<!-- Generated from asymcli/config_sections.py by "
            "`python -c \"from asymcli import pipeline; pipeline.write_schema()\"`; do not edit. -->", "",
            "Every key of a config file (configs/default.yaml is an example), section by section. Loading a",
            "config checks each key's type and range, and the rules that span several keys (asymcli/config.py);",
            "an error is one line naming the key. A run's method may override train keys (`methods:`).", ""]
    return "\n".join(head + markdown_reference(Config)) + "\n"


def write_schema() -> Path:
    """Regenerate workflow/schemas/config.schema.json and docs/config.md."""
    artifacts.write_text(CONFIG_DOCS, config_docs_text())
    artifacts.write_text(SCHEMA_FILE, schema_text())
    return SCHEMA_FILE


def workflow_config(data: dict[str, Any], sources: Sequence[str | os.PathLike[str]]) -> Config:
    """Validate Snakemake's merged config dict with asym's own checks (range checks too)."""
    where = ", ".join(str(s) for s in sources) or "snakemake config"
    return config_from_dict(json.loads(json.dumps(data)), where)
