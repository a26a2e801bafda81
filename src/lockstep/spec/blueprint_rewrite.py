"""Rewrite a blueprint's steps for their place in the caller.

Inside a blueprint, ``params.x`` becomes the value its alias gives in ``with:`` (a CEL literal,
or the caller's own expression, which is then read in the caller's context) and
``steps.s`` becomes ``steps.<alias>__s``. Values are never spliced into scripts as text: a
literal stays inside a ``${{ }}`` template, so the shell quoting of templates still applies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from lockstep.spec.expressions import OPEN, find_templates, reference_spans, whole_template

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def cel_literal(value: Any) -> str:
    """``value`` (plain JSON data) written as a CEL literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(cel_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{cel_literal(str(k))}: {cel_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return json.dumps(str(value))


def value_source(value: Any) -> str:
    """A param value as a CEL expression: a template string is the caller's expression (text
    around templates joins as a string, the way the engine interpolates), else a literal."""
    if not isinstance(value, str) or OPEN not in value:
        return cel_literal(value)
    only = whole_template(value)
    if only is not None:
        return f"({only.source})"
    parts: list[str] = []
    pos = 0
    for t in find_templates(value):
        if value[pos : t.start]:
            parts.append(cel_literal(value[pos : t.start]))
        parts.append(f"string({t.source})")
        pos = t.end
    if value[pos:]:
        parts.append(cel_literal(value[pos:]))
    return "(" + " + ".join(parts) + ")"


class Rewriter:
    """Rewrites expressions of one blueprint use: its params' values and its step ids."""

    def __init__(self, values: Mapping[str, Any], rename: Mapping[str, str]) -> None:
        self.values = values
        self.rename = rename

    def source(self, src: str) -> str:
        """One CEL expression, rewritten."""
        refs = reference_spans(src)
        only = refs[0] if len(refs) == 1 else None
        if only and only.chain[0] == "params" and len(only.chain) == 2 and len(only.ends) >= 2:
            whole = src.strip() == src[only.start : only.ends[1]]
            given = self.values.get(only.chain[1])
            caller = whole_template(given) if isinstance(given, str) else None
            if whole and caller is not None:
                return caller.source  # the caller's expression as written (a secret too)
            if whole:
                return value_source(given)
        out = src
        for ref in sorted(refs, key=lambda r: r.start, reverse=True):
            root = ref.chain[0]
            if root == "params" and len(ref.chain) >= 2:
                new = f"({value_source(self.values.get(ref.chain[1]))})"
                out = out[: ref.start] + new + out[ref.ends[1] :]
            elif root == "params":
                given = (f"{cel_literal(k)}: {value_source(v)}" for k, v in self.values.items())
                new = "{" + ", ".join(given) + "}"
                out = out[: ref.start] + new + out[ref.ends[0] :]
            elif root == "steps" and len(ref.chain) >= 2 and ref.chain[1] in self.rename:
                out = out[: ref.start] + step_path(self.rename[ref.chain[1]]) + out[ref.ends[1] :]
        return out

    def text(self, text: str) -> str:
        """A string that may hold ``${{ }}`` templates, each rewritten."""
        if OPEN not in text:
            return text
        parts: list[str] = []
        pos = 0
        for t in find_templates(text):
            parts.append(text[pos : t.start])
            parts.append("${{ " + self.source(t.source) + " }}")
            pos = t.end
        parts.append(text[pos:])
        return "".join(parts)

    def data(self, value: Any) -> Any:
        """Every string inside ``value`` (lists and mappings too), rewritten."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        return value

    def step(self, step: Mapping[str, Any]) -> dict[str, Any]:
        """A blueprint step with its expressions, needs and artifact inputs renamed."""
        out: dict[str, Any] = {}
        for key, value in step.items():
            if key == "needs" and isinstance(value, list):
                out[key] = [self.rename.get(d, d) if isinstance(d, str) else d for d in value]
            elif key == "if" and isinstance(value, str) and OPEN not in value:
                out[key] = self.source(value)  # a bare CEL condition
            elif key == "inputs" and isinstance(value, dict):
                out[key] = {
                    **value,
                    "artifacts": [self._artifact(a) for a in value.get("artifacts") or []],
                }
            elif key in ("outputs", "input", "http"):
                out[key] = value  # schemas and literal calls hold no expressions
            else:
                out[key] = self.data(value)
        return out

    def _artifact(self, ref: Any) -> Any:
        if not isinstance(ref, str) or "." not in ref:
            return ref
        sid, _, name = ref.partition(".")
        return f"{self.rename.get(sid, sid)}.{name}"


def step_path(sid: str) -> str:
    """``steps.<sid>`` as CEL reads it (an id with '-' is an index)."""
    return f"steps.{sid}" if _IDENT.fullmatch(sid) else f"steps[{cel_literal(sid)}]"
