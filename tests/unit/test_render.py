"""What the CLI prints of a step's text: never a raw control character."""

from __future__ import annotations

import pytest

from lockstep.cli.output import visible


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
