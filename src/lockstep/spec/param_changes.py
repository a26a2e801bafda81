"""Which changes to a workflow's ``params`` schema break its callers (see ``spec.diff``).

A change is *breaking* when params lockstep accepted for the old version are rejected for the
new one, by ``resolve_params`` (every run) or ``parse_cli_params`` (``-p`` and the params
stored on instances, which reject names the schema does not declare). Values for names a
schema does not declare count as accepted only where that schema allows them: it declares no
properties, or sets ``additionalProperties`` to true or a schema (the rule the expression
checker applies to ``params.x``); otherwise adding an optional param, or closing a schema,
would be "breaking" only for callers passing names the workflow cannot use. Changes this
module cannot analyse (``anyOf``, ``$ref``, unknown keywords, ...) are assumed breaking when
added or changed; annotations (``description``, ``default``, ...) are reported but never
breaking, and so is ``format``, which lockstep does not enforce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lockstep.spec.json_values import MISSING, canon, join_path, keys_of, or_missing, same, show

# what "no params schema" accepts: only {} (resolve_params rejects any param)
_NO_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": False}
_SHAPE = frozenset({"type", "properties", "required", "additionalProperties", "items"})
_LOWER = frozenset({"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"})
_UPPER = frozenset({"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"})
_NOTES = frozenset(
    {"title", "description", "examples", "$comment", "deprecated", "readOnly", "writeOnly"}
    | {"default", "format"}
)
_ANALYSED = _NOTES | _LOWER | _UPPER | {"enum", "const", "pattern", "multipleOf", "uniqueItems"}


@dataclass(frozen=True)
class ParamChange:
    """One change to the params schema. ``param`` is a dotted path (``config.region``,
    ``tags[]`` for array items), empty for the schema as a whole; ``kind`` is the JSON
    Schema keyword concerned, or ``added``/``removed``/``required``/``schema``."""

    param: str
    kind: str
    detail: str
    breaking: bool
    old: Any = None
    new: Any = None


def param_changes(old: Any, new: Any) -> list[ParamChange]:
    if same(old, new):
        return []
    if old is not None and new is not None:
        return _schema_changes("", old, new, top=True)
    head = ParamChange(
        "", "schema", f"schema {'added' if old is None else 'removed'}", False, old, new
    )
    found = _schema_changes("", _NO_SCHEMA if old is None else old, new or _NO_SCHEMA, top=True)
    # "undeclared params are now accepted/rejected" only restates the head, unless it breaks
    return [head, *(c for c in found if c.breaking or c.kind != "additionalProperties")]


def _schema_changes(path: str, old: Any, new: Any, *, top: bool = False) -> list[ParamChange]:
    """``top`` is the params object itself: resolve_params fills its properties' defaults
    before validating, and the CLI rejects names it does not declare."""
    old, new = ({} if s is True else s for s in (old, new))
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        if same(old, new):
            return []
        # false accepts nothing, so nothing can be lost; {} accepts everything
        breaking = old is not False and not (isinstance(new, Mapping) and not new)
        return [ParamChange(path, "schema", f"{show(old)} → {show(new)}", breaking, old, new)]
    changes: list[ParamChange] = []
    if kind := _type_change(path, old, new, top):
        changes.append(kind)
    for key in keys_of(old, new):
        before, after = old.get(key, MISSING), new.get(key, MISSING)
        if key not in _SHAPE and not same(before, after):
            changes.extend(_keyword(path, key, before, after))
    if "items" in old or "items" in new:
        changes.extend(_schema_changes(f"{path}[]", old.get("items", {}), new.get("items", {})))
    if any(k in s for k in ("properties", "required", "additionalProperties") for s in (old, new)):
        changes.extend(_object_changes(path, old, new, top))
    return changes


def _type_change(
    path: str, old: Mapping[str, Any], new: Mapping[str, Any], top: bool
) -> ParamChange | None:
    before, after = _types(old.get("type"), top), _types(new.get("type"), top)
    if before == after:
        return None
    # an enum or const accepts only its values' types, whatever "type" says
    values = old["enum"] if isinstance(old.get("enum"), list) else []
    values = [old["const"]] if "const" in old else values
    actual = frozenset(_json_type(v) for v in values) if values else before
    breaking = after is not None and (
        actual is None
        or not all(t in after or (t == "integer" and "number" in after) for t in actual)
    )
    text = " → ".join("|".join(sorted(t)) if t else "any" for t in (before, after))
    return ParamChange(path, "type", f"type {text}", breaking, old.get("type"), new.get("type"))


def _json_type(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "integer" if float(value).is_integer() else "number"
    kinds = ((bool, "boolean"), (str, "string"), (list, "array"), (Mapping, "object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def _keyword(path: str, key: str, old: Any, new: Any) -> list[ParamChange]:
    was, now = show(old), show(new)
    detail = f"{key} {was} → {now}"
    if old is MISSING:
        detail = f"{key} added: {now}"
    elif new is MISSING:
        detail = f"{key} removed (was {was})"
    if key in _NOTES:
        breaking = False
        detail += " (not enforced by lockstep)" if key == "format" else ""
    elif key == "uniqueItems":
        breaking = new is True and old is not True
    elif new is MISSING:
        breaking = False  # dropping a constraint only admits more
    elif old is MISSING:
        breaking = True
    elif key == "enum" and isinstance(old, list) and isinstance(new, list):
        allowed = {canon(v) for v in new}
        lost = [v for v in old if canon(v) not in allowed]
        gained = [v for v in new if canon(v) not in {canon(o) for o in old}]
        if not (lost or gained):
            return []  # reordered
        breaking = bool(lost)
        detail = f"enum lost {show(lost)}" if lost else f"enum gained {show(gained)}"
    elif key in _LOWER and _numbers(old, new):
        breaking = new > old
    elif key in _UPPER and _numbers(old, new):
        breaking = new < old
    elif key == "multipleOf" and _numbers(old, new):
        breaking = not (isinstance(old, int) and isinstance(new, int) and new and old % new == 0)
    else:
        breaking = True  # const and pattern changes, and whatever is not analysed
    if breaking and key not in _ANALYSED:
        detail += " (not analysed; assumed breaking)"
    return [ParamChange(path, key, detail, breaking, or_missing(old), or_missing(new))]


def _object_changes(
    path: str, old: Mapping[str, Any], new: Mapping[str, Any], top: bool
) -> list[ParamChange]:
    changes: list[ParamChange] = []
    o_props, n_props = _props(old), _props(new)
    o_req, n_req = _required(old), _required(new)
    for name in keys_of(o_props, n_props, o_req, n_req):
        sub = join_path(path, name)
        was, now = _must(name, old, top), _must(name, new, top)
        if name in o_props and name in n_props:
            found = _schema_changes(sub, o_props[name], n_props[name])
            if now and not was and name in o_req:  # required all along: its default went
                note = "; the param is required, so callers must now pass it"
                found = [
                    replace(c, breaking=True, detail=c.detail + note) if c.kind == "default" else c
                    for c in found
                ]
            elif now and not was:
                found.append(ParamChange(sub, "required", "now required", True, False, True))
            elif was and not now and name not in n_req:
                found.append(ParamChange(sub, "required", "no longer required", False, True, False))
            changes.extend(found)
        elif name in n_props:
            prop = n_props[name]
            if now and not was:
                text, breaking = "added, required" + (" with no default" if top else ""), True
            else:
                has_default = isinstance(prop, Mapping) and "default" in prop
                text = "added, optional" + (
                    f", default {show(prop['default'])}" if has_default else ""
                )
                breaking = _open(old) and _breaks(_extra(old), prop)
                if breaking:
                    text += "; values passed before as an undeclared param may now be rejected"
            changes.append(ParamChange(sub, "added", text, breaking, None, prop))
        elif name in o_props:
            # the CLI and instances reject an undeclared -p name once any property is declared
            cli = top and (bool(n_props) or new.get("additionalProperties") is False)
            rejected = cli or _breaks(o_props[name], _extra(new)) or (now and not was)
            text = "callers that pass it are now rejected" if rejected else "accepted as undeclared"
            changes.append(ParamChange(sub, "removed", f"removed; {text}", rejected, o_props[name]))
        elif now != was:
            text = "now required" if now else "no longer required"
            changes.append(ParamChange(sub, "required", text, now, was, now))
    before, after = _extra(old), _extra(new)
    if not same(before, after):
        what = "undeclared params" if top else "undeclared keys"
        if after is False:
            text, breaking = f"{what} are now rejected", _open(old)
        elif before is False:
            text, breaking = f"{what} are now accepted", False
        else:
            text, breaking = f"schema of {what} changed", _open(old) and _breaks(before, after)
        ap = "additionalProperties"
        changes.append(ParamChange(path, ap, text, breaking, old.get(ap), new.get(ap)))
    return changes


def _breaks(old: Any, new: Any) -> bool:
    return any(change.breaking for change in _schema_changes("", old, new))


def _props(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    props = schema.get("properties")
    return props if isinstance(props, Mapping) else {}


def _required(schema: Mapping[str, Any]) -> list[str]:
    names = schema.get("required")
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _must(name: str, schema: Mapping[str, Any], top: bool) -> bool:
    """Whether callers must pass ``name``: at the top a default stands in for them."""
    prop = _props(schema).get(name)
    filled = top and isinstance(prop, Mapping) and "default" in prop
    return name in _required(schema) and not filled


def _extra(schema: Mapping[str, Any]) -> Any:
    """The schema undeclared names are checked against (False: they are rejected)."""
    extra = schema.get("additionalProperties", True)
    return {} if extra is True else extra


def _open(schema: Mapping[str, Any]) -> bool:
    """Whether undeclared names are part of what the schema accepts (see the module doc)."""
    extra = schema.get("additionalProperties")
    return (
        extra is True or isinstance(extra, Mapping) or (not _props(schema) and extra is not False)
    )


def _types(value: Any, top: bool) -> frozenset[str] | None:
    if value is None:
        return frozenset({"object"}) if top else None  # params are always an object
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(str(v) for v in value) if isinstance(value, list) else None


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
