"""Outputs by reference: a step output too big to travel through the engine's history is
stored as a blob, and the engine carries a small marker in its place.

A marker is ``{"__lockstep_ref__": {"key", "size", "sha256", "preview"}}``. It passes through
untouched where a value is only handed on (a ``with:`` value or a run output that is exactly
``${{ steps.X.outputs.NAME }}``; the worker puts the real value into ``$LOCKSTEP_INPUT``), and
is replaced by its value before any expression looks inside it. Pure: imported by workflows.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from lockstep.engine.types import StepPlan
from lockstep.spec.contracts import template_strings
from lockstep.spec.expressions import OPEN, find_templates, tokenize, whole_template

REF = "__lockstep_ref__"
#: a value whose JSON is bigger than this is stored by reference
INLINE_MAX = 64 * 1024
#: the most a referenced value may weigh when an expression must read it inside the engine
LOAD_MAX = 1024 * 1024
PREVIEW_CHARS = 200


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(REF), dict)


def owned(key: Any, project: str) -> bool:
    """Whether a marker's ``key`` names an output stored by reference of ``project``: every
    reader checks this before it opens the key, since a marker reached it as data (a param,
    a ``with:`` value) that a user of another project could have written."""
    if not isinstance(key, str) or any(c in key for c in "%\\\0"):
        return False
    parts = key.split("/")
    return (
        len(parts) > 2
        and parts[:2] == ["outputs", project]
        and all(p not in ("", ".", "..") for p in parts)
    )


def make_ref(key: str, size: int, sha256: str, preview: str) -> dict[str, Any]:
    return {REF: {"key": key, "size": size, "sha256": sha256, "preview": preview}}


def ref_keys(value: Any) -> Iterator[tuple[str, int]]:
    """``(key, size)`` of every marker in ``value``."""
    if is_ref(value):
        yield value[REF]["key"], int(value[REF]["size"])
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from ref_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from ref_keys(item)


def with_values(value: Any, loaded: Mapping[str, Any]) -> Any:
    """``value`` with each marker whose key is in ``loaded`` replaced by its value."""
    if is_ref(value):
        return loaded.get(value[REF]["key"], value)
    if isinstance(value, dict):
        return {k: with_values(v, loaded) for k, v in value.items()}
    if isinstance(value, list):
        return [with_values(v, loaded) for v in value]
    return value


def plain_path(src: str) -> bool:
    """Whether ``src`` only names a value (``steps.a.outputs.big``), so a marker there can be
    handed on without reading it."""
    tokens = tokenize(src)
    if not tokens or tokens[0].kind != "ident":
        return False
    i = 1
    while i < len(tokens):
        if tokens[i].value == "." and i + 1 < len(tokens) and tokens[i + 1].kind == "ident":
            i += 2
        elif (
            tokens[i].value == "["
            and i + 2 < len(tokens)
            and tokens[i + 1].kind == "string"
            and tokens[i + 2].value == "]"
        ):
            i += 3
        else:
            return False
    return True


def step_sources(step: StepPlan) -> tuple[list[str], list[str]]:
    """The CEL sources a step evaluates: those that read values, and the ``with:`` values
    that are exactly a path, which only hand a value on (a marker may stay a marker)."""
    read = [*step.bindings.values(), *([step.condition] if step.condition else [])]
    texts = [*step.command, *step.env.values(), *step.artifacts.values(), step.cache_key or ""]
    handed: list[str] = []
    for text, _ in template_strings(step.inputs, ""):
        only = whole_template(text) if OPEN in text else None
        if only is not None and plain_path(only.source):
            handed.append(only.source)
        else:
            texts.append(text)
    read += [t.source for text in texts if OPEN in text for t in find_templates(text)]
    return read, handed
