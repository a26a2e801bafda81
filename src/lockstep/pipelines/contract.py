"""The node process contract, both directions, and a bounded line reader.

A node's program reads records on stdin, one JSON object a line: ``{"id": "…", "data": …}``.
It writes JSON lines on stdout: ``{"emit": {"to": "<output>", "data": …}}`` sends ``data`` on
an output, ``{"ack": "<id>"}`` says the input record ``id`` is finished with (it is then
acknowledged upstream, after everything emitted before the ack is safely published). Anything
else on stdout is a malformed line: counted and logged, never fatal. stderr is the node's log.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

#: a stdout line (one emitted record) longer than this is refused as malformed
MAX_LINE_BYTES = 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Emit:
    to: str
    payload: bytes  # the record's ``data``, as compact JSON


@dataclass(frozen=True)
class Ack:
    id: str


@dataclass(frozen=True)
class Malformed:
    reason: str


Message = Emit | Ack | Malformed


def encode_input(record_id: str, payload: bytes) -> bytes:
    """The stdin line for one record; ``payload`` is the record's JSON ``data``."""
    return b'{"id":' + json.dumps(record_id).encode() + b',"data":' + payload + b"}\n"


def encode_data(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def clean_payload(payload: bytes) -> bytes | None:
    """``payload`` as one line of JSON, or None when it is not JSON at all. A channel fed by
    something else than a runner could hold anything: it must not break the stdin framing."""
    if b"\n" not in payload and b"\r" not in payload and payload[:1] not in (b"", b" "):
        return payload
    try:
        return encode_data(json.loads(payload))
    except ValueError:
        return None


def parse_output(line: bytes) -> Message:
    """One stdout line of a node program."""
    try:
        obj = json.loads(line)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError both
        return Malformed("not JSON")
    if not isinstance(obj, dict) or len(obj) != 1:
        return Malformed('not an object with exactly one of "emit" or "ack"')
    if "ack" in obj:
        return Ack(obj["ack"]) if isinstance(obj["ack"], str) else Malformed("ack is not a string")
    emit = obj.get("emit")
    if not isinstance(emit, dict) or set(emit) != {"to", "data"} or not isinstance(emit["to"], str):
        return Malformed('emit is not {"to": "<output>", "data": …}')
    return Emit(emit["to"], encode_data(emit["data"]))


class _Readable(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


async def read_lines(
    reader: _Readable, max_bytes: int = MAX_LINE_BYTES
) -> AsyncIterator[list[bytes | None]]:
    """The complete lines available, batch by batch as the reader delivers them (a batch is a
    natural point to commit). A line longer than ``max_bytes`` comes out as ``None`` and is
    skipped up to its end without being held in memory; a last line without a newline counts."""
    buffer = b""
    oversized = False
    while chunk := await reader.read(_CHUNK):
        batch: list[bytes | None] = []
        *whole, rest = (buffer + chunk).split(b"\n")
        for line in whole:
            if oversized:
                oversized = False
                batch.append(None)
            elif len(line) > max_bytes:
                batch.append(None)
            else:
                batch.append(line)
        buffer = rest
        if len(buffer) > max_bytes:
            oversized, buffer = True, b""
        elif oversized:
            buffer = b""
        if batch:
            yield batch
    if oversized:
        yield [None]
    elif buffer.strip():
        yield [buffer]
