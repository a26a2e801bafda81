"""The blob store as the API reaches it: workspace snapshots, artifacts and outputs stored by
reference, streamed in and out (never held in memory whole).

A narrower face than ``storage.blobs.BlobStore``: the API stores and reads blobs by key and
never deletes one. Which keys a caller may use is decided by the routes (and, for a run's
blobs, by ``RunService``), never by the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from lockstep.storage.blobs import BlobInfo


class Blobs(Protocol):
    def put_file(self, key: str, path: Path) -> BlobInfo: ...

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes] | Iterator[bytes], max_bytes: int
    ) -> BlobInfo: ...

    def exists(self, key: str) -> bool: ...

    def open(self, key: str) -> BinaryIO: ...
