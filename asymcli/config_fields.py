"""Config fields declared as data: the generic half of the config (asymcli/config.py).

A section is a dataclass whose fields are declared with :func:`setting`: the annotation is the
type, and the call gives the default, the description and the range (``ge``/``gt``/``le``/``lt``,
``finite``, ``one_of``). Everything else is derived from those declarations, so nothing can drift:

- :func:`build_dataclass` builds a section from a YAML mapping, rejecting unknown keys (naming the
  full key path) and values of the wrong type;
- :func:`check_fields` checks every declared range, one line naming the key;
- :func:`json_schema_of` gives the JSON schema (type, default, description and range of each key);
- :func:`markdown_reference` gives the reference tables of docs/config.md.

Knows nothing of the experiment: the sections and the checks across fields live in config.py.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import operator
import re
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, Literal

from .errors import ConfigError

_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def setting(default: Any = dataclasses.MISSING, doc: str = "", *, factory: Callable[[], Any] | None = None,
            ge: float | None = None, gt: float | None = None, le: float | None = None, lt: float | None = None,
            finite: bool = False, one_of: tuple[Any, ...] | None = None, hint: str | None = None) -> Any:
    """A config field: its default (a list or dict default is copied for each instance; a nested
    section passes ``factory``), its description ``doc``, and its range: bounds, ``finite`` (no
    NaN or infinity) and ``one_of`` (allowed values). ``hint`` follows the range in the error
    message, e.g. ``must be >= 0 (0 = one per process)``. A None value is never range-checked."""
    if not doc:
        raise TypeError("a config field needs its description (doc)")
    meta = {"doc": doc, "finite": finite, "one_of": one_of, "hint": hint,
            **{k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def default_of(f: dataclasses.Field) -> Any:
    """A field's default value (a fresh one for a factory)."""
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a`` updated by ``b``, nested mappings merged key by key."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------
# Building a section from YAML data: keys and types
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Ranges
# ---------------------------------------------------------------------------


def range_text(meta: typing.Mapping[str, Any]) -> str:
    """A field's declared range in words ("" when it has none): ``>= 1``, ``in (0, 1]``,
    ``a finite number >= 0``, ``0, 1, 2 or 3``."""
    if meta.get("one_of"):
        *first, last = (str(v) for v in meta["one_of"])
        return f"{', '.join(first)} or {last}" if first else last
    lo = next(((k, meta[k]) for k in ("ge", "gt") if k in meta), None)
    hi = next(((k, meta[k]) for k in ("le", "lt") if k in meta), None)
    if lo and hi:
        text = f"in {'[' if lo[0] == 'ge' else '('}{lo[1]}, {hi[1]}{']' if hi[0] == 'le' else ')'}"
    else:
        text = " ".join(f"{_BOUNDS[b[0]]} {b[1]}" for b in (lo, hi) if b)
    if meta.get("finite"):
        text = f"a finite number {text}".strip()
    return text


def _in_range(meta: typing.Mapping[str, Any], v: Any) -> bool:
    if meta.get("one_of"):
        return v in meta["one_of"]
    if meta.get("finite") and not math.isfinite(v):
        return False
    # comparisons with NaN are false, so NaN fails every bound
    return all(_COMPARE[k](v, meta[k]) for k in _COMPARE if k in meta)


_COMPARE = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


def check_fields(obj: Any, path: str, where: str, only: typing.Collection[str] | None = None) -> None:
    """Check every declared range of section ``obj`` (at key ``path``) and of the sections nested
    in it, in declaration order; raise ConfigError naming the first bad key. ``only``: check
    just these fields of ``obj`` (e.g. the keys a method override sets)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if only is not None and f.name not in only:
            continue
        key = f"{path}.{f.name}" if path else f.name
        value = getattr(obj, f.name)
        for sub_key, item in _items(hints[f.name], key, value):
            if dataclasses.is_dataclass(item):
                check_fields(item, sub_key, where)
        if value is not None and range_text(f.metadata) and not _in_range(f.metadata, value):
            raise ConfigError(f"{where}: '{key}' must be {allowed_text(f, hints[f.name])}, got {value}")


def allowed_text(f: dataclasses.Field, tp: Any) -> str:
    """What field ``f`` (of type ``tp``) allows, as its error message says it: the range, then its
    hint in parentheses, or "or null" when it may be null and has no hint."""
    text = range_text(f.metadata)
    if text and f.metadata.get("hint"):
        return f"{text} ({f.metadata['hint']})"
    return f"{text} or null" if text and _nullable(tp) else text


def _items(tp: Any, key: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(key, value) of a field's sections: itself, or each of a list of sections."""
    if dataclasses.is_dataclass(tp):
        yield key, value
    elif typing.get_origin(tp) is list and value:
        for i, v in enumerate(value):
            yield f"{key}[{i}]", v


def _nullable(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


# ---------------------------------------------------------------------------
# JSON schema and the reference tables, from the declarations
# ---------------------------------------------------------------------------


def json_schema_of(tp: Any) -> dict[str, Any]:
    """JSON schema of a config type; a section's keys carry their description, default and range."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        props = {}
        for f in dataclasses.fields(tp):
            prop = json_schema_of(hints[f.name])
            if dataclasses.is_dataclass(hints[f.name]):  # a section: described by its own docstring
                props[f.name] = prop
                continue
            prop["description"] = f.metadata["doc"]
            prop["default"] = _plain(default_of(f))
            for k, word in (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum"),
                            ("lt", "exclusiveMaximum")):
                if k in f.metadata:
                    prop[word] = f.metadata[k]
            if f.metadata.get("one_of"):
                prop["enum"] = list(f.metadata["one_of"]) + ([None] if _nullable(hints[f.name]) else [])
            props[f.name] = prop
        return {"type": "object", "additionalProperties": False, "properties": props,
                "description": (tp.__doc__ or tp.__name__).strip().splitlines()[0]}
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


def _plain(x: Any) -> Any:
    """A default as JSON data (sections -> dicts)."""
    if dataclasses.is_dataclass(x):
        return dataclasses.asdict(x)  # type: ignore[arg-type]
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return x


def markdown_reference(cls: type, path: str = "") -> list[str]:
    """Reference tables of section ``cls`` and the sections in it: one table per section, a row
    per key with its type, default, range and description (docs/config.md)."""
    hints = typing.get_type_hints(cls)
    doc = " ".join((cls.__doc__ or "").split())
    lines = [f"## `{path or 'top level'}`", "", *([doc, ""] if doc else []),
             "| key | type | default | range | description |", "|---|---|---|---|---|"]
    nested: list[str] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = f"{path}.{f.name}" if path else f.name
        inner = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
        section = tp if dataclasses.is_dataclass(tp) else inner if dataclasses.is_dataclass(inner) else None
        if section is not None:
            nested += ["", *markdown_reference(section, key + ("[]" if section is inner else ""))]
        default = "(section)" if section is tp else f"`{json.dumps(_plain(default_of(f)))}`"
        row = [f"`{f.name}`", type_text(tp), default, allowed_text(f, tp), f.metadata["doc"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return lines + nested


def type_text(tp: Any) -> str:
    """A config type in words: ``int``, ``float or null``, ``list of str``, ``"tiny" | "hf"``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return "section"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(a) for a in args)
    if origin is Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in args)
    if origin is list:
        return f"list of {type_text(args[0])}"
    if origin is dict:
        return "mapping"
    return {type(None): "null", Any: "any"}.get(tp, getattr(tp, "__name__", str(tp)))
