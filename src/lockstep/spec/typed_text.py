"""Text typed by a JSON Schema: how ``-p key=value`` params and ``key=value`` step outputs
become integers, numbers, booleans, null, arrays or objects when their schema says so."""

from __future__ import annotations

import json
import math
from typing import Any

#: the order non-string types are tried in for a union (``"1"`` is 1 before it is ``true``)
STRICT_ORDER = ("integer", "number", "boolean", "null", "array", "object")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not valid JSON")


def loads_json(text: str) -> Any:
    """``json.loads`` without NaN, Infinity or 1e999: they are not JSON, and letting them
    through would break every consumer that serialises the value again (Temporal payloads,
    the API). Raises ``ValueError`` (also for JSON nested too deeply)."""
    try:
        return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON is nested too deeply") from None


def _plain_digits(text: str) -> bool:
    # int() and float() also take '1_000' and non-ASCII digits; nobody means those
    return text.isascii() and "_" not in text


def as_type(kind: str, text: str) -> Any:
    """``text`` as a value of JSON Schema type ``kind``; ``ValueError`` says what it must be
    (e.g. "must be an integer")."""
    stripped = text.strip()
    if kind == "string":
        return text
    if kind == "integer":
        try:
            if _plain_digits(stripped):
                return int(stripped)
        except ValueError:
            pass
        raise ValueError("must be an integer")
    if kind == "number":
        if _plain_digits(stripped):
            try:
                return int(stripped)
            except ValueError:
                pass
            try:
                number = float(stripped)
            except ValueError:
                pass
            else:
                if not math.isfinite(number):
                    raise ValueError("must be a finite number")
                return number
        raise ValueError("must be a number")
    if kind == "boolean":
        lowered = stripped.lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ValueError("must be true or false (or yes/no, 1/0)")
    if kind == "null":
        if stripped == "null":
            return None
        raise ValueError("must be null")
    if kind in ("array", "object"):
        expected = list if kind == "array" else dict
        example = '["a", "b"]' if kind == "array" else '{"key": "value"}'
        try:
            value = loads_json(text)
        except ValueError:
            value = None
        if not isinstance(value, expected):
            raise ValueError(f"must be a JSON {kind}, e.g. '{example}'")
        return value
    raise ValueError(f"has unsupported type '{kind}'")


def declared_types(schema: Any) -> list[str]:
    """The JSON types a (sub)schema allows, as far as ``type``, ``const``, ``enum`` and
    ``anyOf``/``oneOf`` say; ``[]`` when it does not say."""
    if not isinstance(schema, dict):
        return []
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [k for k in declared if isinstance(k, str)]
    values = schema.get("enum", [schema["const"]] if "const" in schema else None)
    if isinstance(values, list) and values:
        return _unique(_json_type(v) for v in values)
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            kinds = [declared_types(branch) for branch in branches]
            if kinds and all(kinds):  # a branch without a type allows anything
                return _unique(k for ks in kinds for k in ks)
    return []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "string"


def _unique(kinds: Any) -> list[str]:
    return list(dict.fromkeys(kinds))
