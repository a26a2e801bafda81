"""Authentication, roles, tenancy and audit on a real server.

The matrix is driven by the live OpenAPI document: a route that is not in the table below
fails the test, so no endpoint can be added without deciding who may call it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import httpx
import pytest

from tests.harness import Server

ROLES = ("viewer", "operator", "maintainer", "admin")
#: (method, path template) -> the least project role, or "public" / "anyone" / "superuser" /
#: "worker" (a worker token or a superuser's)
POLICY: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/health"): "public",
    ("GET", "/api/v1/me"): "anyone",
    ("GET", "/api/v1/workers"): "anyone",
    ("POST", "/api/v1/workers/tokens"): "superuser",
    ("GET", "/api/v1/worker/config"): "worker",
    ("POST", "/api/v1/worker/report"): "worker",
    ("POST", "/api/v1/worker/secrets"): "worker",
    ("GET", "/api/v1/worker/blobs"): "worker",
    ("POST", "/api/v1/worker/logs"): "worker",
    ("PUT", "/api/v1/worker/blobs"): "worker",
    ("GET", "/api/v1/projects/{project}/runs/{run_id}/artifacts"): "viewer",
    ("GET", "/api/v1/projects/{project}/runs/{run_id}/artifacts/{step}/{name}"): "viewer",
    ("GET", "/api/v1/projects"): "anyone",
    ("POST", "/api/v1/projects"): "superuser",
    ("GET", "/api/v1/projects/{project}"): "viewer",
    ("GET", "/api/v1/projects/{project}/members"): "admin",
    ("PUT", "/api/v1/projects/{project}/members"): "admin",
    ("DELETE", "/api/v1/projects/{project}/members/{user}"): "admin",
    ("POST", "/api/v1/tokens"): "anyone",
    ("GET", "/api/v1/tokens"): "anyone",
    ("DELETE", "/api/v1/tokens/{token_id}"): "anyone",
    ("POST", "/api/v1/projects/{project}/runs"): "operator",
    ("GET", "/api/v1/projects/{project}/runs"): "viewer",
    ("GET", "/api/v1/projects/{project}/runs/events"): "viewer",
    ("GET", "/api/v1/projects/{project}/runs/{run_id}"): "viewer",
    ("GET", "/api/v1/projects/{project}/runs/{run_id}/steps"): "viewer",
    ("GET", "/api/v1/projects/{project}/runs/{run_id}/steps/{step}/items"): "viewer",
    ("GET", "/api/v1/projects/{project}/runs/{run_id}/outputs/{name}"): "viewer",
    ("GET", "/api/v1/projects/{project}/runs/{run_id}/graph"): "viewer",
    ("GET", "/api/v1/projects/{project}/runs/{run_id}/logs"): "viewer",
    ("POST", "/api/v1/projects/{project}/runs/{run_id}/cancel"): "operator",
    ("POST", "/api/v1/projects/{project}/runs/{run_id}/retry"): "operator",
    ("POST", "/api/v1/projects/{project}/snapshots"): "operator",
    ("GET", "/api/v1/projects/{project}/audit"): "admin",
    ("GET", "/api/v1/audit"): "superuser",
    ("GET", "/metrics"): "superuser",
    ("GET", "/api/v1/doctor"): "superuser",
    ("GET", "/api/v1/projects/{project}/workloads"): "viewer",
    ("GET", "/api/v1/projects/{project}/fleet"): "viewer",
    ("PUT", "/api/v1/projects/{project}/secrets/{name}"): "maintainer",
    ("GET", "/api/v1/projects/{project}/secrets"): "maintainer",
    ("DELETE", "/api/v1/projects/{project}/secrets/{name}"): "maintainer",
    ("POST", "/api/v1/projects/{project}/repositories"): "maintainer",
    ("GET", "/api/v1/projects/{project}/repositories"): "viewer",
    ("POST", "/api/v1/projects/{project}/repositories/{name}/scan"): "maintainer",
    ("DELETE", "/api/v1/projects/{project}/repositories/{name}"): "maintainer",
    ("GET", "/api/v1/projects/{project}/definitions"): "viewer",
    ("GET", "/api/v1/projects/{project}/definitions/{name}"): "viewer",
    ("GET", "/api/v1/projects/{project}/definitions/{name}/versions"): "viewer",
    ("POST", "/api/v1/projects/{project}/definitions"): "maintainer",
    ("GET", "/api/v1/projects/{project}/definitions/{name}/draft"): "viewer",
    ("PUT", "/api/v1/projects/{project}/definitions/{name}/draft"): "maintainer",
    ("POST", "/api/v1/projects/{project}/definitions/{name}/publish"): "maintainer",
    ("GET", "/api/v1/projects/{project}/definitions/{name}/versions/{number}"): "viewer",
    (
        "POST",
        "/api/v1/projects/{project}/definitions/{name}/versions/{number}/archive",
    ): "maintainer",
    ("GET", "/api/v1/projects/{project}/resolve"): "viewer",
    ("GET", "/api/v1/projects/{project}/diff"): "viewer",
    ("GET", "/api/v1/projects/{project}/definitions/{name}/tags"): "viewer",
    ("GET", "/api/v1/projects/{project}/definitions/{name}/tags/{tag}"): "viewer",
    ("PUT", "/api/v1/projects/{project}/definitions/{name}/tags/{tag}"): "maintainer",
    ("GET", "/api/v1/projects/{project}/definitions/{name}/history"): "viewer",
    ("POST", "/api/v1/hooks/git"): "signed",
    ("POST", "/api/v1/hooks/{project}/{definition}/{trigger}"): "signed",
    ("POST", "/api/v1/hooks/{project}/{definition}/{instance}/{trigger}"): "signed",
    ("POST", "/api/v1/hooks/{project}/{trigger}"): "signed",
    ("POST", "/api/v1/projects/{project}/instances"): "maintainer",
    ("GET", "/api/v1/projects/{project}/instances"): "viewer",
    ("PUT", "/api/v1/projects/{project}/instances/{name}/triggers"): "maintainer",
    ("POST", "/api/v1/projects/{project}/instances/{name}/runs"): "operator",
    ("POST", "/api/v1/projects/{project}/runs/{run_id}/rerun"): "operator",
    ("POST", "/api/v1/projects/{project}/notifications/channels"): "maintainer",
    ("GET", "/api/v1/projects/{project}/notifications/channels"): "viewer",
    ("DELETE", "/api/v1/projects/{project}/notifications/channels/{name}"): "maintainer",
    ("POST", "/api/v1/projects/{project}/notifications/subscriptions"): "maintainer",
    ("GET", "/api/v1/projects/{project}/notifications/subscriptions"): "viewer",
    (
        "DELETE",
        "/api/v1/projects/{project}/notifications/subscriptions/{subscription}",
    ): "maintainer",
    ("GET", "/api/v1/projects/{project}/notifications/deliveries"): "viewer",
    ("GET", "/api/v1/projects/{project}/triggers"): "viewer",
    ("POST", "/api/v1/projects/{project}/triggers/{definition}/{trigger}/pause"): "maintainer",
    ("POST", "/api/v1/projects/{project}/triggers/{definition}/{trigger}/resume"): "maintainer",
    ("POST", "/api/v1/projects/{project}/triggers/{definition}/{trigger}/fire"): "maintainer",
    ("POST", "/api/v1/projects/{project}/triggers/{definition}/{trigger}/backfill"): "maintainer",
    ("GET", "/api/v1/projects/{project}/triggers/{definition}/{trigger}/history"): "viewer",
    ("GET", "/api/v1/projects/{project}/resources"): "viewer",
    ("POST", "/api/v1/projects/{project}/resources"): "maintainer",
    ("GET", "/api/v1/projects/{project}/resources/{name}"): "viewer",
    ("GET", "/api/v1/projects/{project}/resources/{name}/versions"): "viewer",
    ("POST", "/api/v1/projects/{project}/resources/{name}/versions"): "maintainer",
    ("GET", "/api/v1/projects/{project}/resources/{name}/diff"): "viewer",
    ("GET", "/api/v1/projects/{project}/approvals"): "viewer",
    ("GET", "/api/v1/projects/{project}/runs/{run_id}/approvals/{step}"): "viewer",
    # any member may be named an approver: the step's own list decides (tested apart)
    ("POST", "/api/v1/projects/{project}/runs/{run_id}/approvals/{step}/approve"): "viewer",
    ("POST", "/api/v1/projects/{project}/runs/{run_id}/approvals/{step}/reject"): "viewer",
    ("GET", "/api/v1/projects/{project}/deployments"): "viewer",
    ("GET", "/api/v1/projects/{project}/deployments/{name}"): "viewer",
    ("DELETE", "/api/v1/projects/{project}/deployments/{name}"): "maintainer",
    ("POST", "/api/v1/projects/{project}/deployments/{name}/plans"): "maintainer",
    ("GET", "/api/v1/projects/{project}/deployments/{name}/plans/{plan_id}"): "viewer",
    ("POST", "/api/v1/projects/{project}/deployments/{name}/deploy"): "maintainer",
    ("POST", "/api/v1/projects/{project}/deployments/{name}/rollback"): "maintainer",
    ("POST", "/api/v1/projects/{project}/deployments/{name}/pause"): "maintainer",
    ("POST", "/api/v1/projects/{project}/deployments/{name}/policy"): "maintainer",
    ("POST", "/api/v1/projects/{project}/deployments/{name}/resume"): "maintainer",
    ("GET", "/api/v1/projects/{project}/deployments/{name}/events"): "viewer",
}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/projects"): {"name": "made-by-matrix"},
    ("PUT", "/api/v1/projects/{project}/members"): {"user": "someone", "role": "viewer"},
    ("POST", "/api/v1/tokens"): {"name": "matrix"},
    ("POST", "/api/v1/workers/tokens"): {"name": "matrix"},
    ("POST", "/api/v1/projects/{project}/runs"): {"spec": "name: m\nsteps: {a: {run: 'true'}}\n"},
    ("PUT", "/api/v1/projects/{project}/secrets/{name}"): {"value": "matrix-value"},
    ("POST", "/api/v1/projects/{project}/repositories"): {"url": "file:///nonexistent/repo.git"},
    ("POST", "/api/v1/projects/{project}/definitions"): {"name": "matrix-def"},
    ("PUT", "/api/v1/projects/{project}/definitions/{name}/tags/{tag}"): {"version": 1},
    ("POST", "/api/v1/projects/{project}/definitions/{name}/publish"): {},
    ("POST", "/api/v1/projects/{project}/instances"): {
        "name": "m",
        "definition": "nothing-here",
        "ref": "main",
    },
    ("PUT", "/api/v1/projects/{project}/instances/{name}/triggers"): {"triggers": {}},
}


@pytest.fixture(scope="module")
def people(server: Server) -> dict[str, str]:
    """A token per role in project 'default', and one for a member of another project only."""
    assert server.api.post("/projects", json={"name": "beta"}).status_code in (201, 409)
    tokens: dict[str, str] = {}
    for role in ROLES:
        user = f"user-{role}"
        resp = server.http.put("/members", json={"user": user, "role": role})
        assert resp.status_code in (200, 201), resp.text
        tokens[role] = _token_for(server, user)
    resp = server.api.put("/projects/beta/members", json={"user": "outsider", "role": "admin"})
    assert resp.status_code in (200, 201), resp.text
    tokens["outsider"] = _token_for(server, "outsider")
    resp = server.api.post("/workers/tokens", json={"name": "matrix-box"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["user"] == "worker.matrix-box"
    tokens["worker"] = resp.json()["token"]
    return tokens


#: the routes outside the OpenAPI document, served without a token: the API's own description,
#: which holds no data (README, "Projects, tokens, roles, secrets and audit"). With the "public" ones of POLICY, this is
#: every route a caller without a token can reach.
PUBLIC_DOCS = ("/api/v1/openapi.json", "/api/v1/docs")


def test_the_api_description_is_public_and_nothing_else_outside_the_document(
    server: Server,
) -> None:
    for path in PUBLIC_DOCS:
        resp = httpx.get(server.url + path)
        assert resp.status_code == 200, path
        assert server.token not in resp.text
    for path in ("/docs", "/docs/oauth2-redirect", "/api/v1/redoc", "/openapi.json"):
        assert httpx.get(server.url + path).status_code == 404, path
    public = sorted(route for route, need in POLICY.items() if need == "public")
    assert public == [("GET", "/api/v1/health")]


def _token_for(server: Server, user: str) -> str:
    resp = server.api.post("/tokens", json={"name": f"t-{user}", "user": user})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["token"])


def _routes(server: Server) -> list[tuple[str, str]]:
    doc = httpx.get(server.url + "/api/v1/openapi.json").json()
    return [(m.upper(), p) for p, ops in doc["paths"].items() for m in ops]


def _call(server: Server, token: str | None, method: str, path: str) -> httpx.Response:
    url = (
        path.replace("{project}", "default")
        .replace("{run_id}", "rnotthere")
        .replace("{user}", "nobody")
        .replace("{token_id}", "t_0000000000000000")
    )
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body = BODIES.get((method, path))
    with httpx.stream(method, server.url + url, headers=headers, json=body, timeout=30) as resp:
        # a stream that was let through never ends: its status and headers are what is checked
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            return httpx.Response(resp.status_code, headers=resp.headers, content=b"")
        resp.read()
        return resp


def test_every_route_has_a_policy(server: Server) -> None:
    assert sorted(_routes(server)) == sorted(POLICY)


@pytest.mark.parametrize(("method", "path"), sorted(POLICY))
def test_role_matrix(server: Server, people: dict[str, str], method: str, path: str) -> None:
    need = POLICY[(method, path)]
    if need == "signed":  # no token helps: only the repository's signature does
        for role in ROLES:
            assert _call(server, people[role], method, path).status_code in (400, 401)
        return
    for role in ROLES:
        resp = _call(server, people[role], method, path)
        if need in ("public", "anyone") or (
            need in ROLES and ROLES.index(role) >= ROLES.index(need)
        ):
            assert resp.status_code not in (401, 403), (role, resp.text)
            assert "project 'default' not found" not in resp.text, (role, resp.text)
        else:
            assert resp.status_code == 403, (role, method, path, resp.status_code, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
    # a worker's token opens the worker API and nothing else
    worker = _call(server, people["worker"], method, path)
    if need == "worker":
        assert worker.status_code not in (401, 403), worker.text
    elif "{project}" in path and need not in ("public", "signed"):
        assert worker.status_code == 404, (method, path, worker.text)
    elif need not in ("public", "anyone", "signed"):
        assert worker.status_code == 403, (method, path, worker.status_code, worker.text)
    if "{project}" in path and need != "signed":
        # a member of another project learns nothing about this one, not even that it exists
        resp = _call(server, people["outsider"], method, path)
        assert resp.status_code == 404, resp.text
        assert resp.json()["detail"] == "project 'default' not found"


@pytest.mark.parametrize(("method", "path"), sorted(POLICY))
@pytest.mark.parametrize("token", [None, "lst_" + "x" * 43, "not-a-token", "Bearer", ""])
def test_every_non_public_route_needs_a_valid_token(
    server: Server, method: str, path: str, token: str | None
) -> None:
    resp = _call(server, token, method, path)
    if POLICY[(method, path)] == "public":
        assert resp.status_code == 200
    elif POLICY[(method, path)] == "signed":
        assert resp.status_code in (400, 401)
    else:
        assert resp.status_code == 401, resp.text
        assert resp.headers["www-authenticate"].startswith("Bearer")


def test_revoked_and_expired_tokens_stop_working_at_once(server: Server) -> None:
    created = server.api.post("/tokens", json={"name": "short-lived"}).json()
    token, token_id = created["token"], created["id"]
    me = httpx.get(server.url + "/api/v1/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["user"] == "admin"
    assert server.api.delete(f"/tokens/{token_id}").status_code == 204
    again = httpx.get(server.url + "/api/v1/me", headers={"authorization": f"Bearer {token}"})
    assert again.status_code == 401 and again.json()["detail"] == "token revoked"
    # expiry: move a fresh token's expiry into the past, as time passing would
    other = server.api.post("/tokens", json={"name": "expiring", "expires_in_days": 1}).json()
    db = sqlite3.connect(server.home / "lockstep.db")
    with db:
        db.execute(
            "UPDATE tokens SET expires_at = '2000-01-01T00:00:00Z' WHERE id = ?", (other["id"],)
        )
    db.close()
    late = httpx.get(
        server.url + "/api/v1/me", headers={"authorization": f"Bearer {other['token']}"}
    )
    assert late.status_code == 401 and late.json()["detail"] == "token expired"


def test_only_the_hash_of_a_token_is_stored(server: Server) -> None:
    token = server.api.post("/tokens", json={"name": "hashed"}).json()["token"]
    raw = b"".join(p.read_bytes() for p in server.home.glob("lockstep.db*"))
    assert token.encode() not in raw
    assert hashlib.sha256(token.encode()).hexdigest().encode() in raw


def test_mutating_calls_are_audited_with_who_what_and_result(
    server: Server, people: dict[str, str]
) -> None:
    op = {"authorization": f"Bearer {people['operator']}"}
    ok = httpx.post(
        server.url + "/api/v1/projects/default/runs",
        json={"spec": "name: audited\nsteps: {a: {run: 'true'}}\n"},
        headers=op,
    )
    assert ok.status_code == 201
    denied = httpx.put(
        server.url + "/api/v1/projects/default/members",
        json={"user": "x", "role": "admin"},
        headers=op,
    )
    assert denied.status_code == 403
    log = server.http.get("/audit", params={"limit": 50}).json()
    mine = [e for e in log if e["user"] == "user-operator"]
    actions = {(e["action"], e["status"]) for e in mine}
    assert ("POST /api/v1/projects/default/runs", 201) in actions
    assert ("PUT /api/v1/projects/default/members", 403) in actions
    assert all(e["token"] and e["address"] == "127.0.0.1" for e in mine)
    # the log is append-only, even to direct SQL
    db = sqlite3.connect(server.home / "lockstep.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit")
    db.close()
    # runs record who started them
    assert server.run(ok.json()["id"])["triggered_by"] == "user:user-operator"


def test_projects_isolate_runs_and_snapshots(server: Server, people: dict[str, str]) -> None:
    run = server.run_and_wait("name: private\nsteps: {a: {run: 'echo secret-ish'}}\n")
    outsider = {"authorization": f"Bearer {people['outsider']}"}
    for path in (f"/projects/beta/runs/{run['id']}", f"/projects/beta/runs/{run['id']}/logs"):
        resp = httpx.get(server.url + "/api/v1" + path, headers=outsider)
        assert resp.status_code == 404
    listed = httpx.get(server.url + "/api/v1/projects/beta/runs", headers=outsider).json()
    assert run["id"] not in {r["id"] for r in listed["items"]}
    # a snapshot uploaded to 'default' cannot be used from 'beta', even knowing its key
    key = server.upload(server.home / "blobs")  # any directory will do
    resp = httpx.post(
        server.url + "/api/v1/projects/beta/runs",
        headers=outsider,
        json={"spec": "name: x\nsteps: {a: {run: 'true'}}\n", "snapshot": key},
    )
    # the same answer as for a key that never existed: nothing about 'default' leaks
    assert resp.status_code == 400
    assert resp.json()["detail"] == f"snapshot '{key}' not found; upload it first"
