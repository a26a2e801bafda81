"""The node process contract: what a program's stdout lines mean, and the bounded reader."""

from __future__ import annotations

import asyncio
import json

import pytest

from lockstep.pipelines.contract import (
    Ack,
    Emit,
    Malformed,
    clean_payload,
    encode_input,
    parse_output,
    read_lines,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"emit": {"to": "out", "data": {"a": 1}}}', Emit("out", b'{"a":1}')),
        (b'{"ack": "7"}', Ack("7")),
        (b"not json", Malformed("not JSON")),
        (b"\xff\xfe", Malformed("not JSON")),
        (b"[1]", Malformed('not an object with exactly one of "emit" or "ack"')),
        (b'{"ack": 7}', Malformed("ack is not a string")),
        (b'{"emit": {"to": 1, "data": 2}}', Malformed('emit is not {"to": "<output>", "data": …}')),
        (b'{"emit": {"to": "o"}}', Malformed('emit is not {"to": "<output>", "data": …}')),
        (
            b'{"ack": "1", "emit": {}}',
            Malformed('not an object with exactly one of "emit" or "ack"'),
        ),
    ],
)
def test_output_lines(line: bytes, expected: object) -> None:
    assert parse_output(line) == expected


def test_input_line_is_one_json_line_whatever_the_payload() -> None:
    payload = clean_payload(b'{"text": "a\nb"}'.replace(b"a\nb", b"a\\nb"))
    assert payload is not None
    line = encode_input('id"\n', payload)
    assert line.count(b"\n") == 1
    assert json.loads(line) == {"id": 'id"\n', "data": {"text": "a\nb"}}
    # a channel fed by something else: raw newlines re-encoded, non-JSON refused
    assert clean_payload(b'{"a":\n1}') == b'{"a":1}'
    assert clean_payload(b"\x00garbage\n") is None


class _Chunks:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def read(self, n: int = -1) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def test_oversized_lines_are_skipped_without_being_kept() -> None:
    async def collect() -> list[bytes | None]:
        reader = _Chunks([b"ok1\n" + b"x" * 50, b"x" * 50, b"x\nok2\npart", b"ial"])
        return [line async for batch in read_lines(reader, max_bytes=40) for line in batch]

    assert asyncio.run(collect()) == [b"ok1", None, b"ok2", b"partial"]
