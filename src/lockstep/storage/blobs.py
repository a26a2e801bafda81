"""The blob store: immutable byte objects (workspace snapshots, later artifacts) under keys.

A blob appears atomically: it is written to a temporary file in its final directory and
renamed into place, so a reader sees either nothing or the whole object, never a prefix.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from lockstep.errors import InvalidRequest, NotFound, PayloadTooLarge

_SEGMENT = re.compile(r"[A-Za-z0-9_.=\[\]-]+")  # [ ]: fan-out items, step[i]
_MAX_KEY_CHARS = 1024
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    sha256: str


class BlobStore(Protocol):
    def put_file(self, key: str, path: Path) -> BlobInfo: ...

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes] | Iterator[bytes], max_bytes: int
    ) -> BlobInfo: ...

    def exists(self, key: str) -> bool: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...


def validate_key(key: str) -> list[str]:
    """Split a blob key into checked segments; anything that could leave the store is refused.

    '%' is refused outright rather than decoded, so no percent-encoded '../' or '/' variant can
    be smuggled through a layer that decodes later.
    """
    problem = ""
    if not key or len(key) > _MAX_KEY_CHARS:
        problem = f"must be 1-{_MAX_KEY_CHARS} characters"
    elif key.startswith("/"):
        problem = "must be relative"
    elif "%" in key or "\x00" in key or "\\" in key:
        problem = "must not contain '%', '\\' or NUL"
    else:
        for segment in key.split("/"):
            if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
                problem = (
                    "each '/'-separated part must be letters, digits or '_.=-[]' "
                    "(and not empty, '.' or '..')"
                )
                break
    if problem:
        raise InvalidRequest(f"invalid blob key {key[:200]!r}: {problem}")
    return key.split("/")


def _temp_path(final: Path) -> Path:
    # '~' is not allowed in keys, so a temporary file can never collide with a real blob.
    return final.with_name(f"{final.name}~{secrets.token_hex(8)}.tmp")


class DirectoryBlobStore:
    """Blobs as files under ``root``: key ``snapshots/ab12.tar.gz`` is that relative path."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key))

    def _begin(self, key: str) -> tuple[Path, Path, BinaryIO]:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = _temp_path(final)
        return final, temp, temp.open("xb")

    @staticmethod
    def _commit(
        key: str, final: Path, temp: Path, out: BinaryIO, size: int, digest: str
    ) -> BlobInfo:
        out.flush()
        # Without fsync a crash right after the rename can leave an empty file under the final
        # name on some filesystems, which is exactly the half-visible blob this avoids.
        os.fsync(out.fileno())
        out.close()
        temp.replace(final)
        return BlobInfo(key=key, size=size, sha256=digest)

    def put_file(self, key: str, path: Path) -> BlobInfo:
        final, temp, out = self._begin(key)
        try:
            digest = hashlib.sha256()
            size = 0
            with path.open("rb") as src:
                while chunk := src.read(_COPY_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            return self._commit(key, final, temp, out, size, digest.hexdigest())
        except BaseException:
            out.close()
            temp.unlink(missing_ok=True)
            raise

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes] | Iterator[bytes], max_bytes: int
    ) -> BlobInfo:
        final, temp, out = self._begin(key)
        digest = hashlib.sha256()
        size = 0

        def add(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"blob {key!r} is larger than {max_bytes} bytes; "
                    "store less data or raise the size limit"
                )
            digest.update(chunk)
            out.write(chunk)

        try:
            if isinstance(chunks, AsyncIterator):
                async for chunk in chunks:
                    add(chunk)
            else:
                for chunk in chunks:
                    add(chunk)
            return self._commit(key, final, temp, out, size, digest.hexdigest())
        except BaseException:
            out.close()
            temp.unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"blob {key!r} not found") from None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
