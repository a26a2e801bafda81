"""A schedule trigger starts runs by itself once its definition's version is $LIVE: each run
says which trigger and fire time started it, and a version that disables the trigger stops it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.harness import TERMINAL, Server, wait_for

SPEC = """\
name: ticking
params:
  type: object
  properties: {when: {type: string, default: never}}
steps:
  a:
    run: echo "fired for ${{ params.when }}"
triggers:
  tick:
    every: 2s
    enabled: ENABLED
    params: {when: '${{ schedule.time }}'}
"""


@pytest.fixture(autouse=True)
def _schedules_stop_with_the_test(server: Server) -> Iterator[None]:
    yield
    server.pause_schedules()


def _publish(server: Server, text: str, name: str = "ticking") -> int:
    draft = server.http.put(
        f"/definitions/{name}/draft", content=text, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    resp = server.http.post(f"/definitions/{name}/publish", json={"message": "m"})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["number"])


def _go_live(server: Server, number: int, name: str = "ticking") -> None:
    resp = server.http.put(f"/definitions/{name}/tags/$LIVE", json={"version": number})
    assert resp.status_code == 200, resp.text


def _fired(server: Server, workflow: str = "ticking") -> list[dict[str, Any]]:
    resp = server.http.get("/runs", params={"trigger": "tick", "workflow": workflow, "limit": 500})
    assert resp.status_code == 200, resp.text
    return [server.run(r["id"]) for r in resp.json()["items"]]


def _stays_quiet(server: Server, why: str, workflow: str = "ticking") -> None:
    """No fire time after now makes a run: watched over two periods of the 2s schedule (a
    negative, so it takes that long by nature)."""
    since = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        late = [r["cause"]["schedule_time"] for r in _fired(server, workflow)]
        assert all(t <= since for t in late), f"fired after {why}: {late} (since {since})"
        time.sleep(0.5)
    for run in _fired(server, workflow):
        assert server.wait(run["id"])["status"] in TERMINAL


def _registered(server: Server, definition: str = "ticking") -> list[dict[str, Any]]:
    resp = server.http.get("/triggers", params={"definition": definition})
    assert resp.status_code == 200, resp.text
    got: list[dict[str, Any]] = resp.json()
    return got


def _three_fires(server: Server, version: int, workflow: str = "ticking") -> list[dict[str, Any]]:
    def fired() -> list[dict[str, Any]]:
        runs = [r for r in _fired(server, workflow) if r["version"] == version]
        return runs if len({r["cause"]["schedule_time"] for r in runs}) >= 3 else []

    return wait_for(fired, timeout=60, what=f"three fires of version {version}")


def test_an_every_2s_schedule_fires_runs_until_paused_and_a_pause_holds_across_versions(
    server: Server,
) -> None:
    assert server.http.post("/definitions", json={"name": "ticking"}).status_code == 201
    _go_live(server, _publish(server, SPEC.replace("ENABLED", "true")))
    [listed] = _registered(server)
    assert (listed["trigger"], listed["kind"], listed["version"]) == ("tick", "schedule", 1)
    assert listed["spec"]["every"] == 2 and listed["paused_by"] is None

    runs = _three_fires(server, 1)
    times = sorted(r["cause"]["schedule_time"] for r in runs)
    assert len(times) == len(set(times)), "a fire time made two runs"
    for run in runs:
        assert run["cause"]["kind"] == "schedule" and run["cause"]["trigger"] == "tick"
        assert run["params"] == {"when": run["cause"]["schedule_time"]}
        assert run["definition"] == "ticking"
    instants = [datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ") for t in times]
    assert all(b - a >= timedelta(seconds=2) for a, b in itertools.pairwise(instants))
    # the fire times themselves, not when a fire got round to it: an interval's times are
    # counted from the epoch, so every 2s lands on even seconds
    assert all(t.second % 2 == 0 for t in instants), times
    assert server.wait(runs[0]["id"])["status"] == "succeeded"

    paused = server.http.post("/triggers/ticking/tick/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused_by"] == "user:admin"
    _stays_quiet(server, "the trigger was paused")
    # a new live version re-registers the trigger; the person's pause holds
    _go_live(server, _publish(server, SPEC.replace("ENABLED", "true").replace("2s", "2000ms")))
    assert [(t["version"], t["paused_by"]) for t in _registered(server)] == [(2, "user:admin")]
    _stays_quiet(server, "a new version of a paused trigger went live")

    resumed = server.http.post("/triggers/ticking/tick/resume")
    assert resumed.status_code == 200 and resumed.json()["paused_by"] is None, resumed.text
    _three_fires(server, 2)
    unknown = server.http.post("/triggers/ticking/tock/pause")
    assert unknown.status_code == 404 and "'tock' of 'ticking'" in unknown.json()["detail"]


def test_a_version_that_disables_or_drops_a_trigger_stops_its_fires(server: Server) -> None:
    name = "ticking-two"
    spec = SPEC.replace("name: ticking", f"name: {name}")
    assert server.http.post("/definitions", json={"name": name}).status_code == 201
    _go_live(server, _publish(server, spec.replace("ENABLED", "true"), name=name), name=name)
    _three_fires(server, 1, name)

    _go_live(server, _publish(server, spec.replace("ENABLED", "false"), name=name), name=name)
    assert [t["spec"]["enabled"] for t in _registered(server, name)] == [False]
    _stays_quiet(server, "the trigger was disabled", name)

    again = spec.replace("ENABLED", "true").replace("2s", "2000ms")
    _go_live(server, _publish(server, again, name=name), name=name)
    _three_fires(server, 3, name)

    # a version that changes the timing changes the Temporal Schedule: its next fire is the
    # new cron's (at the start of next year), no longer two seconds away
    yearly = spec.replace("ENABLED", "true").replace("every: 2s", "cron: '0 0 1 1 *'")
    _go_live(server, _publish(server, yearly, name=name), name=name)
    [listed] = _registered(server, name)
    assert (listed["version"], listed["spec"]["cron"]) == (4, "0 0 1 1 *")
    assert listed["next_fire"] == f"{datetime.now(UTC).year + 1}-01-01T00:00:00Z", listed

    # a version without the trigger removes it: no registration, no more fires
    _go_live(server, _publish(server, spec[: spec.index("triggers:")], name=name), name=name)
    assert _registered(server, name) == []
    _stays_quiet(server, "the trigger was removed", name)


REFUSED = """\
name: refused
params:
  type: object
  properties: {when: {type: TYPE}}
  required: [when]
steps:
  a:
    run: echo "${{ params.when }}"
triggers:
  tick:
    every: 2s
    params: {when: '${{ schedule.time }}'}
"""


def test_a_fire_the_run_service_refuses_makes_no_run_and_does_not_hold_the_schedule(
    server: Server,
) -> None:
    assert server.http.post("/definitions", json={"name": "refused"}).status_code == 201
    wrong = _publish(server, REFUSED.replace("TYPE", "integer"), name="refused")
    _go_live(server, wrong, name="refused")
    # a fire time string is no integer: every fire is refused (no run), and not retried for
    # ever — a fire still retrying would hold the schedule (overlap: skip) past the fix below
    fixed = _publish(server, REFUSED.replace("TYPE", "string"), name="refused")
    wait_for(
        lambda: "trigger.fire_refused" in (server.home / "server.out").read_text(),
        timeout=30,
        what="a refused fire",
    )
    assert _fired(server, "refused") == []
    _go_live(server, fixed, name="refused")
    run = wait_for(lambda: _fired(server, "refused"), timeout=30, what="a fire after the fix")[0]
    assert run["version"] == fixed and run["params"] == {"when": run["cause"]["schedule_time"]}


SLOW = """\
name: slow-tick
steps:
  a:
    run: sleep 5
triggers:
  tick:
    every: 2s
    overlap: skip
"""


def test_overlap_skip_starts_no_run_while_the_previous_one_runs(server: Server) -> None:
    assert server.http.post("/definitions", json={"name": "slow-tick"}).status_code == 201
    _go_live(server, _publish(server, SLOW, name="slow-tick"), name="slow-tick")
    runs = wait_for(
        lambda: (
            len(got := [r for r in _fired(server, "slow-tick") if r["finished_at"]]) >= 2 and got
        ),
        timeout=90,
        what="two finished runs of the slow schedule",
    )
    assert server.http.post("/triggers/slow-tick/tick/pause").status_code == 200
    runs.sort(key=lambda r: r["created_at"])
    for earlier, later in itertools.pairwise(runs):
        # the fire times in between were skipped, not queued: the next run was made after
        # the one before had finished
        assert later["created_at"] >= earlier["finished_at"], (earlier, later)
        gap = datetime.strptime(later["cause"]["schedule_time"], "%Y-%m-%dT%H:%M:%SZ") - (
            datetime.strptime(earlier["cause"]["schedule_time"], "%Y-%m-%dT%H:%M:%SZ")
        )
        assert gap >= timedelta(seconds=4), "a fire time during the slow run was not skipped"


CANCELLING = """\
name: cancel-tick
steps:
  a:
    run: sleep 5
triggers:
  tick:
    every: 2s
    overlap: cancel_other
    end_at: END
"""


def test_overlap_cancel_other_cancels_the_running_run_and_the_last_one_runs_to_the_end(
    server: Server,
) -> None:
    name = "cancel-tick"
    # the schedule ends by itself (a pause just as a fire cancels a run would leave that run
    # cancelled with no successor: Temporal drops the start it held back)
    end = datetime.now(UTC) + timedelta(seconds=12)
    spec = CANCELLING.replace("END", f"{end:%Y-%m-%dT%H:%M:%SZ}")
    assert server.http.post("/definitions", json={"name": name}).status_code == 201
    _go_live(server, _publish(server, spec, name=name), name=name)

    def settled() -> list[dict[str, Any]]:
        runs = sorted(_fired(server, name), key=lambda r: r["cause"]["schedule_time"])
        return runs if runs and runs[-1]["status"] == "succeeded" else []

    runs = wait_for(settled, timeout=60, what="the last run of the ended schedule to succeed")
    # each fire cancelled the run before it; the last one, with no fire after it, ran to the end
    assert len(runs) >= 3, runs
    assert [r["status"] for r in runs[:-1]] == ["cancelled"] * (len(runs) - 1), runs
    for earlier, later in itertools.pairwise(runs):
        # one run at a time: the next run was made once the cancelled one had ended
        assert later["created_at"] >= earlier["finished_at"], (earlier, later)
