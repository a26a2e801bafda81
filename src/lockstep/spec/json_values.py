"""Plain JSON values as the spec diff compares and shows them: an absent key distinct from
null, equality as JSON Schema sees it (``1 == 1.0``, ``true != 1``, key order ignored),
dotted paths and short one-line renderings."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

MISSING: Any = object()  # an absent key, distinct from an explicit null
_WIDTH = 80
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def keys_of(*mappings: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(k) for m in mappings for k in m))


def or_missing(value: Any, instead: Any = None) -> Any:
    return instead if value is MISSING else value


def join_path(path: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def canon(value: Any) -> str:
    """JSON text that compares as JSON Schema does: 1 == 1.0, true != 1, key order ignored."""
    return json.dumps(_normal(value), sort_keys=True, ensure_ascii=False, default=str)


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return a is b
    return canon(a) == canon(b)


def show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _WIDTH else text[: _WIDTH - 1] + "…"
