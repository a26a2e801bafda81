"""What the CLI prints of a step's text: never a raw control character."""

from __future__ import annotations

import pytest

from lockstep.cli.output import visible
from lockstep.cli.render import describe_cause, describe_decision
from lockstep.records import Cause, CauseKind, DecisionRecord


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, é and 漢字", "plain text, é and 漢字"),
        ("col\tumns", "col\tumns"),
        ("\x1b[2J clear screen", "\\x1b[2J clear screen"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("csi \x9b and del \x7f", "csi \\x9b and del \\x7f"),
        ("back\x08space and \r return", "back\\x08space and \\x0d return"),
        ("line\nbreak", "line\\x0abreak"),
        ("abc\u202edcba", "abc\\u202edcba"),  # a right-to-left override
        ("zero\u200bwidth", "zero\\u200bwidth"),
    ],
)
def test_control_characters_are_spelled_out(text: str, shown: str) -> None:
    assert visible(text) == shown


@pytest.mark.parametrize(
    ("cause", "line"),
    [
        (Cause.manual("alice"), "manual by alice"),
        (Cause.manual(None), "manual"),
        (Cause.repeat(CauseKind.RETRY, "r-1", "bob"), "retry of r-1 by bob"),
        (Cause.repeat(CauseKind.RERUN, "r-2", None), "rerun of r-2"),
        (
            Cause(kind=CauseKind.SCHEDULE, trigger="nightly", schedule_time="2026-03-01T02:00:00Z"),
            "schedule nightly at 2026-03-01T02:00:00Z",
        ),
        (  # a schedule fired by hand says who fired it
            Cause(kind=CauseKind.SCHEDULE, trigger="nightly", user="carol"),
            "schedule nightly by carol",
        ),
        (
            Cause(
                kind=CauseKind.WEBHOOK, trigger="hook", delivery="d-7", payload_digest="sha256:ab"
            ),
            "webhook hook delivery d-7 payload sha256:ab",
        ),
        (Cause(kind=CauseKind.GIT, trigger="main-push"), "git main-push"),
        (
            Cause(kind=CauseKind.UPSTREAM, trigger="after-build", upstream_run="r-9"),
            "upstream after-build after r-9",
        ),
        (Cause(kind=CauseKind.RESOURCE, trigger="live-moved"), "resource live-moved"),
        (Cause.manual("eve\x1b[2J"), "manual by eve\\x1b[2J"),  # never a raw control character
    ],
)
def test_a_cause_reads_as_one_line(cause: Cause, line: str) -> None:
    assert describe_cause(cause) == line


@pytest.mark.parametrize(
    ("decision", "line"),
    [
        (
            DecisionRecord(
                user="ann",
                approve=True,
                at="2026-03-01T02:00:00.000000Z",
                comment="canary first",
                input={"percent": 25, "zone": "eu"},
            ),
            'ann approved at 2026-03-01T02:00:00.000000Z: canary first; input {"percent": 25, '
            '"zone": "eu"}',
        ),
        (
            DecisionRecord(user="bob", approve=False, at="2026-03-01T03:00:00.000000Z"),
            "bob rejected at 2026-03-01T03:00:00.000000Z",
        ),
        (
            DecisionRecord(user="eve", approve=False, at="t", comment="no\x1b[2J\nway"),
            "eve rejected at t: no\\x1b[2J\\x0away",
        ),
    ],
)
def test_a_decision_reads_as_one_line(decision: DecisionRecord, line: str) -> None:
    assert describe_decision(decision) == line
