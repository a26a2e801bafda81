"""Every run says why it started: a person's run names the person, a retry names the run it
retries, and runs are listed by cause or trigger, inside their project only."""

from __future__ import annotations

import httpx

from tests.harness import Server

SPEC = "name: cause-wf\nsteps:\n  a:\n    run: test -e /nonexistent-cause-marker\n"


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


def _given(cause: dict[str, str | None]) -> dict[str, str | None]:
    """The fields a cause has (the record shows the others as null)."""
    return {k: v for k, v in cause.items() if v is not None}


def test_runs_record_who_or_what_started_them_and_list_by_it(server: Server) -> None:
    with _person(server, "cause-ann") as ann:
        submitted = ann.post("/runs", json={"spec": SPEC})
    assert submitted.status_code == 201, submitted.text
    original = server.wait(submitted.json()["id"])
    assert original["status"] == "failed"
    assert _given(original["cause"]) == {"kind": "manual", "user": "cause-ann"}

    admin = server.api.get("/me").json()["user"]
    retried = server.http.post(f"/runs/{original['id']}/retry")
    assert retried.status_code == 201, retried.text
    retry = server.wait(retried.json()["id"])
    assert _given(retry["cause"]) == {"kind": "retry", "of": original["id"], "user": admin}
    assert retry["retry_of"] == original["id"]

    def listed(**filters: str) -> list[str]:
        resp = server.http.get("/runs", params={"workflow": "cause-wf", "limit": 500, **filters})
        assert resp.status_code == 200, resp.text
        return [r["id"] for r in resp.json()["items"]]

    assert listed(cause="manual") == [original["id"]]
    assert listed(cause="RETRY") == [retry["id"]]  # kinds in any case, like statuses
    assert listed(cause="schedule") == []
    assert listed(trigger="nightly") == []  # no trigger started any of them
    items = server.http.get("/runs", params={"workflow": "cause-wf"}).json()["items"]
    assert {r["id"]: r["cause"]["kind"] for r in items} == {
        original["id"]: "manual",
        retry["id"]: "retry",
    }


def test_a_bad_cause_filter_is_one_line_naming_the_kinds(server: Server) -> None:
    resp = server.http.get("/runs", params={"cause": "telepathy"})
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/problem+json"
    detail = resp.json()["detail"]
    assert "\n" not in detail
    assert detail.startswith("unknown cause 'telepathy'; use one of: manual, retry, rerun,")
    long = server.http.get("/runs", params={"trigger": "t" * 1000})
    assert long.status_code == 422


def test_another_projects_run_is_not_found_nor_listed_by_cause(server: Server) -> None:
    run = server.run_and_wait("name: cause-private\nsteps: {a: {run: 'true'}}\n")
    assert server.api.post("/projects", json={"name": "cause-other"}).status_code in (201, 409)
    other = "/projects/cause-other/runs"
    assert server.api.get(f"{other}/{run['id']}").status_code == 404
    page = server.api.get(other, params={"cause": "manual"})
    assert page.status_code == 200
    assert run["id"] not in {r["id"] for r in page.json()["items"]}
