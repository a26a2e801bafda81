"""``landing``: records landed as files in the artifact store, with a manifest, each file taken
by exactly one consumer replica, durably.

Under ``landing/<edge>/`` in the store:

- ``files/<publisher>-<token>.jsonl``: one landed file, a record a line;
- ``manifest/<seq>.json``: the manifest, one entry per file (``file``, ``records``), numbered
  without gaps; an entry is written after its file, with an exclusive create (two publishers
  never get one number), so an entry always names a whole file;
- ``claims/<seq>.json``: which consumer replica took the file (exclusive create: one owner);
- ``progress/<seq>.json``: the lines its owner has acked (ranges), written as it goes;
- ``done/<seq>.json``: every line acked; the file is never handed out again.

A replica that restarts (same node and replica name) resumes only the files it claimed and did
not finish, skipping the lines its progress says were acked; a finished file is never taken
again. Lines acked after the last progress write (at most ``progress_every_s``) are handed again
after a crash: at-least-once within an interrupted file, exactly once per file.

Exclusive create needs a store that can refuse an existing key: the directory store now.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from lockstep.errors import ConfigError, NotFound
from lockstep.pipelines.model import Edge
from lockstep.storage.blobs import BlobStore, DirectoryBlobStore

#: a landed file holds at most this many records (more are landed as further files)
MAX_FILE_RECORDS = 10_000
MAX_FILE_BYTES = 256 * 1024 * 1024
_POLL_S = 0.1


def _key(edge: Edge, part: str, seq: int) -> str:
    return f"landing/{edge.name}/{part}/{seq:012d}.json"


def _create_new(store: BlobStore, key: str, data: bytes) -> bool:
    """Write ``key`` only if it does not exist yet; whether this call wrote it."""
    if not isinstance(store, DirectoryBlobStore):
        raise ConfigError(
            "the landing delivery class needs a directory artifact store for now "
            "(exclusive create on S3 is not built yet); use a local LOCKSTEP_HOME store"
        )
    final = store.path(key)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f"{final.name}~{secrets.token_hex(8)}.tmp")
    with temp.open("xb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temp, final)  # atomic, and refuses an existing name
        return True
    except FileExistsError:
        return False
    finally:
        temp.unlink()


def _read_json(store: BlobStore, key: str) -> dict[str, object] | None:
    try:
        with store.open(key) as f:
            value = json.loads(f.read())
    except NotFound:
        return None
    return value if isinstance(value, dict) else None


async def _put(store: BlobStore, key: str, data: bytes) -> None:
    await store.put_stream(key, iter([data]), max_bytes=MAX_FILE_BYTES)


class LandingPublisher:
    def __init__(self, store: BlobStore, edge: Edge, replica: str) -> None:
        self._store = store
        self._edge = edge
        self._name = f"{edge.source}-{replica}"
        self._buffer: list[bytes] = []
        self._next_seq = 0  # where to look for a free manifest number

    async def publish(self, payload: bytes) -> None:
        self._buffer.append(payload)
        if len(self._buffer) >= MAX_FILE_RECORDS:
            await self.flush()

    async def flush(self) -> None:
        """Land what was published since the last flush as one file, then its entry."""
        if not self._buffer:
            return
        records, self._buffer = self._buffer, []
        file_key = f"landing/{self._edge.name}/files/{self._name}-{secrets.token_hex(8)}.jsonl"
        await _put(self._store, file_key, b"\n".join(records) + b"\n")
        entry = json.dumps({"file": file_key, "records": len(records)}).encode()
        while not await asyncio.to_thread(
            _create_new, self._store, _key(self._edge, "manifest", self._next_seq), entry
        ):
            self._next_seq += 1
        self._next_seq += 1

    async def close(self) -> None:
        await self.flush()


@dataclass
class _File:
    seq: int
    lines: list[bytes]
    acked: set[int] = field(default_factory=set)
    dirty: bool = False


class _LandingDelivery:
    def __init__(self, consumer: LandingConsumer, file: _File, line: int) -> None:
        self._consumer = consumer
        self._file = file
        self._line = line
        self.payload = file.lines[line]

    async def ack(self) -> None:
        await self._consumer.acked(self._file, self._line)

    async def nak(self) -> None:
        self._consumer.queue.appendleft(self)


def _ranges(lines: set[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for n in sorted(lines):
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def _unranged(ranges: object) -> Iterator[int]:
    if isinstance(ranges, list):
        for pair in ranges:
            if isinstance(pair, list) and len(pair) == 2:
                yield from range(int(pair[0]), int(pair[1]) + 1)


class LandingConsumer:
    def __init__(
        self, store: BlobStore, edge: Edge, replica: str, progress_every_s: float = 0.2
    ) -> None:
        self._store = store
        self._edge = edge
        self._owner = f"{edge.target}/{replica}"
        self._cursor = 0  # every entry below is finished or another replica's
        self._files: dict[int, _File] = {}
        self.queue: deque[_LandingDelivery] = deque()
        self._progress_every_s = progress_every_s
        self._last_progress = 0.0

    async def fetch(self, max_records: int, timeout_s: float) -> Sequence[_LandingDelivery]:
        await self._save_progress(force=False)
        if not self.queue:
            await asyncio.to_thread(self._take_next)
        if not self.queue:
            await asyncio.sleep(min(timeout_s, _POLL_S))
            return []
        return [self.queue.popleft() for _ in range(min(max_records, len(self.queue)))]

    def _take_next(self) -> None:
        store, edge = self._store, self._edge
        seq = self._cursor
        while store.exists(_key(edge, "manifest", seq)):
            if seq in self._files:
                seq += 1
                continue
            finished = store.exists(_key(edge, "done", seq))
            claim = None if finished else _read_json(store, _key(edge, "claims", seq))
            mine = claim is not None and claim.get("owner") == self._owner
            if claim is None and not finished:
                mine = _create_new(
                    store, _key(edge, "claims", seq), json.dumps({"owner": self._owner}).encode()
                )
            if not mine:
                if seq == self._cursor:
                    self._cursor += 1
                seq += 1
                continue
            self._open(seq)
            return

    def _open(self, seq: int) -> None:
        entry = _read_json(self._store, _key(self._edge, "manifest", seq)) or {}
        with self._store.open(str(entry.get("file", ""))) as f:
            lines = f.read().split(b"\n")[:-1]
        progress = _read_json(self._store, _key(self._edge, "progress", seq)) or {}
        file = _File(seq, lines, set(_unranged(progress.get("acked"))))
        self._files[seq] = file
        for n in range(len(lines)):
            if n not in file.acked:
                self.queue.append(_LandingDelivery(self, file, n))
        if len(file.acked) >= len(lines):
            self._finish(file)

    async def acked(self, file: _File, line: int) -> None:
        file.acked.add(line)
        file.dirty = True
        if len(file.acked) >= len(file.lines):
            await asyncio.to_thread(self._finish, file)

    def _finish(self, file: _File) -> None:
        _create_new(self._store, _key(self._edge, "done", file.seq), b"{}")
        self._store.delete(_key(self._edge, "progress", file.seq))
        self._files.pop(file.seq, None)

    async def _save_progress(self, force: bool) -> None:
        now = asyncio.get_running_loop().time()
        if not force and now - self._last_progress < self._progress_every_s:
            return
        self._last_progress = now
        for file in list(self._files.values()):
            if file.dirty:
                file.dirty = False
                data = json.dumps({"acked": _ranges(file.acked)}).encode()
                await _put(self._store, _key(self._edge, "progress", file.seq), data)

    async def backlog(self) -> int:
        """Records of files taken and not yet acked, plus those of files nobody took yet."""
        waiting = sum(len(f.lines) - len(f.acked) for f in self._files.values())

        def untaken() -> int:
            count, seq = 0, self._cursor
            while (entry := _read_json(self._store, _key(self._edge, "manifest", seq))) is not None:
                if not self._store.exists(_key(self._edge, "claims", seq)):
                    records = entry.get("records")
                    count += records if isinstance(records, int) else 0
                seq += 1
            return count

        return waiting + await asyncio.to_thread(untaken)

    async def close(self) -> None:
        await self._save_progress(force=True)
