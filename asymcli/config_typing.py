"""Dataclasses from YAML mappings, typed: the generic half of asymcli/config.py.

``build_dataclass(cls, data, where)`` builds a (nested) dataclass from a mapping and rejects
unknown keys (naming the full key path) and values of the wrong type; ``json_schema_of(cls)``
derives the JSON schema of the same dataclasses, so the schema and the loader cannot drift.
Knows nothing of the experiment: the sections and their range checks live in config.py.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal

from .errors import ConfigError


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a`` updated by ``b``, nested mappings merged key by key."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def build_dataclass(cls: type, data: Any, where: str, path: str = "") -> Any:
    """Build dataclass ``cls`` from a dict, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: '{path or cls.__name__}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, where, f"{path}.{name}" if path else name)
    return cls(**kwargs)


#: Exponent floats without a dot ("2e-4", "1E+3"), which YAML 1.1 leaves as strings.
_YAML11_FLOAT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")


def _coerce(tp: Any, value: Any, where: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value if value is not None else {}, where, path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: '{path}' has an invalid value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: '{path}' must be one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{path}' must be a list, got {value!r}")
        (inner,) = args
        return [_coerce(inner, v, where, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{path}' must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{path}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: '{path}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
            # YAML 1.1 (PyYAML) reads `lr: 2e-4` as a string: it needs a dot (2.0e-4). Every
            # RL config writes learning rates this way, so take the exponent form as the number.
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: '{path}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{path}' must be a string, got {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"config field {path}: unsupported type {tp}")



def json_schema_of(tp: Any) -> dict[str, Any]:
    """JSON schema of a type of a config field (a dataclass: an object of its fields)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {f.name: json_schema_of(hints[f.name]) for f in dataclasses.fields(tp)},
        }
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [json_schema_of(a) for a in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": json_schema_of(args[0])}
    if origin is dict:
        return {"type": "object"}
    return {
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
        type(None): {"type": "null"},
    }.get(tp, {})
