"""Upstream triggers across crashes and chains, on a server of their own (a low depth limit,
a kill -9): an upstream run that finished while no server was there still fires its listener,
once; a run in flight when the server is killed fires it after the restart; and a chain of
upstream-fired runs stops at the depth limit with the fire recorded failed."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import Server, cli, wait_for
from tests.integration.test_schedule_triggers import _go_live, _publish

DEPTH = 2


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("upstream-home")
    srv = Server(home, LOCKSTEP_UPSTREAM_MAX_DEPTH=str(DEPTH), LOCKSTEP_SCHEDULE_MIN_INTERVAL="60")
    srv.start()
    yield srv
    srv.stop()


def _cause(run: dict[str, Any]) -> dict[str, Any]:
    """The fields of the run's cause that are set."""
    return {k: v for k, v in run["cause"].items() if v is not None}


def _runs(server: Server, workflow: str) -> list[dict[str, Any]]:
    resp = server.http.get("/runs", params={"workflow": workflow, "limit": 100})
    assert resp.status_code == 200, resp.text
    return [server.run(r["id"]) for r in resp.json()["items"]]


def _define(server: Server, name: str, text: str) -> None:
    assert server.http.post("/definitions", json={"name": name}).status_code == 201
    _go_live(server, _publish(server, text, name=name), name=name)


SOURCE = """\
name: source
params:
  type: object
  properties: {pause: {type: string, default: "0"}}
steps:
  make:
    run: sleep ${{ params.pause }}; echo "artifact=made" >> "$LOCKSTEP_OUTPUTS"
outputs:
  artifact: ${{ steps.make.outputs.artifact }}
"""
SINK = """\
name: sink
params:
  type: object
  properties: {got: {type: string}}
steps:
  take:
    run: echo "${{ params.got }}"
triggers:
  after-source:
    kind: upstream
    definition: source
    params: {got: '${{ upstream.outputs.artifact }}'}
"""


def _sink_for(server: Server, upstream: str) -> dict[str, Any]:
    def found() -> list[dict[str, Any]]:
        return [r for r in _runs(server, "sink") if r["cause"].get("upstream_run") == upstream]

    [run] = wait_for(found, timeout=90, what=f"the sink run of {upstream}")
    return run


def test_an_upstream_finish_fires_its_listener_once_across_crashes(own_server: Server) -> None:
    server = own_server
    _define(server, "source", SOURCE)
    _define(server, "sink", SINK)

    # 1. the upstream run finishes while no server runs: an embedded `lockstep run` records
    # it (the state a kill -9 just after the finish leaves), and has no pump to hand it on
    server.kill9()
    done = cli(server.home, "run", "source@$LIVE", "--json")
    assert done.returncode == 0, done.stderr
    offline = json.loads(done.stdout)
    assert offline["status"] == "succeeded"
    server.start()
    sink = _sink_for(server, offline["id"])
    assert sink["params"] == {"got": "made"}
    assert _cause(sink) == {
        "kind": "upstream",
        "trigger": "after-source",
        "upstream_run": offline["id"],
    }

    # 2. the server is killed while the upstream run runs; it finishes after the restart
    started = server.http.post("/runs", json={"selector": "source@$LIVE", "args": ["pause=3"]})
    assert started.status_code == 201, started.text
    inflight = started.json()["id"]
    server.wait(inflight, until=lambda r: r["steps"]["make"]["status"] == "running")
    server.kill9()
    server.start()
    assert server.wait(inflight, timeout=120)["status"] == "succeeded"
    _sink_for(server, inflight)

    # each upstream run made exactly one sink run, whatever was seen twice
    server.wait(_sink_for(server, inflight)["id"])
    assert sorted(r["cause"]["upstream_run"] for r in _runs(server, "sink")) == sorted(
        [offline["id"], inflight]
    )


LINK = """\
name: NAME
steps:
  a:
    run: echo "link"
triggers:
  after:
    kind: upstream
    definition: UPSTREAM
"""


def test_a_chain_of_upstream_runs_stops_at_the_depth_limit(own_server: Server) -> None:
    server = own_server
    names = ["link-0", "link-1", "link-2", "link-3"]
    _define(server, "link-0", "name: link-0\nsteps:\n  a:\n    run: echo start\n")
    for upstream, name in itertools.pairwise(names):
        _define(server, name, LINK.replace("NAME", name).replace("UPSTREAM", upstream))
    started = server.http.post("/runs", json={"selector": "link-0@$LIVE"})
    assert started.status_code == 201, started.text

    # link-1 is one upstream hop from a person's run, link-2 two: the limit; link-3 would be 3
    def refused() -> list[dict[str, Any]]:
        fires = server.http.get("/triggers/link-3/after/history").json()
        return [f for f in fires if f["status"] != "accepted"]

    [fire] = wait_for(refused, timeout=90, what="link-3's fire decided")
    assert fire["status"] == "failed" and fire["run_id"] is None
    assert fire["error"] == f"upstream chain deeper than {DEPTH}"
    [two] = _runs(server, "link-2")
    assert fire["key"] == two["id"] and fire["cause"]["upstream_run"] == two["id"]
    [one] = _runs(server, "link-1")
    assert two["cause"]["upstream_run"] == one["id"]
    assert one["cause"]["upstream_run"] == started.json()["id"]
    assert _runs(server, "link-3") == []


def test_a_schedule_more_frequent_than_the_minimum_is_refused(own_server: Server) -> None:
    server = own_server
    assert server.http.post("/definitions", json={"name": "hasty"}).status_code == 201
    text = "name: hasty\nsteps:\n  a:\n    run: echo\ntriggers:\n  tick:\n    cron: CRON\n"
    hasty = _publish(server, text.replace("CRON", "'*/30 * * * * *'"), name="hasty")
    resp = server.http.put("/definitions/hasty/tags/$LIVE", json={"version": hasty})
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert "triggers.tick.cron" in detail and "every 30s" in detail and "(60s," in detail
    assert server.http.get("/definitions/hasty/tags").json() == []
    # once a minute is allowed
    calm = _publish(server, text.replace("CRON", "'* * * * *'"), name="hasty")
    dry = server.http.put("/definitions/hasty/tags/$LIVE", json={"version": calm, "dry_run": True})
    assert dry.status_code == 200, dry.text
