"""Triggers on instances: an instance's own ``triggers:`` run that instance (its ref, its
default params under the trigger's, recorded as the run's instance), an id the file has
inherits its fields and may be switched off for the instance alone, and a webhook trigger of an
instance answers at its own URL, once per delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gitrepo import Repo
from tests.harness import TERMINAL, Server, wait_for

SPEC = """\
name: NAME
params:
  type: object
  properties:
    when: {type: string, default: never}
    who: {type: string, default: nobody}
    ref: {type: string, default: none}
steps:
  a:
    run: echo "${{ params.who }} at ${{ params.when }}"
"""
FILE_TICK = """\
triggers:
  tick:
    every: 2s
    params: {when: '${{ schedule.time }}'}
"""
KEY = "instance-hook-key"


@pytest.fixture(autouse=True)
def _schedules_stop_with_the_test(server: Server) -> Iterator[None]:
    yield
    server.pause_schedules()


def _live(server: Server, name: str, text: str) -> int:
    assert server.http.post("/definitions", json={"name": name}).status_code in (201, 409)
    draft = server.http.put(
        f"/definitions/{name}/draft", content=text, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    published = server.http.post(f"/definitions/{name}/publish", json={"message": "m"})
    assert published.status_code == 201, published.text
    number = int(published.json()["number"])
    tag = server.http.put(f"/definitions/{name}/tags/$LIVE", json={"version": number})
    assert tag.status_code == 200, tag.text
    return number


def _instance(server: Server, name: str, definition: str, triggers: dict[str, Any]) -> None:
    body = {
        "name": name,
        "definition": definition,
        "ref": "$LIVE",
        "params": [f"who={name}"],
        "triggers": triggers,
    }
    resp = server.http.post("/instances", json=body)
    assert resp.status_code == 201, resp.text


def _set(server: Server, instance: str, triggers: dict[str, Any]) -> dict[str, Any]:
    resp = server.http.put(f"/instances/{instance}/triggers", json={"triggers": triggers})
    assert resp.status_code == 200, resp.text
    got: dict[str, Any] = resp.json()
    return got


def _fired(server: Server, trigger: str, workflow: str) -> list[dict[str, Any]]:
    resp = server.http.get("/runs", params={"trigger": trigger, "workflow": workflow, "limit": 500})
    assert resp.status_code == 200, resp.text
    return [server.run(r["id"]) for r in resp.json()["items"]]


def _fires(server: Server, trigger: str, workflow: str, count: int, since: str = "") -> list[Any]:
    """Runs of ``count`` distinct fire times after ``since``."""

    def enough() -> list[dict[str, Any]]:
        runs = [r for r in _fired(server, trigger, workflow) if r["cause"]["schedule_time"] > since]
        return runs if len({r["cause"]["schedule_time"] for r in runs}) >= count else []

    return wait_for(enough, timeout=60, what=f"{count} fires of {trigger}")


def _now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _stays_quiet(server: Server, trigger: str, workflow: str) -> None:
    """No fire time after now makes a run of ``trigger``: watched over three periods of the
    2s schedule (a negative, so it takes that long by nature)."""
    since = _now()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        late = [r["cause"]["schedule_time"] for r in _fired(server, trigger, workflow)]
        assert all(t <= since for t in late), f"{trigger} fired after {since}: {late}"
        time.sleep(0.5)
    for run in _fired(server, trigger, workflow):
        assert server.wait(run["id"])["status"] in TERMINAL


def _registered(server: Server, definition: str) -> dict[str, dict[str, Any]]:
    resp = server.http.get("/triggers", params={"definition": definition})
    assert resp.status_code == 200, resp.text
    return {t["trigger"]: t for t in resp.json()}


def test_an_instance_schedule_runs_the_instance_with_its_params_until_paused(
    server: Server,
) -> None:
    name = "inst-own"
    _live(server, name, SPEC.replace("NAME", name))
    own = {"beat": {"every": "2s", "params": {"when": "${{ schedule.time }}"}}}
    _instance(server, "night", name, own)
    listed = _registered(server, name)
    assert set(listed) == {"night/beat"}
    assert (listed["night/beat"]["instance"], listed["night/beat"]["kind"]) == ("night", "schedule")

    runs = _fires(server, "night/beat", name, 3)
    for run in runs:
        assert run["instance"] == "night" and run["definition"] == name
        assert run["cause"]["kind"] == "schedule" and run["cause"]["trigger"] == "night/beat"
        # the instance's default params, the trigger's rendered ones over them
        assert (run["params"]["who"], run["params"]["when"]) == (
            "night",
            run["cause"]["schedule_time"],
        )
    assert server.wait(runs[0]["id"])["status"] == "succeeded"

    paused = server.http.post(f"/triggers/{name}/night/beat/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused_by"] == "user:admin"
    _stays_quiet(server, "night/beat", name)

    # an empty mapping removes them: no registration left
    assert _set(server, "night", {})["triggers"] == {}
    assert _registered(server, name) == {}


def test_an_instance_turns_off_a_file_trigger_for_itself_while_the_file_keeps_firing(
    server: Server,
) -> None:
    name = "inst-over"
    first = _live(server, name, SPEC.replace("NAME", name) + FILE_TICK)
    _instance(server, "mirror", name, {"tick": {}})  # the file's tick, for this instance too
    listed = _registered(server, name)
    assert set(listed) == {"tick", "mirror/tick"}
    assert listed["mirror/tick"]["spec"]["every"] == 2 and listed["tick"]["instance"] is None

    for run in _fires(server, "mirror/tick", name, 2):
        assert run["instance"] == "mirror"
        assert (run["params"]["who"], run["params"]["when"]) == (
            "mirror",
            run["cause"]["schedule_time"],
        )
    for run in _fires(server, "tick", name, 2):  # the file's runs the definition, as ever
        assert run["instance"] is None and run["params"]["who"] == "nobody"

    _set(server, "mirror", {"tick": {"enabled": False}})
    assert _registered(server, name)["mirror/tick"]["spec"]["enabled"] is False
    since = _now()
    _stays_quiet(server, "mirror/tick", name)
    _fires(server, "tick", name, 2, since=since)  # the file's own tick still fires

    # $LIVE moving registers the instance's triggers again over the new file: still off
    second = _live(server, name, SPEC.replace("NAME", name) + FILE_TICK.replace("2s", "2000ms"))
    assert second == first + 1
    listed = _registered(server, name)
    assert (listed["mirror/tick"]["version"], listed["mirror/tick"]["spec"]["enabled"]) == (
        second,
        False,
    )
    assert listed["tick"]["version"] == second


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()


def test_a_webhook_trigger_of_an_instance_runs_it_once_per_delivery(server: Server) -> None:
    resp = server.http.put("/secrets/INST_HOOK_KEY", json={"value": KEY})
    assert resp.status_code in (200, 201), resp.text
    name = "inst-hook"
    _live(server, name, SPEC.replace("NAME", name))
    hook = {
        "kind": "webhook",
        "secret": "INST_HOOK_KEY",
        "params": {"ref": "${{ event.body.ref }}"},
    }
    _instance(server, "hooky", name, {"push": hook})

    delivery = str(uuid.uuid4())
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    headers = {
        "content-type": "application/json",
        "x-github-delivery": delivery,
        "x-hub-signature-256": _sign(body),
    }
    url = f"{server.url}/api/v1/hooks/default/{name}/hooky/push"
    first = httpx.post(url, content=body, headers=headers, timeout=30)
    assert first.status_code == 202, first.text

    def decided() -> dict[str, Any] | None:
        got = server.http.get(f"/triggers/{name}/hooky/push/history")
        assert got.status_code == 200, got.text
        return next((f for f in got.json() if f["status"] != "accepted"), None)

    fire = wait_for(decided, timeout=30, what="the delivery to be handled")
    assert fire["status"] == "fired", fire
    run = server.wait(fire["run_id"])
    assert run["status"] == "succeeded" and run["instance"] == "hooky"
    assert (run["params"]["who"], run["params"]["ref"]) == ("hooky", "refs/heads/main")
    assert (run["cause"]["trigger"], run["cause"]["delivery"]) == ("hooky/push", delivery)

    again = httpx.post(url, content=body, headers=headers, timeout=30)
    assert again.status_code == 200, again.text
    assert again.json()["run_id"] == run["id"]
    runs = server.http.get("/runs", params={"workflow": name, "limit": 500}).json()["items"]
    assert [r["id"] for r in runs] == [run["id"]]


def test_bad_instance_triggers_are_refused_in_one_line_and_nothing_is_stored(
    server: Server,
) -> None:
    name = "inst-bad"
    _live(server, name, SPEC.replace("NAME", name) + FILE_TICK)
    _instance(server, "good", name, {"tick": {"enabled": False}})
    cases = [
        ({"t": {"cron": "61 * * * *"}}, "triggers.t.cron: cron of trigger 't'"),
        ({"t": {"every": "1h", "colour": "red"}}, "triggers.t.colour: unknown key 'colour'"),
        (
            {"t": {"every": "1h", "params": {"when": "${{ event.body }}"}}},
            "triggers.t.params.when: param 'when' of trigger 't' reads 'event'",
        ),
        ({"tick": {"cron": "@daily"}}, "triggers.tick.every: schedule trigger 'tick' has both"),
        ({"t": {"every": "500ms"}}, "triggers.t.every of instance 'bad' fires every 0.5s"),
    ]
    for own, expected in cases:
        made = server.http.post(
            "/instances",
            json={"name": "bad", "definition": name, "ref": "$LIVE", "triggers": own},
        )
        assert made.status_code == 400, made.text
        detail = made.json()["detail"]
        assert expected in detail and "\n" not in detail, detail
        changed = server.http.put("/instances/good/triggers", json={"triggers": own})
        assert (
            changed.status_code == 400
            and expected.replace("'bad'", "'good'") in (changed.json()["detail"])
        ), changed.text
    instances = {i["name"]: i for i in server.http.get("/instances").json()}
    assert "bad" not in instances
    assert instances["good"]["triggers"] == {"tick": {"enabled": False}}
    assert set(_registered(server, name)) == {"tick", "good/tick"}


def test_an_instance_upstream_trigger_that_closes_a_cycle_is_refused(server: Server) -> None:
    a, b = "inst-cyc-a", "inst-cyc-b"
    _live(server, a, SPEC.replace("NAME", a))
    upstream = f"triggers:\n  after-a:\n    kind: upstream\n    definition: {a}\n"
    _live(server, b, SPEC.replace("NAME", b) + upstream)  # b runs when a finishes
    made = server.http.post(
        "/instances",
        json={
            "name": "loop",
            "definition": a,
            "ref": "$LIVE",
            "triggers": {"after-b": {"kind": "upstream", "definition": b}},
        },
    )
    assert made.status_code == 400, made.text
    detail = made.json()["detail"]
    assert f"would make a cycle: {a} → {b} → {a}" in detail and "nothing was stored" in detail
    assert "loop" not in {i["name"] for i in server.http.get("/instances").json()}


def test_a_move_of_live_that_leaves_an_instance_trigger_invalid_is_refused(
    server: Server,
) -> None:
    name = "inst-drop"
    first = _live(server, name, SPEC.replace("NAME", name) + FILE_TICK)
    _instance(server, "lean", name, {"tick": {"enabled": False}})  # only inherits: no interval
    draft = server.http.put(
        f"/definitions/{name}/draft",
        content=SPEC.replace("NAME", name),  # the file no longer has `tick`
        headers={"content-type": "application/yaml"},
    )
    assert draft.status_code == 200, draft.text
    second = server.http.post(f"/definitions/{name}/publish", json={"message": "m"}).json()
    moved = server.http.put(f"/definitions/{name}/tags/$LIVE", json={"version": second["number"]})
    assert moved.status_code == 400, moved.text
    detail = moved.json()["detail"]
    assert "instance 'lean': triggers.tick: schedule trigger 'tick' needs 'cron' or 'every'" in (
        detail
    )
    assert "$LIVE did not move" in detail and "\n" not in detail
    listed = _registered(server, name)
    assert {t: r["version"] for t, r in listed.items()} == {"tick": first, "lean/tick": first}


GIT_SPEC = """\
name: inst-git
params: {type: object, properties: {commit: {type: string, default: none}, who: {type: string}}}
steps:
  a:
    run: echo "${{ params.who }} at ${{ params.commit }}"
"""


def test_a_git_trigger_of_an_instance_runs_that_instance_only(
    server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "inst-git")
    repo.commit({"workflow.yaml": GIT_SPEC, "data.txt": "one"})
    repo.push("main")
    made = server.http.post(
        "/repositories", json={"url": repo.url, "name": "inst-git-repo", "poll_s": 86400}
    )
    assert made.status_code == 201, made.text
    assert server.http.post("/repositories/inst-git-repo/scan").status_code == 200
    pushed = {"pushed": {"kind": "git", "params": {"commit": "${{ git.commit }}"}}}
    for instance, own in (("follows", pushed), ("quiet", {})):
        body = {
            "name": instance,
            "definition": "inst-git",
            "ref": "main",
            "params": [f"who={instance}"],
            "triggers": own,
        }
        resp = server.http.post("/instances", json=body)
        assert resp.status_code == 201, resp.text

    second = repo.commit({"data.txt": "two"}, message="two")
    repo.push("main")
    assert server.http.post("/repositories/inst-git-repo/scan").status_code == 200
    [run] = wait_for(lambda: _fired(server, "follows/pushed", "inst-git"), what="the push to fire")
    assert (run["instance"], run["sha"], run["params"]["commit"]) == ("follows", second, second)
    assert run["cause"]["kind"] == "git" and run["cause"]["trigger"] == "follows/pushed"
    runs = server.http.get("/runs", params={"workflow": "inst-git", "limit": 500}).json()["items"]
    assert [r["id"] for r in runs] == [run["id"]]  # the other instance of the ref: no run
