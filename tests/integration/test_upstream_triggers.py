"""Upstream and resource triggers on a real server: a finished run starts the definitions
listening for it with its outputs, a status filter picks which endings fire, a moved tag or a
new version starts its watchers with the old and new version numbers; and going live refuses
an upstream cycle, a too-frequent schedule or a trigger naming a missing definition, the tag
staying where it was."""

from __future__ import annotations

from typing import Any

from tests.harness import Server, wait_for
from tests.integration.test_schedule_triggers import _go_live, _publish


def _cause(run: dict[str, Any]) -> dict[str, Any]:
    """The fields of the run's cause that are set."""
    return {k: v for k, v in run["cause"].items() if v is not None}


def _runs(server: Server, workflow: str, trigger: str | None = None) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"workflow": workflow, "limit": 100}
    if trigger:
        query["trigger"] = trigger
    resp = server.http.get("/runs", params=query)
    assert resp.status_code == 200, resp.text
    return [server.run(r["id"]) for r in resp.json()["items"]]


def _one_run(server: Server, workflow: str, trigger: str | None = None) -> dict[str, Any]:
    [run] = wait_for(
        lambda: _runs(server, workflow, trigger), timeout=60, what=f"a run of {workflow}"
    )
    return server.wait(run["id"])


def _define(server: Server, name: str, text: str) -> None:
    assert server.http.post("/definitions", json={"name": name}).status_code == 201
    _go_live(server, _publish(server, text, name=name), name=name)


def _live(server: Server, name: str) -> int | None:
    tags = server.http.get(f"/definitions/{name}/tags")
    assert tags.status_code == 200, tags.text
    return next((t["version"] for t in tags.json() if t["tag"] == "$LIVE"), None)


BUILD = """\
name: up-build
params:
  type: object
  properties: {tag: {type: string, default: v1}}
steps:
  build:
    run: echo "image=registry.example/app:${{ params.tag }}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  image: ${{ steps.build.outputs.image }}
"""
DEPLOY = """\
name: up-deploy
params:
  type: object
  properties: {image: {type: string}}
  required: [image]
steps:
  deploy:
    run: echo "url=https://deploy.example/${{ params.image }}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  url: ${{ steps.deploy.outputs.url }}
triggers:
  after-build:
    kind: upstream
    definition: up-build
    params: {image: '${{ upstream.outputs.image }}'}
"""
CHECK = """\
name: up-check
params:
  type: object
  properties: {url: {type: string}, deployed_by: {type: string}}
  required: [url, deployed_by]
steps:
  check:
    run: echo "checking ${{ params.url }}"
triggers:
  after-deploy:
    kind: upstream
    definition: up-deploy
    params:
      url: '${{ upstream.outputs.url }}'
      deployed_by: '${{ upstream.run_id }}'
"""


def test_an_upstream_chain_passes_each_runs_outputs_to_the_next(server: Server) -> None:
    _define(server, "up-build", BUILD)
    _define(server, "up-deploy", DEPLOY)
    _define(server, "up-check", CHECK)
    started = server.http.post("/runs", json={"selector": "up-build@$LIVE", "args": ["tag=v7"]})
    assert started.status_code == 201, started.text
    build = server.wait(started.json()["id"])
    assert build["status"] == "succeeded" and build["cause"]["kind"] == "manual"

    deploy = _one_run(server, "up-deploy")
    assert _cause(deploy) == {
        "kind": "upstream",
        "trigger": "after-build",
        "upstream_run": build["id"],
    }
    assert deploy["params"] == {"image": "registry.example/app:v7"}
    assert deploy["status"] == "succeeded" and deploy["version"] == 1

    check = _one_run(server, "up-check")
    assert _cause(check) == {
        "kind": "upstream",
        "trigger": "after-deploy",
        "upstream_run": deploy["id"],
    }
    assert check["params"] == {
        "url": "https://deploy.example/registry.example/app:v7",
        "deployed_by": deploy["id"],
    }
    history = server.http.get("/triggers/up-deploy/after-build/history")
    assert history.status_code == 200, history.text
    [fire] = history.json()
    assert (fire["status"], fire["run_id"], fire["key"]) == ("fired", deploy["id"], build["id"])


FLAKY = """\
name: up-flaky
steps:
  x:
    run: exit 3
"""
WATCH = """\
name: up-watch
params:
  type: object
  properties: {ending: {type: string}}
steps:
  note:
    run: echo "upstream ended ${{ params.ending }}"
triggers:
  on-success:
    kind: upstream
    definition: up-flaky
    params: {ending: '${{ upstream.status }}'}
  on-failure:
    kind: upstream
    definition: up-flaky
    status: [failed]
    params: {ending: '${{ upstream.status }}'}
  on-nightly:
    kind: upstream
    definition: up-flaky
    instance: nightly
    status: [failed]
    params: {ending: '${{ upstream.instance }}'}
"""


def test_a_failed_upstream_run_fires_only_the_triggers_listening_for_failures_and_its_instance(
    server: Server,
) -> None:
    _define(server, "up-flaky", FLAKY)
    _define(server, "up-watch", WATCH)
    started = server.http.post("/runs", json={"selector": "up-flaky@$LIVE"})
    assert started.status_code == 201, started.text
    flaky = server.wait(started.json()["id"])
    assert flaky["status"] == "failed"

    run = _one_run(server, "up-watch", "on-failure")
    assert run["params"] == {"ending": "failed"}
    assert run["cause"]["upstream_run"] == flaky["id"]
    # both triggers heard the same finish in one pass: the one for successes made nothing
    assert [r["cause"]["trigger"] for r in _runs(server, "up-watch")] == ["on-failure"]
    quiet = server.http.get("/triggers/up-watch/on-success/history")
    assert quiet.status_code == 200 and quiet.json() == [], quiet.text
    # a plain run of the definition is no run of instance 'nightly': that trigger stayed quiet
    assert server.http.get("/triggers/up-watch/on-nightly/history").json() == []

    made = server.http.post(
        "/instances", json={"name": "nightly", "definition": "up-flaky", "ref": "$LIVE"}
    )
    assert made.status_code == 201, made.text
    through = server.http.post("/instances/nightly/runs", json={})
    assert through.status_code == 201, through.text
    nightly = server.wait(through.json()["id"])
    assert (nightly["status"], nightly["instance"]) == ("failed", "nightly")
    run = _one_run(server, "up-watch", "on-nightly")
    assert run["params"] == {"ending": "nightly"}
    assert run["cause"]["upstream_run"] == nightly["id"]


LISTENS_TO = """\
name: NAME
steps:
  a:
    run: echo hi
triggers:
  after:
    kind: upstream
    definition: UPSTREAM
"""


def test_an_upstream_cycle_is_refused_before_live_moves(server: Server) -> None:
    x = LISTENS_TO.replace("NAME", "cyc-x").replace("UPSTREAM", "cyc-y")
    assert server.http.post("/definitions", json={"name": "cyc-y"}).status_code == 201
    y1 = _publish(server, "name: cyc-y\nsteps:\n  a:\n    run: echo one\n", name="cyc-y")
    _go_live(server, y1, name="cyc-y")
    _define(server, "cyc-x", x)

    # y listening to x would close x → y → x
    y2 = _publish(server, LISTENS_TO.replace("NAME", "cyc-y").replace("UPSTREAM", "cyc-x"), "cyc-y")
    refused = server.http.put("/definitions/cyc-y/tags/$LIVE", json={"version": y2})
    assert refused.status_code == 400, refused.text
    detail = refused.json()["detail"]
    assert "cycle: cyc-y → cyc-x → cyc-y" in detail and "$LIVE did not move" in detail
    assert "\n" not in detail
    assert _live(server, "cyc-y") == y1
    dry = server.http.put("/definitions/cyc-y/tags/$LIVE", json={"version": y2, "dry_run": True})
    assert dry.status_code == 400 and "cycle" in dry.json()["detail"], dry.text

    # a definition listening to itself is the shortest cycle
    assert server.http.post("/definitions", json={"name": "cyc-self"}).status_code == 201
    own = _publish(
        server, LISTENS_TO.replace("NAME", "cyc-self").replace("UPSTREAM", "cyc-self"), "cyc-self"
    )
    selfish = server.http.put("/definitions/cyc-self/tags/$LIVE", json={"version": own})
    assert selfish.status_code == 400, selfish.text
    assert "cycle: cyc-self → cyc-self" in selfish.json()["detail"]
    assert _live(server, "cyc-self") is None
    assert server.http.get("/triggers", params={"definition": "cyc-self"}).json() == []


def test_triggers_naming_a_missing_definition_or_firing_too_often_are_refused(
    server: Server,
) -> None:
    # a definition of another project is not this project's: not found
    assert server.api.post("/projects", json={"name": "up-other"}).status_code in (201, 409)
    other = server.api.post("/projects/up-other/definitions", json={"name": "elsewhere"})
    assert other.status_code == 201, other.text
    assert server.http.post("/definitions", json={"name": "bad-refs"}).status_code == 201
    cases = [
        (LISTENS_TO.replace("UPSTREAM", "elsewhere"), "triggers.after.definition", "elsewhere"),
        (
            "name: NAME\nsteps:\n  a:\n    run: echo\ntriggers:\n  watch:\n    kind: resource\n"
            "    tag: {definition: nobody, tag: $STAGING}\n",
            "triggers.watch.tag.definition",
            "nobody",
        ),
        (
            "name: NAME\nsteps:\n  a:\n    run: echo\ntriggers:\n  watch:\n    kind: resource\n"
            "    versions_of: nobody\n",
            "triggers.watch.versions_of",
            "nobody",
        ),
    ]
    for text, field, missing in cases:
        number = _publish(server, text.replace("NAME", "bad-refs"), name="bad-refs")
        resp = server.http.put("/definitions/bad-refs/tags/$LIVE", json={"version": number})
        assert resp.status_code == 400, resp.text
        detail = resp.json()["detail"]
        assert field in detail and f"definition '{missing}' not found" in detail, detail
        assert "project 'default'" in detail
        assert _live(server, "bad-refs") is None

    # the test server allows a schedule every second (LOCKSTEP_SCHEDULE_MIN_INTERVAL=1)
    fast = "name: bad-refs\nsteps:\n  a:\n    run: echo\ntriggers:\n  fast:\n    every: 500ms\n"
    number = _publish(server, fast, name="bad-refs")
    resp = server.http.put("/definitions/bad-refs/tags/$LIVE", json={"version": number})
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert "triggers.fast.every" in detail and "every 0.5s" in detail, detail
    assert "LOCKSTEP_SCHEDULE_MIN_INTERVAL" in detail
    assert _live(server, "bad-refs") is None
    assert server.http.get("/triggers", params={"definition": "bad-refs"}).json() == []


RESOURCE = """\
name: res-watch
params:
  type: object
  properties: {kind: {type: string}, old: {}, new: {}}
steps:
  a:
    run: echo "changed"
triggers:
  on-live:
    kind: resource
    tag: {definition: res-src, tag: $LIVE}
    params: {kind: '${{ resource.kind }}', old: '${{ resource.old }}', new: '${{ resource.new }}'}
  on-version:
    kind: resource
    versions_of: res-src
    params: {kind: '${{ resource.kind }}', old: '${{ resource.old }}', new: '${{ resource.new }}'}
"""


def _changes(server: Server, trigger: str, count: int) -> list[tuple[Any, ...]]:
    def seen() -> list[dict[str, Any]]:
        runs = _runs(server, "res-watch", trigger)
        return runs if len(runs) >= count else []

    runs = wait_for(seen, timeout=60, what=f"{count} runs of {trigger}")
    for run in runs:
        assert _cause(run) == {"kind": "resource", "trigger": trigger}
    return sorted(
        ((r["params"]["kind"], r["params"]["old"], r["params"]["new"]) for r in runs),
        key=lambda c: c[2],
    )


def test_a_moved_tag_and_a_new_version_fire_their_watchers_with_old_and_new(
    server: Server,
) -> None:
    # the watched definition exists before its watcher goes live (with no version yet)
    assert server.http.post("/definitions", json={"name": "res-src"}).status_code == 201
    _define(server, "res-watch", RESOURCE)
    source = "name: res-src\nsteps:\n  a:\n    run: echo VERSION\n"
    one = _publish(server, source.replace("VERSION", "one"), name="res-src")
    server.http.put("/definitions/res-src/tags/$STAGING", json={"version": one}).raise_for_status()
    _go_live(server, one, name="res-src")
    two = _publish(server, source.replace("VERSION", "two"), name="res-src")
    _go_live(server, two, name="res-src")
    assert (one, two) == (1, 2)

    assert _changes(server, "on-version", 2) == [("version", None, 1), ("version", 1, 2)]
    # $STAGING moved first, and is not watched: only the two $LIVE moves fired
    assert _changes(server, "on-live", 2) == [("tag", None, 1), ("tag", 1, 2)]
    assert len(_runs(server, "res-watch")) == 4
    # publishing the same content again is no new version, and no tag move is no fire
    same = server.http.put(
        "/definitions/res-src/draft",
        content=source.replace("VERSION", "two"),
        headers={"content-type": "application/yaml"},
    )
    assert same.status_code == 200, same.text
    again = server.http.post("/definitions/res-src/publish", json={"message": "again"})
    assert again.status_code == 200 and again.json()["created"] is False, again.text
    _go_live(server, two, name="res-src")
    history = server.http.get("/triggers/res-watch/on-live/history").json()
    assert sorted(f["key"] for f in history) == ["tag:$LIVE:1", "tag:$LIVE:2"]
