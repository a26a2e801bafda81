"""Approval and wait steps: a run waits for people (or a time) holding no worker, only the
step's approvers decide, their input becomes the step's outputs, a timeout applies its policy,
and a server killed while a run waits loses nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import Server, wait_for
from tests.receivers import HttpReceiver, http_receiver

GATED = """\
name: gated
params:
  type: object
  properties: {target: {type: string, default: prod}}
steps:
  build:
    run: echo built
  gate:
    needs: [build]
    approval:
      approvers: [ann, bob]
      required: 2
      message: "Roll out to ${{ params.target }}?"
      input:
        type: object
        properties: {percent: {type: integer, minimum: 1, maximum: 100}}
        required: [percent]
  deploy:
    needs: [gate]
    run: echo "rolling out ${{ steps.gate.outputs.percent }}%"
outputs:
  percent: ${{ steps.gate.outputs.percent }}
"""


def _as(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url + "/api/v1/projects/default",
        timeout=30,
        headers={"authorization": f"Bearer {token}"},
    )


@pytest.fixture(scope="module")
def people(server: Server) -> Iterator[dict[str, httpx.Client]]:
    """ann and bob (viewers, named approvers), carl (an operator, not named), and dan of
    another project only."""
    clients: dict[str, httpx.Client] = {}
    assert server.api.post("/projects", json={"name": "elsewhere"}).status_code in (201, 409)
    for user, role, project in (
        ("ann", "viewer", "default"),
        ("bob", "viewer", "default"),
        ("carl", "operator", "default"),
        ("dan", "admin", "elsewhere"),
    ):
        resp = server.api.put(f"/projects/{project}/members", json={"user": user, "role": role})
        assert resp.status_code in (200, 201), resp.text
        token = server.api.post("/tokens", json={"name": f"t-{user}", "user": user})
        assert token.status_code == 201, token.text
        clients[user] = _as(server, token.json()["token"])
    yield clients
    for client in clients.values():
        client.close()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _waiting(server: Server, run_id: str, step: str) -> dict[str, Any]:
    return server.wait(run_id, until=lambda r: r["steps"][step]["status"] == "waiting")


def _decide(client: httpx.Client, run_id: str, step: str, verdict: str, **body: Any) -> Any:
    return client.post(f"/runs/{run_id}/approvals/{step}/{verdict}", json=body)


def test_two_approvers_approve_with_input_and_the_run_finishes_with_it(
    server: Server, people: dict[str, httpx.Client]
) -> None:
    run_id = server.submit(GATED, {"target": "eu"})["id"]
    _waiting(server, run_id, "gate")
    waiting = server.http.get("/approvals").json()
    mine = [a for a in waiting if a["run_id"] == run_id]
    assert len(mine) == 1 and mine[0]["message"] == "Roll out to eu?"
    assert (mine[0]["required"], mine[0]["approvers"]) == (2, ["ann", "bob"])
    # someone not named may not decide; another project cannot even see it
    denied = _decide(people["carl"], run_id, "gate", "approve", input={"percent": 5})
    assert denied.status_code == 403 and "approvers are ann, bob" in denied.json()["detail"]
    outside = people["dan"].post(
        f"{server.url}/api/v1/projects/default/runs/{run_id}/approvals/gate/approve", json={}
    )
    assert outside.status_code == 404
    # input that breaks the schema is refused, naming where
    bad = _decide(people["ann"], run_id, "gate", "approve", input={"percent": 150})
    assert bad.status_code == 422 and "/percent" in bad.json()["detail"], bad.text
    first = _decide(people["ann"], run_id, "gate", "approve", input={"percent": 10}, comment="ok")
    assert first.status_code == 200, first.text
    assert (first.json()["state"], first.json()["approvals"]) == ("waiting", 1)
    again = _decide(people["ann"], run_id, "gate", "approve", input={"percent": 10})
    assert again.status_code == 409 and "already decided" in again.json()["detail"]
    second = _decide(people["bob"], run_id, "gate", "approve", input={"percent": 30})
    assert second.json()["state"] == "approved", second.text
    run = server.wait(run_id)
    assert run["status"] == "succeeded", run
    assert run["steps"]["gate"]["outputs"] == {"percent": 30}  # the later approver's input
    assert run["outputs"] == {"percent": 30}
    assert any(line["text"] == "rolling out 30%" for line in server.logs(run_id, "deploy"))
    record = server.http.get(f"/runs/{run_id}/approvals/gate").json()
    assert record["status"] == "approved"
    assert [(d["user"], d["approve"], d.get("comment")) for d in record["decisions"]] == [
        ("ann", True, "ok"),
        ("bob", True, None),
    ]
    # the run record carries each decision: who, verdict, when, comment, input
    decisions = run["steps"]["gate"]["decisions"]
    assert [(d["user"], d["approve"], d["comment"], d["input"]) for d in decisions] == [
        ("ann", True, "ok", {"percent": 10}),
        ("bob", True, None, {"percent": 30}),
    ]
    times = [_instant(run["started_at"]), *(_instant(d["at"]) for d in decisions)]
    assert times == sorted(times) and times[-1] <= _instant(run["steps"]["gate"]["finished_at"])
    assert run["steps"]["build"]["decisions"] == []
    # and the audit log has each decision's call: who, what, how it ended
    audit = server.api.get("/audit", params={"limit": 1000}).json()
    said = {
        (e["user"], e["status"])
        for e in audit
        if e["action"] == f"POST /api/v1/projects/default/runs/{run_id}/approvals/gate/approve"
    }
    assert {("ann", 200), ("bob", 200), ("carl", 403), ("ann", 409)} <= said, said
    # with what each decided (the call's comment and input, never the whole body)
    decided = [
        e["detail"]
        for e in audit
        if e["user"] == "ann" and e["status"] == 200 and e["action"].endswith("/gate/approve")
    ]
    assert decided == [{"run": run_id, "step": "gate", "comment": "ok", "input": {"percent": 10}}]
    late = _decide(people["bob"], run_id, "gate", "reject")
    assert late.status_code == 409 and "it is approved" in late.json()["detail"]


def test_a_rejection_fails_the_step_and_the_starter_may_not_approve_their_own_run(
    server: Server, people: dict[str, httpx.Client]
) -> None:
    spec = """\
name: self-gated
steps:
  gate:
    approval: {approvers: ["role:viewer"], allow_self: false}
  after:
    needs: [gate]
    run: echo never
"""
    started = people["carl"].post("/runs", json={"spec": spec})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    _waiting(server, run_id, "gate")
    early = _decide(people["ann"], run_id, "after", "approve")
    assert early.status_code == 409, early.text
    assert early.json()["detail"] == (
        f"step 'after' of run {run_id} is not waiting for approval: it is pending"
    )
    assert _decide(people["ann"], run_id, "nope", "approve").status_code == 404
    own = _decide(people["carl"], run_id, "gate", "approve")
    assert own.status_code == 403 and "allow_self: false" in own.json()["detail"]
    no = _decide(people["ann"], run_id, "gate", "reject", comment="not today")
    assert no.json()["state"] == "rejected", no.text
    run = server.wait(run_id)
    assert run["status"] == "failed"
    assert run["steps"]["gate"]["error"] == "rejected by ann: not today"
    assert run["steps"]["after"]["status"] == "upstream_failed"


@pytest.mark.parametrize(
    ("policy", "status", "error"),
    [
        ("approve", "succeeded", None),
        ("reject", "failed", "rejected: no decision within 2s (on_timeout: reject)"),
        ("fail", "failed", "timed out: no decision within 2s"),
    ],
)
def test_a_timeout_applies_its_policy(server: Server, policy: str, status: str, error: Any) -> None:
    spec = f"""\
name: timed-gate
steps:
  gate:
    approval: {{timeout: 2s, on_timeout: {policy}}}
"""
    with _chat(
        server, f"timeout-{policy}", ["run.started", "approval.timed_out"], "timed-gate"
    ) as chat:
        run = server.run_and_wait(spec)
        assert run["steps"]["gate"]["status"] == status, run
        assert run["steps"]["gate"]["error"] == error
        record = server.http.get(f"/runs/{run['id']}/approvals/gate").json()
        assert record["status"] == "timed_out" and record["on_timeout"] == policy
        # subscribers heard the run start and the approval time out, with its policy
        calls = wait_for(lambda: len(chat.calls) >= 2 and chat.calls, what="two messages")
        said = {c.body["text"].split(" http")[0]: json.dumps(c.body["blocks"]) for c in calls}
        assert sorted(said) == [
            f"Run {run['id']} of timed-gate running",
            f"approval.timed_out: run {run['id']} of timed-gate",
        ]
        assert (
            f"*on_timeout:* {policy}" in said[f"approval.timed_out: run {run['id']} of timed-gate"]
        )


def test_wait_steps_hold_the_run_for_a_time_not_a_worker(server: Server) -> None:
    spec = """\
name: waits
params:
  type: object
  properties: {at: {type: string, default: "2020-01-01T00:00:00Z"}}
steps:
  pause:
    wait: 2s
  past:
    needs: [pause]
    wait: {until: "${{ params.at }}"}
  done:
    needs: [past]
    run: echo done
"""
    run_id = server.submit(spec)["id"]
    _waiting(server, run_id, "pause")
    run = server.wait(run_id)
    assert run["status"] == "succeeded", run
    assert run["steps"]["pause"]["attempts"] == 0  # no worker ever ran it
    assert run["steps"]["past"]["outputs"] == {"until": "2020-01-01T00:00:00.000000Z"}
    bad = server.run_and_wait(spec, {"at": "next tuesday"})
    assert bad["steps"]["past"]["status"] == "failed"
    assert "not an ISO 8601 instant" in bad["steps"]["past"]["error"]


def test_a_bad_approval_step_is_refused_before_anything_runs(server: Server) -> None:
    spec = """\
name: bad-gate
steps:
  gate:
    approval: {approvers: ["role:god"]}
    runs_on: gpu
"""
    resp = server.http.post("/runs", json={"spec": spec})
    assert resp.status_code == 422, resp.text
    text = resp.text
    assert "approvers" in text and "runs_on" in text


@pytest.mark.slow
def test_a_server_killed_while_a_run_waits_loses_nothing(home: Path) -> None:
    """Killed while the run waits, just after one decision and while another is on its way:
    both sent again after the restart, each counts once, and the run finishes once."""
    server = Server(home, heartbeat_timeout=3)
    server.start()
    try:
        for user in ("ann", "bob"):
            resp = server.http.put("/members", json={"user": user, "role": "viewer"})
            assert resp.status_code in (200, 201), resp.text
        tokens = {
            u: server.api.post("/tokens", json={"name": f"t-{u}", "user": u}).json()["token"]
            for u in ("ann", "bob")
        }
        run_id = server.submit(GATED)["id"]
        _waiting(server, run_id, "gate")
        # ann's decision reaches the engine, and the server dies before it may have recorded
        # it; bob's is on its way as the server dies
        with _as(server, tokens["ann"]) as client:
            sent = _decide(client, run_id, "gate", "approve", input={"percent": 40})
        assert sent.status_code == 200, sent.text
        in_flight: list[object] = []

        def send() -> None:
            with _as(server, tokens["bob"]) as client:
                try:
                    in_flight.append(
                        _decide(client, run_id, "gate", "approve", input={"percent": 50})
                    )
                except httpx.TransportError as exc:
                    in_flight.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        server.kill9()
        sender.join(60)
        (answer,) = in_flight  # it landed, or the connection broke: nothing else
        assert isinstance(answer, httpx.TransportError) or answer.status_code == 200, answer
        server.start()

        def landed(user: str, percent: int) -> bool:
            # the engine may still be coming back: a decision that did not land says so; one
            # that did is refused as already made (or the approval is already complete)
            with _as(server, tokens[user]) as client:
                got = _decide(client, run_id, "gate", "approve", input={"percent": percent})
            detail = got.json().get("detail", "") if got.status_code == 409 else ""
            return got.status_code == 200 or "already decided" in detail or "is approved" in detail

        for user, percent in (("ann", 40), ("bob", 50)):  # each one sent again
            wait_for(lambda u=user, p=percent: landed(u, p), timeout=60, what=f"{user}'s decision")
        run = server.wait(run_id)
        assert run["status"] == "succeeded", run
        # if bob's first send landed before the kill, `deploy` may have started on the killed
        # server's worker and run again (a second attempt, not a second decision): every attempt
        # rolled out bob's 50%, never a value from a decision counted twice
        assert run["steps"]["deploy"]["attempts"] in (1, 2)
        rolled = [line for line in server.logs(run_id, "deploy") if "rolling out" in line["text"]]
        assert rolled and {line["text"] for line in rolled} == {"rolling out 50%"}
        assert run["outputs"] == {"percent": 50}
        record = server.http.get(f"/runs/{run_id}/approvals/gate").json()
        assert [d["user"] for d in record["decisions"]] == ["ann", "bob"]
        decided = run["steps"]["gate"]["decisions"]
        assert [(d["user"], d["input"]) for d in decided] == [
            ("ann", {"percent": 40}),
            ("bob", {"percent": 50}),
        ]
    finally:
        server.stop()


@contextmanager
def _chat(server: Server, name: str, events: list[str], definition: str) -> Iterator[HttpReceiver]:
    """A Slack-shaped receiver subscribed to ``events`` of ``definition``'s runs."""
    with http_receiver() as chat:
        made = server.http.post(
            "/notifications/channels",
            json={"name": name, "kind": "slack", "settings": {"url": chat.url}},
        )
        assert made.status_code == 201, made.text
        sub = server.http.post(
            "/notifications/subscriptions",
            json={"channel": name, "events": events, "definition": definition},
        )
        assert sub.status_code == 201, sub.text
        try:
            yield chat
        finally:
            server.http.delete(f"/notifications/channels/{name}")


def test_people_subscribed_hear_an_approval_asked_and_decided_and_a_run_cancelled(
    server: Server, people: dict[str, httpx.Client]
) -> None:
    spec = """\
name: told-gate
steps:
  gate:
    approval: {approvers: [ann], message: "Ship build 7?"}
"""
    events = ["approval.requested", "approval.decided", "run.cancelled"]
    with _chat(server, "approvals-chat", events, "told-gate") as chat:
        run_id = server.submit(spec)["id"]
        _waiting(server, run_id, "gate")
        asked = wait_for(lambda: chat.calls, what="the approval.requested message")
        said = json.dumps(asked[0].body)
        assert "approval.requested" in said and run_id in said and "Ship build 7?" in said
        assert _decide(people["ann"], run_id, "gate", "approve").status_code == 200
        calls = wait_for(lambda: len(chat.calls) >= 2 and chat.calls, what="decided")
        said = json.dumps(calls[1].body)
        assert "approval.decided" in said and "ann" in said and "approved" in said
        # a run cancelled while it waits is told too
        other = server.submit(spec)["id"]
        _waiting(server, other, "gate")
        assert server.http.post(f"/runs/{other}/cancel").status_code == 200
        assert server.wait(other)["status"] == "cancelled"
        told = wait_for(
            lambda: [c for c in chat.calls if c.body["text"].startswith(f"Run {other} ")],
            what="the run.cancelled message",
        )
        assert told[0].body["text"].startswith(f"Run {other} of told-gate cancelled http")
