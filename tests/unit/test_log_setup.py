"""The server's and workers' own log: one event a line with its fields, as text or JSON, with
a step's control characters never reaching the terminal raw."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from lockstep.server import log_setup


@pytest.fixture
def restored() -> Iterator[None]:
    root = logging.getLogger("lockstep")
    handlers, level, propagate = root.handlers[:], root.level, root.propagate
    yield
    root.handlers[:], root.propagate = handlers, propagate
    root.setLevel(level)


def test_json_lines_carry_the_event_its_fields_and_an_error_in_one_line(
    restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log_setup.configure("json", "info")
    log = logging.getLogger("lockstep.worker.test")
    log.info("worker.reaped_containers", extra={"count": 2, "pool": "gpu"})
    log.debug("worker.chatter")  # below the level
    try:
        raise OSError("disk full\nreally")
    except OSError:
        log.exception("step.internal_error", extra={"run_id": "r1"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert (first["event"], first["level"], first["count"], first["pool"]) == (
        "worker.reaped_containers",
        "info",
        2,
        "gpu",
    )
    assert first["logger"] == "lockstep.worker.test" and first["ts"].endswith("Z")
    assert second["event"] == "step.internal_error" and second["run_id"] == "r1"
    assert second["error"] == "OSError: disk full\nreally"  # escaped inside the JSON line


def test_text_lines_escape_control_characters(
    restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log_setup.configure("text", "warning")
    logging.getLogger("lockstep.x").warning("child.log_failed", extra={"error": "\x1b[31mred"})
    logging.getLogger("lockstep.x").warning("odd\x1b]0;title\x07event")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    first, second = err.splitlines()
    assert first == 'WARNING child.log_failed error="\\u001b[31mred"'
    assert second == "WARNING odd\\x1b]0;title\\x07event"
