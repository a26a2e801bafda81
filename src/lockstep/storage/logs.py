"""The step log store: one append-only text file per step attempt.

Each line is ``<UTC timestamp> <o|e|s> <text>``, written with one unbuffered ``os.write`` per
line (or per batch of whole lines), so a writer killed with SIGKILL loses nothing it returned
from and readers never see a line that is still being written. Readers page through a log by
byte offset, which lets an API or the CLI resume a live tail exactly where it stopped.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from lockstep.clock import format_ts
from lockstep.errors import InvalidRequest

LogStream = Literal["out", "err", "sys"]

_STREAM_CODE: dict[str, str] = {"out": "o", "err": "e", "sys": "s"}
_CODE_STREAM: dict[str, str] = {v: k for k, v in _STREAM_CODE.items()}
_SEGMENT = re.compile(r"[A-Za-z0-9_.\[\]-]+")  # [ ]: fan-out items, step[i]
_MAX_KEY_CHARS = 512
_READ_CHUNK = 64 * 1024
#: longer texts are stored as several lines, which bounds what a reader must hold for one line
MAX_LINE_CHARS = 256 * 1024
_MAX_LINE_BYTES = 4 * MAX_LINE_CHARS + 64
#: a page stops after this many bytes even when ``limit`` lines were not reached, so one read
#: of a log full of 64 KiB lines cannot pull hundreds of MB into memory
DEFAULT_PAGE_BYTES = 4 * 1024 * 1024
#: how far back from its end a tail looks (a step that printed megabytes after its last
#: stderr line has no stderr tail: a summary never reads a whole log)
TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class LogLine:
    ts: str  # as stored, e.g. 2024-05-01T12:00:00.123456Z; "" for a malformed line
    stream: str  # "out", "err" or "sys"
    text: str
    offset: int  # byte offset of this line in the log; resume from here to re-read it


@dataclass(frozen=True)
class LogPage:
    lines: list[LogLine]
    next_offset: int  # pass back as ``offset`` to continue after the last returned line
    exists: bool
    #: the read reached the end of what is written (not stopped by ``limit`` or the byte cap)
    at_end: bool = True


class LogWriter(Protocol):
    def write(self, stream: LogStream, text: str, ts: datetime | None = None) -> int:
        """Append one line; returns the bytes appended."""
        ...

    def write_many(self, lines: Iterable[tuple[LogStream, str]], ts: datetime | None = None) -> int:
        """Append several lines, all stamped ``ts``, in one write; returns the bytes appended."""
        ...

    def write_text(self, stream: LogStream, text: str, ts: datetime | None = None) -> int:
        """Append each '\n'-separated line of ``text`` as a line of ``stream``, in one write.

        The fast path for bulk output: the same result as ``write_many`` over the lines."""
        ...

    def close(self) -> None: ...


class LogSink(Protocol):
    """Where a worker writes step logs (a directory, or the server's API)."""

    def writer(self, key: str) -> LogWriter: ...


class LogStore(LogSink, Protocol):
    def writer(self, key: str) -> LogWriter: ...

    def read(
        self, key: str, offset: int = 0, limit: int = 1000, max_bytes: int = DEFAULT_PAGE_BYTES
    ) -> LogPage: ...

    def size(self, key: str) -> int: ...

    def tail(
        self, key: str, stream: LogStream, lines: int, max_bytes: int = TAIL_BYTES
    ) -> list[str]:
        """The last ``lines`` texts of ``stream`` among the log's last ``max_bytes``."""
        ...

    def delete_run(self, run_id: str) -> None: ...


def _clean(text: str) -> str:
    # A raw newline would split one logical line into two stored ones (and let a step forge a
    # line with another stream's prefix), so line breaks inside a line are escaped.
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    return text


def _pieces(text: str) -> Iterable[str]:
    if len(text) <= MAX_LINE_CHARS:
        yield text
        return
    for start in range(0, len(text), MAX_LINE_CHARS):
        yield text[start : start + MAX_LINE_CHARS]


def _check_segment(segment: str, what: str, key: str) -> None:
    if segment in (".", "..") or not _SEGMENT.fullmatch(segment):
        raise InvalidRequest(
            f"invalid {what} {key[:200]!r}: each '/'-separated part must be letters, digits, "
            "'_', '.', '-', '[' or ']' (and not '.' or '..')"
        )


def validate_key(key: str) -> list[str]:
    """Split a log key ``run_id/step_id/attempt`` into checked segments."""
    if not key or len(key) > _MAX_KEY_CHARS:
        raise InvalidRequest(f"invalid log key {key[:200]!r}: must be 1-{_MAX_KEY_CHARS} chars")
    segments = key.split("/")
    for segment in segments:
        _check_segment(segment, "log key", key)
    return segments


class _FileLogWriter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND makes every write land at the end even if two writers share the file.
        self._fd: int | None = os.open(
            path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        # A writer killed mid-write can leave a torn last line; end it so our first line is
        # not glued onto it.
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            self._append(b"\n")

    def write(self, stream: LogStream, text: str, ts: datetime | None = None) -> int:
        return self.write_many(((stream, text),), ts)

    def write_many(self, lines: Iterable[tuple[LogStream, str]], ts: datetime | None = None) -> int:
        stamp = format_ts(ts)
        parts: list[str] = []
        # A plain loop: this runs once per line of step output, so it is the hot path.
        for stream, text in lines:
            head = f"{stamp} {_STREAM_CODE[stream]} "
            text = _clean(text)
            if len(text) <= MAX_LINE_CHARS:
                parts.append(f"{head}{text}\n")
            else:
                parts.extend(f"{head}{piece}\n" for piece in _pieces(text))
        return self._append("".join(parts).encode("utf-8", errors="replace"))

    def write_text(self, stream: LogStream, text: str, ts: datetime | None = None) -> int:
        if "\r" in text:
            text = text.replace("\r", "\\r")
        if len(text) > MAX_LINE_CHARS and max(map(len, text.split("\n"))) > MAX_LINE_CHARS:
            return self.write_many(((stream, line) for line in text.split("\n")), ts)
        # One C-level replace instead of a Python loop over lines: ~10x the throughput.
        head = f"{format_ts(ts)} {_STREAM_CODE[stream]} "
        data = head + text.replace("\n", "\n" + head) + "\n"
        return self._append(data.encode("utf-8", errors="replace"))

    def _append(self, data: bytes) -> int:
        if not data:
            return 0
        fd = self._fd
        if fd is None:
            raise RuntimeError("log writer is closed")
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        return len(data)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> _FileLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(raw: bytes, offset: int) -> LogLine:
    text = raw.decode("utf-8", errors="replace")
    ts, _, rest = text.partition(" ")
    code, _, body = rest.partition(" ")
    stream = _CODE_STREAM.get(code)
    if stream is None or not ts.endswith("Z"):
        # A torn write followed by a later append can merge two lines; show it rather than
        # hide it, attributed to the system stream.
        return LogLine(ts="", stream="sys", text=text, offset=offset)
    return LogLine(ts=ts, stream=stream, text=body, offset=offset)


class DirectoryLogStore:
    """Logs as files under ``root``: key ``run/step/2`` is ``root/run/step/2.log``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        segments = validate_key(key)
        return self.root.joinpath(*segments[:-1], segments[-1] + ".log")

    def writer(self, key: str) -> _FileLogWriter:
        return _FileLogWriter(self._path(key))

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return 0

    def tail(
        self, key: str, stream: LogStream, lines: int, max_bytes: int = TAIL_BYTES
    ) -> list[str]:
        try:
            f = self._path(key).open("rb")
        except FileNotFoundError:
            return []
        with f:
            start = max(f.seek(0, os.SEEK_END) - max_bytes - 1, 0)
            f.seek(start)
            data = f.read(max_bytes + 1)
        pieces = data.split(b"\n")[:-1]  # the last piece is empty or a line still being written
        if start > 0 and pieces:
            pieces = pieces[1:]  # a line that began before the window (or the byte before it)
        texts = [p.text for raw in pieces if (p := _parse(raw, 0)).stream == stream and p.ts]
        return texts[-lines:] if lines > 0 else []

    def read(
        self, key: str, offset: int = 0, limit: int = 1000, max_bytes: int = DEFAULT_PAGE_BYTES
    ) -> LogPage:
        if offset < 0:
            raise InvalidRequest(f"log offset {offset} is negative; start from 0")
        if limit < 1:
            raise InvalidRequest(f"log limit {limit} must be at least 1")
        path = self._path(key)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            return LogPage(lines=[], next_offset=offset, exists=False)
        with f:
            if offset > 0:
                f.seek(offset - 1)
                before = f.read(1)
                if before and before != b"\n":
                    raise InvalidRequest(
                        f"log offset {offset} is not at the start of a line; "
                        "use next_offset from a previous page"
                    )
                if not before:  # past the end: nothing yet, keep the caller's position
                    return LogPage(lines=[], next_offset=offset, exists=True)
            return self._read_lines(f, offset, limit, max_bytes)

    @staticmethod
    def _read_lines(f: BinaryIO, offset: int, limit: int, max_bytes: int) -> LogPage:
        lines: list[LogLine] = []
        pos = offset
        used = 0
        pending = b""
        at_end = False
        while len(lines) < limit and used < max_bytes:
            chunk = f.read(_READ_CHUNK)
            if not chunk:
                at_end = True  # an unterminated tail is a line still being written: leave it
                break
            pending += chunk
            end = pending.rfind(b"\n")
            if end < 0:
                if len(pending) > _MAX_LINE_BYTES:
                    # No writer produces a line this long, so this is damage (e.g. a torn
                    # write followed by garbage): surface it in bounded pieces.
                    lines.append(_parse(pending, pos))
                    used += len(pending)
                    pos += len(pending)
                    pending = b""
                continue
            consumed = 0
            for raw in pending[:end].split(b"\n"):
                if len(lines) >= limit or used >= max_bytes:
                    break
                lines.append(_parse(raw, pos))
                size = len(raw) + 1
                pos += size
                used += size
                consumed += size
            pending = pending[consumed:]
        return LogPage(lines=lines, next_offset=pos, exists=True, at_end=at_end)

    def delete_run(self, run_id: str) -> None:
        _check_segment(run_id, "run id", run_id)
        shutil.rmtree(self.root / run_id, ignore_errors=True)
        (self.root / f"{run_id}.log").unlink(missing_ok=True)
