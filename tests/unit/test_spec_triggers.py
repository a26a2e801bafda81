"""``triggers:`` in workflow.yaml: schedule triggers accepted as written, and every bad field
refused at its file:line:col with the field named."""

from __future__ import annotations

import pytest

from lockstep.errors import SpecError
from lockstep.spec.cron import cron_problem, temporal_cron
from lockstep.spec.load import load_spec
from lockstep.spec.triggers import (
    ResourceTrigger,
    ScheduleTrigger,
    UpstreamTrigger,
    WebhookTrigger,
)

HEAD = """\
name: nightly
steps:
  build:
    run: echo ${{ params.when }}
params:
  type: object
  properties: {when: {type: string, default: x}}
triggers:
"""


def test_a_schedule_trigger_loads_with_its_fields() -> None:
    text = HEAD + (
        "  nightly:\n"
        "    cron: '30 2 * * mon-fri'\n"
        "    timezone: Europe/Paris\n"
        "    jitter: 30s\n"
        "    overlap: buffer_one\n"
        "    catchup_window: 1h\n"
        "    start_at: '2026-01-01T00:00:00+00:00'\n"
        "    params: {when: '${{ schedule.time }}'}\n"
        "  often:\n"
        "    every: 15m\n"
        "    enabled: false\n"
    )
    spec = load_spec(text, "w.yaml").spec
    nightly, often = spec.triggers["nightly"], spec.triggers["often"]
    assert isinstance(nightly, ScheduleTrigger) and isinstance(often, ScheduleTrigger)
    assert (nightly.cron, nightly.timezone, nightly.jitter) == (
        "30 2 * * mon-fri",
        "Europe/Paris",
        30,
    )
    assert (nightly.overlap, nightly.catchup_window) == ("buffer_one", 3600)
    assert nightly.params == {"when": "${{ schedule.time }}"}
    assert (often.every, often.enabled, often.overlap) == (900, False, "skip")


@pytest.mark.parametrize(
    ("body", "line", "says"),
    [
        (
            "    cron: '61 * * * *'\n",
            10,
            "cron of trigger 'nightly' minute field '61' is outside 0-59",
        ),
        ("    cron: '* * *'\n", 10, "cron of trigger 'nightly' has 3 fields"),
        ("    cron: '@sometimes'\n", 10, "is not one of @yearly"),
        (
            "    cron: '0 0 * * *'\n    timezone: Mars/Olympus\n",
            11,
            "timezone of trigger 'nightly'",
        ),
        ("    every: 1m\n    cron: '@daily'\n", 10, "has both 'cron' and 'every'"),
        ("    jitter: 1s\n", 9, "needs 'cron' or 'every'"),
        ("    every: 0s\n", 10, "'every' of trigger 'nightly' must be longer than 0"),
        ("    every: 1m\n    overlap: queue\n", 11, "overlap"),
        ("    every: 1m\n    catchup_window: 2s\n", 11, "catchup_window of trigger 'nightly'"),
        (
            "    every: 1m\n    start_at: '2026-02-01T00:00:00Z'\n    end_at: '2026-01-01T00:00:00Z'\n",
            12,
            "end_at of trigger 'nightly' is not after its start_at",
        ),
        (
            "    every: 1m\n    params: {when: '${{ steps.build.outputs.x }}'}\n",
            11,
            "may read only schedule.*",
        ),
    ],
)
def test_a_bad_schedule_field_is_refused_at_its_position(body: str, line: int, says: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(HEAD + "  nightly:\n" + body, "w.yaml")
    message = str(info.value)
    assert f"w.yaml:{line}:" in message and says in message, message


def test_a_bad_trigger_id_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        load_spec(HEAD + "  Bad_Id:\n    every: 1m\n", "w.yaml")
    assert "w.yaml:9:" in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("expression", "temporal"),
    [
        ("*/15 * * * *", "*/15 * * * *"),
        ("@hourly", "0 * * * *"),
        ("*/5 * * * * *", "*/5 * * * * * *"),  # seconds first: Temporal's 7-field form
        ("0 9 1-7 jan,jul sun", "0 9 1-7 jan,jul sun"),
    ],
)
def test_accepted_cron_is_spelled_for_temporal(expression: str, temporal: str) -> None:
    assert cron_problem(expression) == ""
    assert temporal_cron(expression) == temporal


EVENT_KINDS = (
    "  hook:\n    kind: webhook\n    secret: HOOK_KEY\n    delivery: X-GitHub-Delivery\n"
    "    filter: ${{ event.body.action == 'published' }}\n"
    "    params: {ref: '${{ event.body.ref }}'}\n"
    "  push:\n    kind: git\n    branches: [main, 'release/*']\n"
    "    params: {commit: '${{ git.commit }}'}\n"
    "  after-build:\n    kind: upstream\n    definition: build\n    status: [succeeded, failed]\n"
    "    params: {image: '${{ upstream.outputs.image }}'}\n"
    "  promoted:\n    kind: resource\n    tag: {definition: build, tag: $STAGING}\n"
    "    params: {version: '${{ resource.new }}'}\n"
)


def test_every_event_kind_parses_with_its_fields() -> None:
    spec = load_spec(HEAD + EVENT_KINDS, "w.yaml").spec
    kinds = {tid: t.kind for tid, t in spec.triggers.items()}
    assert kinds == {
        "hook": "webhook",
        "push": "git",
        "after-build": "upstream",
        "promoted": "resource",
    }
    hook = spec.triggers["hook"]
    assert isinstance(hook, WebhookTrigger) and hook.auth == "hmac" and hook.secret == "HOOK_KEY"
    upstream = spec.triggers["after-build"]
    assert isinstance(upstream, UpstreamTrigger) and upstream.status == ["succeeded", "failed"]
    promoted = spec.triggers["promoted"]
    assert isinstance(promoted, ResourceTrigger) and promoted.tag is not None
    assert promoted.tag.tag == "$STAGING"


@pytest.mark.parametrize(
    ("body", "line", "says"),
    [
        ("    kind: carrier-pigeon\n", 9, "kind"),
        ("    kind: webhook\n", 9, "secret"),
        ("    kind: webhook\n    secret: lower\n", 11, "secret"),
        (
            "    kind: webhook\n    secret: K\n    filter: ${{ schedule.time != '' }}\n",
            12,
            "filter of trigger 'nightly' reads 'schedule'; this kind of trigger may read only event.*",
        ),
        (
            "    kind: webhook\n    secret: K\n    delivery: ${{ git.commit }}\n",
            12,
            "delivery of trigger 'nightly' reads 'git'; this kind of trigger may read only event.*",
        ),
        ("    kind: upstream\n", 9, "definition"),
        ("    kind: upstream\n    definition: build\n    status: [exploded]\n", 12, "status"),
        ("    kind: resource\n", 9, "watches one thing"),
        (
            "    kind: resource\n    versions_of: a\n    tag: {definition: b}\n",
            9,
            "watches one thing",
        ),
        ("    kind: resource\n    tag: {definition: b, tag: LIVE}\n", 11, "tag"),
        (
            "    kind: git\n    params: {c: '${{ upstream.outputs.x }}'}\n",
            11,
            "may read only git.*",
        ),
    ],
)
def test_a_bad_event_trigger_is_refused_at_its_position(body: str, line: int, says: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(HEAD + "  nightly:\n" + body, "w.yaml")
    message = str(info.value)
    assert f"w.yaml:{line}:" in message and says in message, message
