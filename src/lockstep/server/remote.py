"""A worker on another host: everything it would read from the server's disk or database, it
asks the server's API for (``/api/v1/worker/…``) — reports, secrets, snapshots and logs.

Log lines are buffered and shipped by a background thread, so a slow or briefly unreachable
server never blocks the step (or its heartbeats); a line counts as stored once the server
acknowledged its batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from lockstep.clock import format_ts
from lockstep.errors import ExecutionError
from lockstep.records import WorkerReport
from lockstep.storage.blobs import BlobInfo
from lockstep.storage.logs import LogStream

log = logging.getLogger(__name__)
#: a writer ships what it has this often, or sooner when a batch is full
FLUSH_EVERY_S = 0.25
BATCH_LINES = 2000
#: a batch's lines as JSON stay under this: well below the server's 1 MiB request limit, and
#: one line (at most 64 KiB, 6 bytes a character when escaped) always fits
BATCH_BYTES = 512 * 1024
#: beyond this many unshipped bytes a writer waits for the shipper (bounded memory)
MAX_PENDING_BYTES = 4 * 1024 * 1024
#: how long closing a writer waits for its last lines to be acknowledged
CLOSE_WAIT_S = 30.0


class RemoteError(ExecutionError):
    """The server refused or could not be reached."""


class RemoteServer:
    """The server's worker API, with an administrator's token."""

    def __init__(self, url: str, token: str | None, *, timeout_s: float = 30) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1/worker", headers=headers, timeout=timeout_s
        )

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"server {self.url} is unreachable: {exc}") from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise RemoteError(f"server {self.url} refused {path}: {str(detail)[:300]}")
        return resp.json() if resp.content else None

    def config(self) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", "/config")
        return data

    async def report(self, report: WorkerReport) -> None:
        body = {k: getattr(report, k) for k in report.__dataclass_fields__}
        await asyncio.to_thread(self.call, "POST", "/report", json=body)

    async def secrets(self, project: str, names: list[str], run_id: str) -> dict[str, str]:
        body = {"project": project, "names": names, "run_id": run_id}
        data = await asyncio.to_thread(self.call, "POST", "/secrets", json=body)
        return {str(k): str(v) for k, v in data["values"].items()}

    def blobs(self) -> RemoteBlobs:
        return RemoteBlobs(self)

    def logs(self) -> RemoteLogs:
        return RemoteLogs(self)


class RemoteBlobs:
    """Workspace snapshots, downloaded when a worker first needs one (it caches the tree)."""

    def __init__(self, server: RemoteServer) -> None:
        self._server = server

    def open(self, key: str) -> BinaryIO:
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller, who closes it
        try:
            with self._server._http.stream("GET", "/blobs", params={"key": key}) as resp:
                if resp.status_code != 200:
                    raise RemoteError(f"snapshot {key!r} is not available from the server")
                for chunk in resp.iter_bytes():
                    spool.write(chunk)
        except httpx.HTTPError as exc:
            spool.close()
            raise RemoteError(f"server {self._server.url} is unreachable: {exc}") from None
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    def exists(self, key: str) -> bool:
        return True  # asked of the server when opened

    def put_file(self, key: str, path: Path) -> BlobInfo:
        """Stream an artifact to the server's store."""
        with path.open("rb") as f:
            data = self._server.call(
                "PUT",
                "/blobs",
                params={"key": key},
                content=iter(lambda: f.read(1024 * 1024), b""),
                timeout=None,
            )
        return BlobInfo(key=data["key"], size=int(data["size"]), sha256=str(data["sha256"]))

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes] | Iterator[bytes], max_bytes: int
    ) -> BlobInfo:
        raise RemoteError("a remote worker does not store blobs")

    def delete(self, key: str) -> None:
        raise RemoteError("a remote worker does not delete blobs")


class RemoteLogs:
    def __init__(self, server: RemoteServer) -> None:
        self._server = server

    def writer(self, key: str) -> RemoteLogWriter:
        return RemoteLogWriter(self._server, key)


class RemoteLogWriter:
    """Buffers lines and ships them in batches from a daemon thread."""

    def __init__(self, server: RemoteServer, key: str) -> None:
        self._server, self._key = server, key
        self._pending: list[tuple[str, str, str]] = []
        self._sizes: list[int] = []  # each pending line's size as JSON
        self._pending_bytes = 0
        self._cond = threading.Condition()
        self._closing = False
        self.lost = 0  # lines the server never acknowledged
        self._thread = threading.Thread(target=self._ship, name="log-shipper", daemon=True)
        self._thread.start()

    def write(self, stream: LogStream, text: str, ts: datetime | None = None) -> int:
        return self.write_many([(stream, text)], ts)

    def write_many(self, lines: Iterable[tuple[LogStream, str]], ts: datetime | None = None) -> int:
        stamp = format_ts(ts)
        batch = [(stamp, stream, text) for stream, text in lines]
        sizes = [len(json.dumps(line)) + 2 for line in batch]
        with self._cond:
            while self._pending_bytes >= MAX_PENDING_BYTES and not self._closing:
                self._cond.wait(1.0)
            self._pending.extend(batch)
            self._sizes.extend(sizes)
            self._pending_bytes += sum(sizes)
            if len(self._pending) >= BATCH_LINES or self._pending_bytes >= BATCH_BYTES:
                self._cond.notify_all()
        return sum(len(text.encode()) + 1 for _, _, text in batch)

    def write_text(self, stream: LogStream, text: str, ts: datetime | None = None) -> int:
        return self.write_many([(stream, line) for line in text.split("\n")], ts)

    def _ship(self) -> None:
        while True:
            with self._cond:
                if not self._pending and not self._closing:
                    self._cond.wait(FLUSH_EVERY_S)
                n = self._batch_end()
                batch, self._pending = self._pending[:n], self._pending[n:]
                self._pending_bytes -= sum(self._sizes[:n])
                del self._sizes[:n]
                done = self._closing and not batch and not self._pending
                self._cond.notify_all()
            if done:
                return
            if batch:
                self._send(batch)

    def _batch_end(self) -> int:
        """How many pending lines the next batch takes: up to ``BATCH_LINES`` lines and
        ``BATCH_BYTES`` bytes, and at least one."""
        total = 0
        for n, size in enumerate(self._sizes[:BATCH_LINES]):
            total += size
            if total > BATCH_BYTES:
                return max(n, 1)
        return min(len(self._sizes), BATCH_LINES)

    def _send(self, batch: list[tuple[str, str, str]]) -> None:
        for delay in (0.0, 0.5, 1.0, 2.0, 4.0):
            if delay:
                threading.Event().wait(delay)
            try:
                self._server.call("POST", "/logs", json={"key": self._key, "lines": batch})
                return
            except RemoteError as exc:
                last = exc
        self.lost += len(batch)
        log.warning("worker.log_lines_lost", extra={"key": self._key, "reason": str(last)})

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(CLOSE_WAIT_S)
        if self._thread.is_alive():
            log.warning("worker.log_close_timeout", extra={"key": self._key})
