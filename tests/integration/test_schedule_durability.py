"""Schedule triggers across crashes: a server killed over several fire times catches up within
`catchup_window` without firing any time twice, and a Schedule lost while registered is made
again when the server starts."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client

from tests.harness import Server, wait_for

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


def _fired(server: Server) -> list[dict[str, Any]]:
    resp = server.http.get("/runs", params={"workflow": "durable-tick", "limit": 500})
    assert resp.status_code == 200, resp.text
    return [r for r in resp.json()["items"] if r["cause"]["kind"] == "schedule"]


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
        assert server.http.post("/definitions", json={"name": "durable-tick"}).status_code == 201
        draft = server.http.put(
            "/definitions/durable-tick/draft",
            content=SPEC,
            headers={"content-type": "application/yaml"},
        )
        assert draft.status_code == 200, draft.text
        assert server.http.post("/definitions/durable-tick/publish", json={}).status_code == 201
        live = server.http.put("/definitions/durable-tick/tags/$LIVE", json={"version": 1})
        assert live.status_code == 200, live.text
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
