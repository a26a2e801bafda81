"""Outputs by reference: a step output too big to travel through the engine's history is
stored as a blob, and the engine carries a small marker in its place.

A marker is ``{"__lockstep_ref__": {"key", "size", "sha256", "preview"}}``. It passes through
untouched where a value is only handed on (a ``with:`` value or a run output that is exactly
``${{ steps.X.outputs.NAME }}``; the worker puts the real value into ``$LOCKSTEP_INPUT``), and
is replaced by its value before any expression looks inside it.

The one home of the marker format: the workflow (pure helpers), the worker (externalize,
internalize), the server (load, stream) and the CLI (a preview) all read it here. Stdlib and
``errors`` only, so the CLI's light reads and the deterministic workflow can import it; the
store is anything shaped like :class:`BlobWriter` / :class:`BlobReader`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from lockstep.errors import ExecutionError

REF = "__lockstep_ref__"
#: a value whose JSON is bigger than this is stored by reference
INLINE_MAX = 64 * 1024
#: the most a referenced value may weigh when an expression must read it inside the engine
LOAD_MAX = 1024 * 1024
PREVIEW_CHARS = 200


class StoredBlob(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...


class BlobWriter(Protocol):
    """What :func:`externalize` needs of a store."""

    def put_file(self, key: str, path: Path) -> StoredBlob: ...


class BlobReader(Protocol):
    """What :func:`load` and :func:`internalize` need of a store."""

    def open(self, key: str) -> IO[bytes]: ...


@dataclass(frozen=True)
class Marker:
    """A marker's fields, as far as they are well formed (a marker may arrive as data)."""

    key: str
    size: int | None
    sha256: str
    preview: str


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(REF), dict)


def marker(value: Any) -> Marker | None:
    """The marker ``value`` is, or None; fields of the wrong type read as empty."""
    if not is_ref(value):
        return None
    fields = value[REF]
    key, size, sha256, preview = (fields.get(k) for k in ("key", "size", "sha256", "preview"))
    return Marker(
        key=key if isinstance(key, str) else "",
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        sha256=sha256 if isinstance(sha256, str) else "",
        preview=preview if isinstance(preview, str) else "",
    )


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


def owned_marker(value: Any, project: str) -> Marker | None:
    """The marker ``value`` is if it names ``project``'s own stored output, else None (data)."""
    found = marker(value)
    return found if found is not None and owned(found.key, project) else None


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


def reserved_key(value: Any, where: str = "") -> str | None:
    """The JSON pointer of the first object in ``value`` holding the marker key (which a
    step may not write: it cannot forge an output stored by reference)."""
    if isinstance(value, dict):
        if REF in value:
            return where
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = reserved_key(item, f"{where}/{str(key).replace('~', '~0').replace('/', '~1')}")
        if found is not None:
            return found
    return None


def preview(value: Any, width: int = 80) -> str | None:
    """How a marker reads in a terminal (its size and the start of its preview, never the
    whole value); None if ``value`` is not a marker."""
    found = marker(value)
    if found is None:
        return None
    size = f"{found.size:,}" if found.size is not None else "?"
    return f"<{size} bytes, stored by reference> {found.preview[:width]}…"


def externalize(
    outputs: dict[str, Any], blobs: BlobWriter, prefix: str, *, scratch: Path
) -> dict[str, Any]:
    """``outputs`` with each value whose JSON exceeds ``INLINE_MAX`` bytes stored under
    ``prefix/N.json`` (N: its place among the outputs, so no name reaches a key) and replaced
    by a marker with a preview."""
    small: dict[str, Any] = {}
    for n, (name, value) in enumerate(outputs.items()):
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        if len(data) <= INLINE_MAX:
            small[name] = value
            continue
        with tempfile.NamedTemporaryFile(dir=scratch, prefix=".output-") as tmp:
            tmp.write(data)
            tmp.flush()
            info = blobs.put_file(f"{prefix}/{n}.json", Path(tmp.name))
        shown = data[: PREVIEW_CHARS * 4].decode(errors="ignore")[:PREVIEW_CHARS]
        small[name] = make_ref(info.key, info.size, info.sha256, shown)
    return small


def internalize(value: Any, blobs: BlobReader, project: str) -> Any:
    """``value`` with every marker of the project's own replaced by the stored value (a step's
    input); a value shaped like a marker that names anything else stays as it is: data."""
    loaded = {key: load(blobs, key, project) for key, _ in ref_keys(value) if owned(key, project)}
    return with_values(value, loaded) if loaded else value


def load(blobs: BlobReader, key: str, project: str) -> Any:
    """A referenced value; only the project's own outputs can be read this way."""
    if not owned(key, project):
        raise ExecutionError(
            "a value shaped like an output stored by reference names another project's data "
            "(or is malformed); lockstep never reads it"
        )
    with blobs.open(key) as fh:
        return json.load(fh)
