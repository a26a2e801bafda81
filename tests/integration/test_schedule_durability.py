"""Schedule triggers across crashes: a server killed over several fire times catches up within
`catchup_window` without firing any time twice, a Schedule lost while registered is made
again when the server starts, and one no registered trigger names is deleted then."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError, RPCStatusCode

from tests.harness import Server, wait_for
from tests.receivers import http_receiver

SPEC = """\
name: durable-tick
steps:
  a:
    run: "true"
triggers:
  tick:
    every: 2s
    catchup_window: 1m
    overlap: allow
"""


def _fired(server: Server, workflow: str = "durable-tick") -> list[dict[str, Any]]:
    resp = server.http.get("/runs", params={"workflow": workflow, "limit": 500})
    assert resp.status_code == 200, resp.text
    return [r for r in resp.json()["items"] if r["cause"]["kind"] == "schedule"]


def _go_live(server: Server, name: str, spec: str) -> None:
    assert server.http.post("/definitions", json={"name": name}).status_code == 201
    draft = server.http.put(
        f"/definitions/{name}/draft", content=spec, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    assert server.http.post(f"/definitions/{name}/publish", json={}).status_code == 201
    live = server.http.put(f"/definitions/{name}/tags/$LIVE", json={"version": 1})
    assert live.status_code == 200, live.text


def _times(server: Server) -> list[str]:
    return [r["cause"]["schedule_time"] for r in _fired(server)]


def _now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _fires_after(server: Server, moment: str) -> list[str]:
    return wait_for(
        lambda: [t for t in _times(server) if t > moment],
        timeout=90,
        what=f"a fire after {moment}",
    )


def _delete_schedule(home: Path) -> None:
    address = json.loads((home / "server.json").read_text())["temporal"]

    async def delete() -> None:
        client = await Client.connect(address)
        async for listed in await client.list_schedules():
            if listed.id.startswith("lockstep-trigger-default-durable-tick-tick-"):
                await client.get_schedule_handle(listed.id).delete()
                return
        raise AssertionError("the trigger's Schedule was not found")

    asyncio.run(delete())


def test_a_crash_over_fire_times_catches_up_once_and_a_lost_schedule_comes_back(
    home: Path,
) -> None:
    server = Server(home)
    server.start()
    try:
        _go_live(server, "durable-tick", SPEC)
        wait_for(lambda: len(_times(server)) >= 2, timeout=60, what="two fires")

        server.kill9()
        down_from = _now()
        time.sleep(7)  # the outage itself: three fire times pass with no server and no engine
        server.start()
        up_at = _now()
        after = _fires_after(server, up_at)
        times = _times(server)
        assert len(times) == len(set(times)), f"a fire time made two runs: {sorted(times)}"
        # overlap: allow, so every fire time of the outage within the window fires (with skip,
        # a fire still waiting on its run at the crash makes the catch-up skip them)
        caught_up = [t for t in times if down_from < t <= up_at]
        assert len(caught_up) >= 3, f"the outage's fire times: {sorted(times)}, up {up_at}"
        assert after

        # a Schedule lost while its trigger is registered is made again at the next start
        _delete_schedule(home)
        server.stop()
        server.start()
        restarted = _now()
        _fires_after(server, restarted)
        times = _times(server)
        assert len(times) == len(set(times)), f"a fire time made two runs: {sorted(times)}"
    finally:
        server.stop()


HOURLY = """\
name: orphaned
steps:
  a:
    run: "true"
triggers:
  tick:
    every: 1h
"""


def _schedule_ids(address: str) -> set[str]:
    async def listed() -> set[str]:
        client = await Client.connect(address)
        return {s.id async for s in await client.list_schedules()}

    return asyncio.run(listed())


def _exists(address: str, schedule: str) -> bool:
    """Whether the Schedule is there (asked of it, not of the eventually consistent list)."""

    async def described() -> bool:
        client = await Client.connect(address)
        try:
            await client.get_schedule_handle(schedule).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    return asyncio.run(described())


def test_a_schedule_no_trigger_names_is_deleted_at_the_next_start(home: Path) -> None:
    server = Server(home)
    server.start()
    try:
        assert server.http.post("/definitions", json={"name": "orphaned"}).status_code == 201
        draft = server.http.put(
            "/definitions/orphaned/draft", content=HOURLY, headers={"content-type": "text/yaml"}
        )
        assert draft.status_code == 200, draft.text
        assert server.http.post("/definitions/orphaned/publish", json={}).status_code == 201
        live = server.http.put("/definitions/orphaned/tags/$LIVE", json={"version": 1})
        assert live.status_code == 200, live.text
        address = json.loads((home / "server.json").read_text())["temporal"]
        [real] = [s for s in _schedule_ids(address) if s.startswith("lockstep-trigger-")]
        # what a removal that failed leaves: a Schedule of this server's that no row names;
        # and one of another lockstep sharing the engine (its fires go to its own queue)
        stray = "lockstep-trigger-default-gone-tick-0123456789ab"
        foreign = "lockstep-trigger-default-elsewhere-tick-0123456789ab"

        async def make() -> None:
            client = await Client.connect(address)
            schedule = (await client.get_schedule_handle(real).describe()).schedule
            await client.create_schedule(stray, schedule)
            action = schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            schedule.action = dataclasses.replace(action, task_queue="another-lockstep.triggers")
            await client.create_schedule(foreign, schedule)

        asyncio.run(make())
        # the listing (what the server reads at start) shows a new Schedule after a moment
        wait_for(
            lambda: {real, stray, foreign} <= _schedule_ids(address),
            timeout=30,
            every=0.2,
            what="the listing to show the made Schedules",
        )
        server.stop()
        server.start()
        address = json.loads((home / "server.json").read_text())["temporal"]
        wait_for(
            lambda: not _exists(address, stray), timeout=60, every=0.5, what="the orphan deleted"
        )
        assert _exists(address, real) and _exists(address, foreign)
    finally:
        server.stop()


MISSING = """\
name: missing-tick
steps:
  a:
    run: "true"
triggers:
  tick:
    every: 2s
    catchup_window: 10s
    overlap: allow
"""


def test_fire_times_dropped_past_the_catchup_window_are_recorded_and_told(home: Path) -> None:
    server = Server(home, LOCKSTEP_OUTBOUND_ALLOW="127.0.0.1/32", LOCKSTEP_RECONCILE_INTERVAL="1")
    server.start()
    with http_receiver() as chat:
        try:
            made = server.http.post(
                "/notifications/channels",
                json={"name": "ops", "kind": "slack", "settings": {"url": chat.url}},
            )
            assert made.status_code == 201, made.text
            told = server.http.post(
                "/notifications/subscriptions",
                json={"channel": "ops", "events": ["schedule.missed"]},
            )
            assert told.status_code == 201, told.text
            _go_live(server, "missing-tick", MISSING)
            wait_for(lambda: [r for r in _fired(server, "missing-tick")], timeout=60, what="a fire")
            assert chat.calls == []  # nothing was missed while the engine was up

            server.kill9()
            time.sleep(16)  # the outage: fire times older than the 10s window are dropped
            server.start()

            calls = wait_for(lambda: chat.calls, timeout=60, what="the schedule.missed message")
            said = json.dumps(calls[0].body)
            assert "schedule.missed" in said and "missing-tick" in said and "tick" in said
            history = server.http.get("/triggers/missing-tick/tick/history").json()
            missed = [f for f in history if f["status"] == "missed"]
            assert len(missed) == 1 and "catchup_window" in missed[0]["error"]
            listed = {r["trigger"]: r for r in server.http.get("/triggers").json()}
            assert listed["tick"]["last_error"] == missed[0]["error"]
            # the times within the window still fired, each once
            times = [r["cause"]["schedule_time"] for r in _fired(server, "missing-tick")]
            assert len(times) == len(set(times)), sorted(times)
        finally:
            server.stop()
