"""What a webhook delivery must carry to be accepted, what its event holds, and which id
makes a delivery sent twice one fire."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from lockstep.errors import InvalidRequest
from lockstep.spec.triggers import WebhookTrigger
from lockstep.triggers.webhooks import (
    Delivery,
    authentic,
    delivery_id,
    event_of,
    reads_body,
)

BODY = b'{"ref": "refs/heads/main", "id": 7}'


def _hook(**fields: Any) -> WebhookTrigger:
    return WebhookTrigger.model_validate({"kind": "webhook", "secret": "HOOK_KEY", **fields})


def _signed(body: bytes, key: str = "s3cret") -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"x-hub-signature-256": _signed(BODY)}, True),
        ({"x-hub-signature-256": _signed(BODY, "other")}, False),
        ({"x-hub-signature-256": _signed(BODY + b" ")}, False),
        ({"x-hub-signature-256": _signed(BODY)[7:]}, False),  # the bare hex, no "sha256="
        ({"x-hub-signature-256": ""}, False),
        ({}, False),
        ({"authorization": "Bearer s3cret"}, False),  # a token does not open an hmac trigger
    ],
)
def test_hmac_needs_the_body_signed_with_the_secret(headers: dict[str, str], ok: bool) -> None:
    assert authentic(_hook(), "s3cret", Delivery(BODY, headers)) is ok


def test_hmac_reads_the_header_the_trigger_names() -> None:
    hook = _hook(signature_header="X-Signature")
    assert authentic(hook, "s3cret", Delivery(BODY, {"x-signature": _signed(BODY)}))
    assert not authentic(hook, "s3cret", Delivery(BODY, {"x-hub-signature-256": _signed(BODY)}))


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        ("Bearer s3cre", False),
        ("Bearer s3cret2", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        ("Bearer ", False),
    ],
)
def test_token_auth_needs_the_secret_as_bearer(header: str, ok: bool) -> None:
    hook = _hook(auth="token")
    assert authentic(hook, "s3cret", Delivery(BODY, {"authorization": header})) is ok


def test_the_event_holds_the_json_body_and_headers_without_credentials() -> None:
    headers = {
        "authorization": "Bearer s3cret",
        "x-hub-signature-256": "sha256=00",
        "cookie": "a=b",
        "x-github-event": "push",
    }
    event = event_of(_hook(), Delivery(BODY, headers))
    assert event == {
        "body": {"ref": "refs/heads/main", "id": 7},
        "headers": {"x-github-event": "push"},
        "raw": None,
    }


@pytest.mark.parametrize(
    "body", [b"ref=main&x=1", b"", b"\xff\xfe not utf-8", b"[" * 100_000, b"1" * 5000]
)
def test_a_body_that_is_not_json_is_kept_as_bounded_text(body: bytes) -> None:
    event = event_of(_hook(), Delivery(body, {}))
    assert event["body"] is None
    assert isinstance(event["raw"], str) and len(event["raw"]) <= 64 * 1024


def test_the_delivery_id_is_the_first_usual_header_else_the_body_digest() -> None:
    hook = _hook()
    both = {"x-request-id": "r-1", "x-github-delivery": "gh-1"}
    assert delivery_id(hook, {}, Delivery(BODY, both)) == "gh-1"
    assert delivery_id(hook, {}, Delivery(BODY, {"x-gitea-delivery": "gt-1"})) == "gt-1"
    digest = "sha256:" + hashlib.sha256(BODY).hexdigest()
    assert delivery_id(hook, {}, Delivery(BODY, {})) == digest


def test_the_delivery_id_from_a_named_header_or_an_expression() -> None:
    named = _hook(delivery="X-Event-Id")
    assert delivery_id(named, {}, Delivery(BODY, {"x-event-id": "e-9"})) == "e-9"
    with pytest.raises(InvalidRequest, match="no 'X-Event-Id' header"):
        delivery_id(named, {}, Delivery(BODY, {"x-github-delivery": "gh-1"}))
    computed = _hook(delivery="${{ event.body.ref + '#' + string(event.body.id) }}")
    delivery = Delivery(BODY, {})
    assert delivery_id(computed, event_of(computed, delivery), delivery) == "refs/heads/main#7"


def test_a_long_or_unprintable_delivery_id_is_kept_as_its_digest() -> None:
    for given in ("x" * 500, "a\x01b"):
        got = delivery_id(_hook(), {}, Delivery(BODY, {"x-github-delivery": given}))
        assert got == "sha256:" + hashlib.sha256(given.encode()).hexdigest()


@pytest.mark.parametrize(
    ("fields", "reads"),
    [
        ({"params": {"ref": "${{ event.body.ref }}"}}, True),
        ({"filter": "event.body.action == 'push'"}, True),
        ({"filter": "${{ event.body.action == 'push' }}"}, True),
        ({"params": {"kind": "${{ event.headers['x-github-event'] }}", "n": 3}}, False),
        ({"params": {"text": "${{ event.raw }}"}}, False),
        ({}, False),
    ],
)
def test_which_triggers_read_the_body(fields: dict[str, Any], reads: bool) -> None:
    assert reads_body(_hook(**fields)) is reads
