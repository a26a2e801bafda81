"""The runs list by who started a run and by id prefix, and its stream of changes: every run
of the project created or changed, resumable from the last event, never another project's."""

from __future__ import annotations

import json
from collections.abc import Generator
from contextlib import closing
from typing import Any

import httpx

from lockstep.clock import utcnow
from tests.harness import Server

SPEC = "name: {name}\nsteps:\n  a:\n    run: 'true'\n"


def _person(server: Server, user: str) -> httpx.Client:
    """An HTTP client on project 'default' acting as ``user`` (an operator)."""
    resp = server.http.put("/members", json={"user": user, "role": "operator"})
    assert resp.status_code in (200, 201), resp.text
    made = server.api.post("/tokens", json={"name": f"t-{user}", "user": user})
    assert made.status_code == 201, made.text
    return httpx.Client(
        base_url=server.url + "/api/v1/projects/default",
        headers={"authorization": f"Bearer {made.json()['token']}"},
        timeout=30,
    )


def _listed(server: Server, **filters: str) -> list[str]:
    resp = server.http.get("/runs", params={"limit": 500, **filters})
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()["items"]]


def test_runs_are_listed_by_who_started_them_and_by_id_prefix(server: Server) -> None:
    with _person(server, "list-lee") as lee:
        made = lee.post("/runs", json={"spec": SPEC.format(name="list-who")})
    assert made.status_code == 201, made.text
    lees = made.json()["id"]
    admins = server.submit(SPEC.format(name="list-who"))["id"]
    assert _listed(server, workflow="list-who", user="list-lee") == [lees]
    assert _listed(server, workflow="list-who", user="nobody") == []
    assert admins in _listed(server, workflow="list-who", cause="manual")
    assert _listed(server, prefix=lees[:10]) == [lees]
    assert _listed(server, prefix=lees, user="list-lee") == [lees]  # filters combine
    bad = server.http.get("/runs", params={"prefix": "<script>"})
    assert bad.status_code == 422


def test_runs_are_listed_by_definition(server: Server) -> None:
    name = "list-def"
    assert server.http.post("/definitions", json={"name": name}).status_code in (201, 409)
    draft = server.http.put(
        f"/definitions/{name}/draft",
        content=SPEC.format(name=name),
        headers={"content-type": "application/yaml"},
    )
    assert draft.status_code == 200, draft.text
    assert server.http.post(f"/definitions/{name}/publish", json={}).status_code == 201
    of_version = server.http.post("/runs", json={"selector": f"{name}@1"})
    assert of_version.status_code == 201, of_version.text
    loose = server.submit(SPEC.format(name=name))["id"]  # the same workflow name, no version
    assert _listed(server, definition=name) == [of_version.json()["id"]]
    assert loose in _listed(server, workflow=name)
    assert _listed(server, definition="no-such-definition") == []


def _events(
    server: Server,
    project: str,
    *,
    cursor: str | None = None,
    last_id: str | None = None,
    **filters: str,
) -> Generator[tuple[str, dict[str, Any]]]:
    """(event id, run) for each event of the project's runs stream, as they come."""
    params = {**filters, **({"cursor": cursor} if cursor else {})}
    headers = {"last-event-id": last_id} if last_id else {}
    url = f"/projects/{project}/runs/events"
    with server.api.stream(
        "GET", url, params=params, headers=headers, timeout=httpx.Timeout(60)
    ) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        event_id, kind = "", ""
        for line in resp.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "run":
                yield event_id, json.loads(line[6:])


def _until(
    events: Generator[tuple[str, dict[str, Any]]], run_id: str, status: str
) -> list[tuple[str, dict[str, Any]]]:
    """Events read up to the one showing ``run_id`` in ``status`` (then the stream is closed)."""
    seen = []
    with closing(events):
        for event in events:
            seen.append(event)
            if event[1]["id"] == run_id and event[1]["status"] == status:
                return seen
    raise AssertionError(f"the stream ended before run {run_id} was {status}")


def test_the_stream_sends_each_run_created_and_changed_in_its_project_only(
    server: Server,
) -> None:
    assert server.api.post("/projects", json={"name": "stream-other"}).status_code in (201, 409)
    start = utcnow()
    other = server.api.post(
        "/projects/stream-other/runs", json={"spec": SPEC.format(name="stream-theirs")}
    )
    assert other.status_code == 201, other.text
    theirs = other.json()["id"]
    mine = server.submit(SPEC.format(name="stream-mine"))["id"]
    server.wait(mine)

    seen = _until(_events(server, "default", cursor=start), mine, "succeeded")
    mine_seen = [run["status"] for _, run in seen if run["id"] == mine]
    assert mine_seen[-1] == "succeeded"
    assert {run["project"] for _, run in seen} == {"default"}
    assert theirs not in {run["id"] for _, run in seen}
    assert seen[-1][1]["cause"]["kind"] == "manual"  # the run as the list shows it

    # a reconnect resumes from the last event's id: a run made afterwards comes
    last_id = seen[-1][0]
    later = server.submit(SPEC.format(name="stream-later"))["id"]
    resumed = _until(_events(server, "default", last_id=last_id), later, "succeeded")
    assert theirs not in {run["id"] for _, run in resumed}
    # and the other project's stream has its run, not ours
    theirs_seen = _until(_events(server, "stream-other", cursor=start), theirs, "succeeded")
    assert {run["id"] for _, run in theirs_seen} == {theirs}


def test_the_stream_takes_the_lists_filters_and_refuses_a_bad_cursor(server: Server) -> None:
    start = utcnow()
    skipped = server.submit(SPEC.format(name="stream-skipped"))["id"]
    wanted = server.submit(SPEC.format(name="stream-wanted"))["id"]
    server.wait(skipped)
    events = _events(server, "default", cursor=start, workflow="stream-wanted")
    seen = _until(events, wanted, "succeeded")
    assert {run["workflow"] for _, run in seen} == {"stream-wanted"}
    bad = server.api.get("/projects/default/runs/events", params={"cursor": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("invalid cursor;")
    # a reconnect's Last-Event-ID is the cursor (read, not ignored)
    resumed = server.api.get("/projects/default/runs/events", headers={"last-event-id": "x"})
    assert resumed.status_code == 400
    nobody = httpx.get(server.url + "/api/v1/projects/default/runs/events")
    assert nobody.status_code == 401
