"""The worker's side of outputs by reference: store outputs too big for the engine, and put
referenced values back into a step's input before it starts."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from lockstep.engine.refs import (
    INLINE_MAX,
    PREVIEW_CHARS,
    make_ref,
    owned,
    ref_keys,
    with_values,
)
from lockstep.errors import ExecutionError
from lockstep.storage.blobs import BlobStore


def externalize(
    outputs: dict[str, Any], blobs: BlobStore, prefix: str, *, scratch: Path
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
        preview = data[: PREVIEW_CHARS * 4].decode(errors="ignore")[:PREVIEW_CHARS]
        small[name] = make_ref(info.key, info.size, info.sha256, preview)
    return small


def internalize(value: Any, blobs: BlobStore, project: str) -> Any:
    """``value`` with every marker of the project's own replaced by the stored value (a step's
    input); a value shaped like a marker that names anything else stays as it is: data."""
    loaded = {key: load(blobs, key, project) for key, _ in ref_keys(value) if owned(key, project)}
    return with_values(value, loaded) if loaded else value


def load(blobs: BlobStore, key: str, project: str) -> Any:
    """A referenced value; only the project's own outputs can be read this way."""
    if not owned(key, project):
        raise ExecutionError(
            "a value shaped like an output stored by reference names another project's data "
            "(or is malformed); lockstep never reads it"
        )
    with blobs.open(key) as fh:
        return json.load(fh)
