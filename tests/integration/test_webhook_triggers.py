"""A webhook trigger starts a run for each signed delivery, once per delivery id, with params
from the body; a delivery that does not prove itself with the trigger's secret fires nothing
and is audited; a filter, a body that is not JSON and a failing mapping are recorded as such."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import Server, wait_for
from tests.receivers import http_receiver

KEY = "hook-signing-key"
TOKEN = "hook-bearer-token"
SPEC = """\
name: hooked
params:
  type: object
  properties: {ref: {type: string, default: none}}
steps:
  a:
    run: echo "ref ${{ params.ref }}"
triggers:
  signed:
    kind: webhook
    secret: HOOK_KEY
    params: {ref: '${{ event.body.ref }}'}
    filter: ${{ event.body.ref != 'refs/heads/skip' }}
  bearer:
    kind: webhook
    auth: token
    secret: HOOK_TOKEN
    delivery: X-Event-Id
    params: {ref: '${{ event.headers["x-ref"] }}'}
"""
TWIN = """\
name: NAME
steps:
  a:
    run: "true"
triggers:
  twin:
    kind: webhook
    secret: HOOK_KEY
"""


def _live(server: Server, name: str, text: str, project: str = "default") -> None:
    http = server.api
    base = f"/projects/{project}/definitions"
    assert http.post(base, json={"name": name}).status_code in (201, 409)
    draft = http.put(
        f"{base}/{name}/draft", content=text, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    published = http.post(f"{base}/{name}/publish", json={"message": "hooks"})
    assert published.status_code == 201, published.text
    tag = http.put(f"{base}/{name}/tags/$LIVE", json={"version": published.json()["number"]})
    assert tag.status_code == 200, tag.text


@pytest.fixture(scope="module")
def hooked(server: Server) -> Server:
    for name, value in (("HOOK_KEY", KEY), ("HOOK_TOKEN", TOKEN)):
        assert server.http.put(f"/secrets/{name}", json={"value": value}).status_code in (200, 201)
    _live(server, "hooked", SPEC)
    return server


def _sign(body: bytes, key: str = KEY) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def _post(
    server: Server,
    path: str,
    payload: Any,
    *,
    delivery: str | None = None,
    key: str | None = KEY,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"content-type": "application/json", **(headers or {})}
    if delivery:
        sent["x-github-delivery"] = delivery
    if key:
        sent["x-hub-signature-256"] = _sign(body, key)
    return httpx.post(f"{server.url}/api/v1/hooks/{path}", content=body, headers=sent, timeout=30)


def _history(server: Server, trigger: str, definition: str = "hooked") -> list[dict[str, Any]]:
    resp = server.http.get(f"/triggers/{definition}/{trigger}/history", params={"limit": 500})
    assert resp.status_code == 200, resp.text
    got: list[dict[str, Any]] = resp.json()
    return got


def _decided(server: Server, trigger: str, fire_id: str) -> dict[str, Any]:
    """The fire once handled (it is handled after the answer)."""
    return wait_for(
        lambda: next(
            (
                f
                for f in _history(server, trigger)
                if f["id"] == fire_id and f["status"] != "accepted"
            ),
            None,
        ),
        timeout=30,
        what=f"fire {fire_id} to be handled",
    )


def _runs_of(server: Server, delivery: str) -> list[dict[str, Any]]:
    resp = server.http.get("/runs", params={"workflow": "hooked", "limit": 500})
    assert resp.status_code == 200, resp.text
    return [r for r in resp.json()["items"] if (r.get("cause") or {}).get("delivery") == delivery]


def test_a_signed_delivery_makes_one_run_with_params_from_its_body(hooked: Server) -> None:
    delivery = str(uuid.uuid4())
    payload = {"ref": "refs/heads/main", "after": "abc"}
    first = _post(hooked, "default/hooked/signed", payload, delivery=delivery)
    assert first.status_code == 202, first.text
    answer = first.json()
    assert answer["delivery"] == delivery and answer["status"] == "accepted"

    fire = _decided(hooked, "signed", answer["fire"])
    assert fire["status"] == "fired", fire
    run = hooked.wait(fire["run_id"])
    assert run["status"] == "succeeded" and run["params"] == {"ref": "refs/heads/main"}
    digest = "sha256:" + hashlib.sha256(json.dumps(payload).encode()).hexdigest()
    assert {k: v for k, v in run["cause"].items() if v is not None} == {
        "kind": "webhook",
        "trigger": "signed",
        "delivery": delivery,
        "payload_digest": digest,
    }
    assert run["definition"] == "hooked"
    assert any(line["text"] == "ref refs/heads/main" for line in hooked.logs(run["id"]))

    # the same delivery again (a sender's retry): no second run, the answer names the first
    again = _post(hooked, "default/hooked/signed", payload, delivery=delivery)
    assert again.status_code == 200, again.text
    assert again.json() == {
        "delivery": delivery,
        "fire": answer["fire"],
        "status": "fired",
        "run_id": run["id"],
    }
    assert [r["id"] for r in _runs_of(hooked, delivery)] == [run["id"]]


def test_twenty_concurrent_deliveries_of_one_id_make_one_run(hooked: Server) -> None:
    delivery = str(uuid.uuid4())
    payload = {"ref": "refs/heads/concurrent"}
    with ThreadPoolExecutor(20) as pool:
        answers = list(
            pool.map(
                lambda _: _post(hooked, "default/hooked/signed", payload, delivery=delivery),
                range(20),
            )
        )
    assert sorted(a.status_code for a in answers) == [200] * 19 + [202], [a.text for a in answers]
    fires = {a.json()["fire"] for a in answers}
    assert len(fires) == 1 and {a.json()["delivery"] for a in answers} == {delivery}
    fire = _decided(hooked, "signed", fires.pop())
    named = {a.json()["run_id"] for a in answers if "run_id" in a.json()}
    assert named <= {fire["run_id"]}
    runs = _runs_of(hooked, delivery)
    assert [r["id"] for r in runs] == [fire["run_id"]]
    assert [f["id"] for f in _history(hooked, "signed") if f["key"] == delivery] == [fire["id"]]


def test_a_delivery_that_does_not_prove_itself_fires_nothing_and_is_audited(
    hooked: Server,
) -> None:
    git = TWIN.replace("NAME", "not-a-hook").replace("webhook\n    secret: HOOK_KEY", "git")
    _live(hooked, "not-a-hook", git)
    assert hooked.api.post("/projects", json={"name": "hooks-other"}).status_code in (201, 409)
    payload = {"ref": "refs/heads/forged"}
    refused = {
        "wrong key": _post(hooked, "default/hooked/signed", payload, delivery="d1", key="guess"),
        "no signature": _post(hooked, "default/hooked/signed", payload, delivery="d2", key=None),
        "signed body changed": _post(
            hooked,
            "default/hooked/signed",
            b'{"ref": "refs/heads/forged"} ',
            delivery="d3",
            key=None,
            headers={"x-hub-signature-256": _sign(json.dumps(payload).encode())},
        ),
        "bearer on an hmac trigger": _post(
            hooked,
            "default/hooked/signed",
            payload,
            key=None,
            headers={"authorization": f"Bearer {KEY}"},
        ),
        "unknown trigger": _post(hooked, "default/hooked/nope", payload),
        "unknown definition": _post(hooked, "default/nothing/signed", payload),
        "not a webhook trigger": _post(hooked, "default/not-a-hook/twin", payload),
        "unknown project": _post(hooked, "no-such-project/hooked/signed", payload),
        "another project's url": _post(hooked, "hooks-other/hooked/signed", payload),
        "another project, short form": _post(hooked, "hooks-other/signed", payload),
        "malformed names": _post(hooked, "Default/Hooked/Signed", payload),
    }
    for why, resp in refused.items():
        assert resp.status_code == 401, (why, resp.text)
        # unknown and forged look the same from outside
        assert resp.json()["detail"] == (
            "webhook not accepted: unknown trigger or invalid signature"
        ), why
    assert not [f for f in _history(hooked, "signed") if "forged" in json.dumps(f["event"])]
    audit = hooked.http.get("/audit", params={"limit": 200}).json()
    entries = {(e["action"], e["status"]) for e in audit}
    assert ("POST /api/v1/hooks/default/hooked/signed", 401) in entries
    assert ("POST /api/v1/hooks/default/hooked/nope", 401) in entries
    other = hooked.api.get("/projects/hooks-other/audit", params={"limit": 50}).json()
    assert ("POST /api/v1/hooks/hooks-other/hooked/signed", 401) in {
        (e["action"], e["status"]) for e in other
    }


def test_a_bearer_token_trigger_takes_its_delivery_id_from_the_named_header(
    hooked: Server,
) -> None:
    event = str(uuid.uuid4())
    sent = {"authorization": f"Bearer {TOKEN}", "x-event-id": event, "x-ref": "v1.2"}
    ok = _post(hooked, "default/hooked/bearer", b"not json at all", key=None, headers=sent)
    assert ok.status_code == 202, ok.text
    assert ok.json()["delivery"] == event
    fire = _decided(hooked, "bearer", ok.json()["fire"])
    assert fire["status"] == "fired", fire
    # the credential is not kept with the event
    assert "authorization" not in fire["event"]["headers"] and TOKEN not in json.dumps(fire)
    assert fire["event"]["raw"] == "not json at all" and fire["event"]["body"] is None
    assert hooked.wait(fire["run_id"])["params"] == {"ref": "v1.2"}

    for header in (f"Bearer {KEY}", f"Bearer {TOKEN}x", TOKEN, ""):
        wrong = {**sent, "authorization": header, "x-event-id": str(uuid.uuid4())}
        resp = _post(hooked, "default/hooked/bearer", b"{}", key=None, headers=wrong)
        assert resp.status_code == 401, (header, resp.text)
    assert len([f for f in _history(hooked, "bearer")]) == 1


def test_a_body_over_the_limit_is_refused_with_413_and_fires_nothing(hooked: Server) -> None:
    big = json.dumps({"ref": "refs/heads/big", "pad": "x" * (1024 * 1024)}).encode()
    resp = _post(hooked, "default/hooked/signed", big, delivery="too-big")
    assert resp.status_code == 413, resp.text
    assert "larger than 1048576 bytes" in resp.json()["detail"]
    assert not [f for f in _history(hooked, "signed") if f["key"] == "too-big"]


def test_a_filter_that_is_false_records_the_delivery_as_filtered(hooked: Server) -> None:
    delivery = str(uuid.uuid4())
    resp = _post(hooked, "default/hooked/signed", {"ref": "refs/heads/skip"}, delivery=delivery)
    assert resp.status_code == 202, resp.text
    fire = _decided(hooked, "signed", resp.json()["fire"])
    assert fire["status"] == "filtered" and fire["run_id"] is None
    assert _runs_of(hooked, delivery) == []


def test_a_body_the_mapping_cannot_read_fails_the_fire_with_the_reason(hooked: Server) -> None:
    delivery = str(uuid.uuid4())
    resp = _post(hooked, "default/hooked/signed", b"ref=refs/heads/main", delivery=delivery)
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "failed"
    assert "body is not JSON" in resp.json()["error"] and "event.body" in resp.json()["error"]
    [fire] = [f for f in _history(hooked, "signed") if f["key"] == delivery]
    assert fire["status"] == "failed" and fire["run_id"] is None
    assert fire["event"]["raw"] == "ref=refs/heads/main"

    # JSON without the field the mapping reads: failed, saying which
    missing = str(uuid.uuid4())
    resp = _post(hooked, "default/hooked/signed", {"branch": "main"}, delivery=missing)
    assert resp.status_code == 202, resp.text
    fire = _decided(hooked, "signed", resp.json()["fire"])
    assert fire["status"] == "failed" and "ref" in fire["error"], fire
    assert _runs_of(hooked, delivery) == [] and _runs_of(hooked, missing) == []


def test_the_short_url_serves_an_id_unique_in_the_project_and_names_the_long_form_else(
    hooked: Server,
) -> None:
    delivery = str(uuid.uuid4())
    short = _post(hooked, "default/signed", {"ref": "refs/heads/short"}, delivery=delivery)
    assert short.status_code == 202, short.text
    fire = _decided(hooked, "signed", short.json()["fire"])
    assert hooked.wait(fire["run_id"])["params"] == {"ref": "refs/heads/short"}

    for name in ("twin-a", "twin-b"):
        _live(hooked, name, TWIN.replace("NAME", name))
    ambiguous = _post(hooked, "default/twin", {}, delivery=str(uuid.uuid4()))
    assert ambiguous.status_code == 409, ambiguous.text
    detail = ambiguous.json()["detail"]
    assert "twin-a, twin-b" in detail and "/api/v1/hooks/default/<definition>/twin" in detail
    # unsigned, it says nothing about which definitions have it
    assert _post(hooked, "default/twin", {}, key=None).status_code == 401
    assert _post(hooked, "default/twin-a/twin", {}, delivery=str(uuid.uuid4())).status_code == 202


def test_a_paused_trigger_records_a_signed_delivery_as_skipped(hooked: Server) -> None:
    _live(hooked, "paused-hook", TWIN.replace("NAME", "paused-hook"))
    assert hooked.http.post("/triggers/paused-hook/twin/pause").status_code == 200
    assert _post(hooked, "default/paused-hook/twin", {}, key="guess").status_code == 401
    resp = _post(hooked, "default/paused-hook/twin", {}, delivery=str(uuid.uuid4()))
    assert resp.status_code == 202, resp.text
    fire = wait_for(
        lambda: next(
            (f for f in _history(hooked, "twin", "paused-hook") if f["status"] != "accepted"), None
        ),
        what="the fire of the paused trigger to be decided",
    )
    assert fire["status"] == "skipped" and fire["error"] == "paused by user:admin", fire
    assert fire["run_id"] is None


def test_a_delivery_answered_202_has_its_run_after_the_server_is_killed(home: Path) -> None:
    server = Server(home)
    server.start()
    try:
        assert server.http.put("/secrets/HOOK_KEY", json={"value": KEY}).status_code == 201
        assert server.http.put("/secrets/HOOK_TOKEN", json={"value": TOKEN}).status_code == 201
        _live(server, "hooked", SPEC)
        # the engine stops answering: handling the fire hangs in the call that starts the run's
        # workflow (for its 10 s deadline), so the fire is still `accepted` when the server dies
        temporal = server.temporal_pid
        assert temporal is not None
        os.kill(temporal, signal.SIGSTOP)
        delivery = str(uuid.uuid4())
        answer = _post(
            server, "default/hooked/signed", {"ref": "refs/heads/crash"}, delivery=delivery
        )
        assert answer.status_code == 202, answer.text
        fire_id = answer.json()["fire"]
        [before] = [f for f in _history(server, "signed") if f["id"] == fire_id]
        assert before["status"] == "accepted", before
        server.kill9()

        server.start()
        fire = _decided(server, "signed", fire_id)
        assert fire["status"] == "fired", fire
        run = server.wait(fire["run_id"])
        assert run["status"] == "succeeded" and run["params"] == {"ref": "refs/heads/crash"}
        assert run["cause"]["delivery"] == delivery
        assert [r["id"] for r in _runs_of(server, delivery)] == [run["id"]]
    finally:
        server.stop()


def test_a_failed_fire_tells_whoever_subscribed_to_trigger_failed(hooked: Server) -> None:
    with http_receiver() as chat:
        made = hooked.http.post(
            "/notifications/channels",
            json={"name": "trigger-chat", "kind": "slack", "settings": {"url": chat.url}},
        )
        assert made.status_code == 201, made.text
        sub = hooked.http.post(
            "/notifications/subscriptions",
            json={"channel": "trigger-chat", "events": ["trigger.failed"], "definition": "hooked"},
        )
        assert sub.status_code == 201, sub.text
        try:
            delivery = str(uuid.uuid4())
            resp = _post(hooked, "default/hooked/signed", b"not json", delivery=delivery)
            assert resp.json()["status"] == "failed", resp.text
            (call,) = wait_for(lambda: chat.calls, what="the trigger.failed message")
            said = json.dumps(call.body)
            assert "trigger.failed" in said and "signed" in said and "not JSON" in said, said
        finally:
            hooked.http.delete("/notifications/channels/trigger-chat")
