"""Resources as the spec sees them: names and ``NAME@N`` references (``resources:`` in
workflow.yaml), the check of a version's data against its resource's JSON Schema, where a
property the schema marks ``secret: true`` must be a reference to a project secret
(``{"$secret": "NAME"}``), never the value; and the diff of two versions' data.

Pure (no I/O): the run service, the resource store and the engine all use it, so a write from
a step and a write from a person are checked by the same rules. Light: JSON Schema is loaded
by ``check_data`` only, so reading records never pays for it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from lockstep.errors import InvalidRequest
from lockstep.spec.names import SECRET_NAME_PATTERN

RESOURCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
#: what ``resources:`` maps an alias to: a resource, its latest version or ``@N``
RESOURCE_REF_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}(@[1-9][0-9]{0,8})?$"
#: the fields of ``${{ resources.ALIAS }}``
FIELDS = ("name", "version", "data")
SECRET_KEY = "$secret"  # noqa: S105 - the reference's key, not a secret
#: what a property marked secret holds instead of a value
SECRET_REF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {SECRET_KEY: {"type": "string", "pattern": SECRET_NAME_PATTERN}},
    "required": [SECRET_KEY],
    "additionalProperties": False,
}
#: the most a version's data may weigh, as compact JSON, and how deep it may nest
MAX_DATA_BYTES = 256 * 1024
MAX_DEPTH = 64
_NAME = re.compile(RESOURCE_NAME_PATTERN)
_REF = re.compile(RESOURCE_REF_PATTERN)


def pointer(*parts: str) -> str:
    """An RFC 6901 JSON pointer (as ``spec.yamlsafe.pointer``, without loading YAML)."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


class ResourceDataError(InvalidRequest):
    """A version's data breaks its resource's rules (schema, secrets, shape)."""


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"invalid resource name {name[:80]!r}: use lowercase letters, digits and '-', "
            "starting with a letter or digit (^[a-z0-9][a-z0-9-]*$, at most 63)"
        )
    return name


def parse_ref(text: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@N`` → (name, N or None for the latest)."""
    if not _REF.fullmatch(text):
        raise InvalidRequest(
            f"invalid resource reference {text[:80]!r}: write NAME or NAME@N (a version number)"
        )
    name, _, number = text.partition("@")
    return name, int(number) if number else None


def secret_paths(schema: Any, at: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The property paths a schema marks ``secret: true`` (through nested ``properties``)."""
    if not isinstance(schema, dict):
        return []
    if schema.get("secret") is True:
        return [at]
    found: list[tuple[str, ...]] = []
    props = schema.get("properties")
    if isinstance(props, dict):
        for key, sub in props.items():
            found += secret_paths(sub, (*at, str(key)))
    return found


def _with_refs(schema: Any) -> Any:
    """``schema`` with every secret-marked property replaced by the reference's schema."""
    if not isinstance(schema, dict):
        return schema
    if schema.get("secret") is True:
        return SECRET_REF_SCHEMA
    props = schema.get("properties")
    if not isinstance(props, dict):
        return schema
    return {**schema, "properties": {k: _with_refs(v) for k, v in props.items()}}


def is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SECRET_KEY}


def _at(data: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return False, None
        data = data[key]
    return True, data


def check_shape(resource: str, data: Any) -> None:
    """Data is a JSON object, nested at most ``MAX_DEPTH`` levels, of at most
    ``MAX_DATA_BYTES`` (checked first: what follows recurses into it)."""
    if not isinstance(data, dict):
        raise ResourceDataError(f"data of resource '{resource}' must be a JSON object")
    if nesting(data) > MAX_DEPTH:
        raise ResourceDataError(
            f"data of resource '{resource}' nests deeper than {MAX_DEPTH} levels; flatten it"
        )
    size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_DATA_BYTES:
        raise ResourceDataError(
            f"data of resource '{resource}' is {size} bytes, over {MAX_DATA_BYTES // 1024} KiB; "
            "keep big values in artifacts and write their names"
        )


def check_data(resource: str, data: Any, schema: dict[str, Any] | None) -> None:
    """Refuse, in one line naming the JSON pointer and never quoting a value, data that is
    not an object, too big, holds a value where the schema marks a secret, or breaks the
    schema."""
    from lockstep.spec.contracts import OutputError, check_contract

    check_shape(resource, data)
    for path in secret_paths(schema):
        present, value = _at(data, path)
        if present and not is_secret_ref(value):
            raise ResourceDataError(
                f"resource '{resource}' data {pointer(*path)} is marked secret in its schema: "
                f'write a reference {{"{SECRET_KEY}": "NAME"}} to a project secret, '
                "never the value"
            )
    try:
        check_contract(
            data,
            _with_refs(schema) if schema is not None else None,
            step="",
            what="data",
            subject=f"resource '{resource}'",
            quote=False,
        )
    except OutputError as exc:
        raise ResourceDataError(str(exc)) from None


def nesting(data: Any) -> int:
    """How deep ``data`` nests (without recursion: it may be hostile)."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        value, depth = todo.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(value, dict):
            todo += [(v, depth + 1) for v in value.values()]
        elif isinstance(value, list):
            todo += [(v, depth + 1) for v in value]
    return deepest


def secret_names(data: Any) -> list[str]:
    """The project secrets the data's references name, wherever they are."""
    if is_secret_ref(data):
        return [str(data[SECRET_KEY])]
    if isinstance(data, dict):
        return [n for v in data.values() for n in secret_names(v)]
    if isinstance(data, list):
        return [n for v in data for n in secret_names(v)]
    return []


@dataclass(frozen=True)
class Change:
    """One difference between two versions' data: ``op`` is added, removed or changed."""

    op: str
    path: str  # a JSON pointer
    old: Any = None
    new: Any = None


def diff(old: Any, new: Any, at: tuple[str, ...] = ()) -> list[Change]:
    """What changed from ``old`` to ``new``: objects key by key (sorted), anything else whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in sorted(set(old) | set(new)):
            here = (*at, key)
            if key not in new:
                changes.append(Change("removed", pointer(*here), old=old[key]))
            elif key not in old:
                changes.append(Change("added", pointer(*here), new=new[key]))
            else:
                changes += diff(old[key], new[key], here)
        return changes
    if old == new and type(old) is type(new):
        return []
    return [Change("changed", pointer(*at) or "/", old=old, new=new)]
