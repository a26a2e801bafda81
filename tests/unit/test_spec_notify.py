"""``notify:`` in workflow.yaml: one rule or a list, short or full event names, and an
unknown event reported where it was written with a did-you-mean."""

from __future__ import annotations

import pytest

from lockstep.errors import SpecError
from lockstep.spec.load import load_spec
from lockstep.spec.notify import rules

BASE = "name: w\nsteps:\n  a:\n    run: 'true'\n"


@pytest.mark.parametrize(
    ("notify", "expected"),
    [
        ("notify: {on: [failed], channel: ops}\n", [(["failed"], "ops")]),
        (
            "notify:\n  - {on: [succeeded, run.cancelled], channel: ops}\n"
            "  - {on: [approval.requested], channel: chat}\n",
            [(["succeeded", "run.cancelled"], "ops"), (["approval.requested"], "chat")],
        ),
    ],
)
def test_one_rule_or_a_list_of_rules(notify: str, expected: list[tuple[list[str], str]]) -> None:
    spec = load_spec(BASE + notify, "workflow.yaml").spec
    assert [(r.on, r.channel) for r in rules(spec.notify)] == expected


def test_an_unknown_event_is_refused_at_its_position_with_did_you_mean() -> None:
    text = BASE + "notify:\n  on: [failed, succeded]\n  channel: ops\n"
    with pytest.raises(SpecError) as refused:
        load_spec(text, "workflow.yaml")
    assert str(refused.value) == (
        "workflow.yaml:6:16: notify: unknown event 'succeded'; did you mean 'succeeded'?"
    )
