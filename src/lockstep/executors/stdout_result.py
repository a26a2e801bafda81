"""A step's result taken from what it prints on stdout (``result: json`` or ``result: text``),
as Argo's ``outputs.result``: the value becomes the step's output ``result``.

The executors hand every piece of stdout they read to a ``StdoutCapture`` (next to the log,
which still shows it all); the capture keeps at most its limit plus one byte, so a step that
prints gigabytes costs no memory and is known to be over the limit. What it printed is data:
control characters stay in the value as they are (JSON escapes them), nothing interprets them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from lockstep.executors.outputs import DEFAULT_MAX_BYTES, human_size
from lockstep.spec.contracts import OutputError
from lockstep.spec.typed_text import loads_json

ResultMode = Literal["json", "text"]
#: the output that holds the result
RESULT_KEY = "result"


class StdoutCapture:
    """The first ``max_bytes`` (+1, to know it was more) bytes of a step's stdout."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> None:
        room = self.max_bytes + 1 - self._size
        if room > 0 and data:
            piece = data[:room]
            self._chunks.append(piece)
            self._size += len(piece)

    @property
    def too_big(self) -> bool:
        return self._size > self.max_bytes

    def data(self) -> bytes:
        return b"".join(self._chunks)


def stdout_result(capture: StdoutCapture, mode: str, *, step: str) -> Any:
    """The step's result from its captured stdout; ``OutputError`` in one line when it is too
    big, not UTF-8, or (``json``) not one JSON value."""
    what = f"step {step!r} declares 'result: {mode}' and"
    if capture.too_big:
        raise OutputError(
            f"{what} printed more than {human_size(capture.max_bytes)} on stdout; print less, "
            "or write large results to a file and declare it as an artifact",
            step=step,
        )
    try:
        text = capture.data().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OutputError(
            f"{what} its stdout is not UTF-8 (byte {exc.start}); print text only", step=step
        ) from None
    if mode == "text":
        return text.removesuffix("\n").removesuffix("\r")
    if not text.strip():
        raise OutputError(f"{what} printed nothing on stdout; print one JSON value", step=step)
    try:
        return loads_json(text)
    except json.JSONDecodeError as exc:
        raise OutputError(
            f"{what} its stdout is not JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); "
            "print one JSON value, and log to stderr",
            step=step,
        ) from None
    except ValueError:
        raise OutputError(
            f"{what} its stdout is not JSON (NaN, Infinity, a number out of range, or nested "
            "too deeply)",
            step=step,
        ) from None


def with_result(outputs: dict[str, Any], result: Any, *, step: str) -> dict[str, Any]:
    """``outputs`` with ``result`` added; a step that also wrote an output of that name to
    ``$LOCKSTEP_OUTPUTS`` fails (which one would win is a guess nobody should have to make)."""
    if RESULT_KEY in outputs:
        raise OutputError(
            f"step {step!r} declares 'result:' and also wrote an output '{RESULT_KEY}' to "
            "$LOCKSTEP_OUTPUTS; rename that output",
            step=step,
        )
    return {**outputs, RESULT_KEY: result}
