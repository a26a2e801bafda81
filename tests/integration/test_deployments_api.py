"""The deployments API as another client sees it: env overrides shown old -> new and never
written into the published version, a plan read back by id, bad bodies refused, and another
project's deployment unreachable."""

from __future__ import annotations

from typing import Any

from tests.harness import Server

PIPELINE = """\
kind: pipeline
name: {name}
nodes:
  tick:
    kind: source
    run: ./tick
    env: {{EVERY: "5"}}
  log:
    kind: sink
    run: cat
    from: [tick]
"""


def _published(server: Server, name: str) -> str:
    assert server.http.post("/definitions", json={"name": name}).status_code == 201
    text = PIPELINE.format(name=name)
    draft = server.http.put(
        f"/definitions/{name}/draft", content=text, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200 and not draft.json()["errors"], draft.text
    assert server.http.post(f"/definitions/{name}/publish", json={}).status_code == 201
    return text


def _plan(server: Server, name: str, **body: Any) -> dict[str, Any]:
    resp = server.http.post(f"/deployments/{name}/plans", json=body)
    assert resp.status_code == 201, resp.text
    plan: dict[str, Any] = resp.json()
    return plan


def test_overrides_change_the_deployment_not_the_version(server: Server) -> None:
    text = _published(server, "ticker")
    first = _plan(server, "ticks", version="ticker@1")
    assert server.http.post("/deployments/ticks/deploy", json={"plan": first["id"]}).is_success
    second = _plan(server, "ticks", overrides={"tick": {"EVERY": "1", "MODE": "fast"}})
    (tick,) = [n for n in second["nodes"] if n["node"] == "tick"]
    assert tick["action"] == "update"
    assert tick["fields"] == [
        {"field": "env", "old": {"EVERY": "5"}, "new": {"EVERY": "1", "MODE": "fast"}}
    ]
    again = server.http.get(f"/deployments/ticks/plans/{second['id']}")
    assert again.status_code == 200 and again.json()["nodes"] == second["nodes"]
    assert again.json()["applied_generation"] is None
    done = server.http.post("/deployments/ticks/deploy", json={"plan": second["id"]})
    assert done.status_code == 200 and done.json()["generation"] == 2, done.text
    assert server.http.get("/deployments/ticks").json()["desired"]["overrides"] == {
        "tick": {"EVERY": "1", "MODE": "fast"}
    }
    # the published version is exactly what was published
    version = server.http.get("/definitions/ticker/versions/1").json()
    assert version["spec"] == text
    # a plan without overrides keeps the deployed ones
    kept = _plan(server, "ticks", replicas={"log": 2})
    assert [n["node"] for n in kept["nodes"] if n["action"] == "update"] == ["log"]


def test_bad_bodies_are_refused_and_nothing_is_kept(server: Server) -> None:
    _published(server, "ticker2")
    bad_env = server.http.post(
        "/deployments/t2/plans",
        json={"version": "ticker2@1", "overrides": {"tick": {"BAD NAME": "x"}}},
    )
    assert bad_env.status_code == 422
    ghost = server.http.post(
        "/deployments/t2/plans", json={"version": "ticker2@1", "overrides": {"ghost": {"A": "b"}}}
    )
    assert ghost.status_code == 400, ghost.text
    assert ghost.json()["detail"] == "overrides name node 'ghost', which ticker2 lacks"
    no_version = server.http.post("/deployments/t2/plans", json={})
    assert no_version.status_code == 400
    assert "has nothing deployed yet; give --version" in no_version.json()["detail"]
    unknown = server.http.post("/deployments/t2/deploy", json={"plan": "f" * 16})
    assert unknown.status_code == 404
    assert server.http.get("/deployments/t2").status_code == 404
    assert "t2" not in {d["name"] for d in server.http.get("/deployments").json()}


def test_another_projects_deployment_is_not_found(server: Server) -> None:
    _published(server, "ticker3")
    plan = _plan(server, "mine", version="ticker3@1")
    assert server.http.post("/deployments/mine/deploy", json={"plan": plan["id"]}).is_success
    assert server.api.post("/projects", json={"name": "deploy-other"}).status_code == 201
    other = server.api.get("/projects/deploy-other/deployments/mine")
    assert other.status_code == 404
    assert (
        server.api.post(
            "/projects/deploy-other/deployments/mine/deploy", json={"plan": plan["id"]}
        ).status_code
        == 404
    )
    assert (
        server.api.get(f"/projects/deploy-other/deployments/mine/plans/{plan['id']}").status_code
        == 404
    )
