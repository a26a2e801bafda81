"""References between JSON Schemas in a workflow file: ``{"$ref": "#/definitions/NAME"}`` into
its top-level ``definitions`` map (both dialects share them), found, named and resolved."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from lockstep.spec.yamlsafe import escape_pointer

REF_PREFIX = "#/definitions/"
# keywords whose values are data, not schemas: a {"$ref": ...} inside them is not a reference
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def ref_target(ref: object) -> str | None:
    """The definition name of a ``#/definitions/<name>`` reference, else ``None``."""
    if not isinstance(ref, str) or not ref.startswith(REF_PREFIX):
        return None
    token = ref[len(REF_PREFIX) :]
    if not token or "/" in token:
        return None
    return token.replace("~1", "/").replace("~0", "~")


def schema_refs(schema: Any, ptr: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every ``$ref`` and ``$id`` in a schema, as ``(pointer, keyword, value)``."""
    stack: list[tuple[Any, str]] = [(schema, ptr)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, list):
            stack.extend((item, f"{at}/{i}") for i, item in reversed(list(enumerate(node))))
            continue
        if not isinstance(node, dict):
            continue
        children = []
        for key, value in node.items():
            child = f"{at}/{escape_pointer(key)}"
            if key in ("$ref", "$id") and isinstance(value, str):
                yield child, key, value
            elif key not in _DATA_KEYWORDS:
                children.append((value, child))
        stack.extend(reversed(children))


def resolve_schema(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """A self-contained copy of a (valid) step schema.

    A schema that is only ``{"$ref": "#/definitions/x"}`` becomes a copy of ``x``; the
    definitions it reaches through further references are attached under ``definitions``,
    where their ``#/definitions/...`` references resolve unchanged.
    """
    target = ref_target(schema.get("$ref")) if set(schema) == {"$ref"} else None
    result = copy.deepcopy(definitions[target] if target is not None else schema)
    needed: set[str] = set()
    pending = [result]
    while pending:
        for _, keyword, value in schema_refs(pending.pop()):
            name = ref_target(value) if keyword == "$ref" else None
            if name is not None and name not in needed and name in definitions:
                needed.add(name)
                pending.append(definitions[name])
    if needed:
        result["definitions"] = {
            name: copy.deepcopy(value) for name, value in definitions.items() if name in needed
        }
    return result
