"""Two lockstep servers, each with its own home (and its own engine), on one PostgreSQL
database: the same webhook delivery sent to both, many times at once, makes one fire and one
run — the fire's unique key and the run's idempotency key hold across processes; and scans of
one repository through both at once register each commit once and fire its git trigger once."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.gitrepo import Repo
from tests.harness import Server, wait_for
from tests.integration.test_schedule_triggers import _go_live, _publish
from tests.postgres import Postgres

SPEC = """\
name: shared-hook
steps:
  a:
    run: echo "delivered"
triggers:
  hook:
    kind: webhook
    auth: token
    secret: SHARED_HOOK
"""
TOKEN = "shared-hook-token"


@pytest.fixture
def servers(postgres: Postgres, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    # one database, and one key for the secrets in it (each home would make its own)
    shared = {
        "LOCKSTEP_DATABASE_URL": postgres.database(),
        "LOCKSTEP_SECRET_KEY": Fernet.generate_key().decode(),
        "LOCKSTEP_GIT_ALLOW_FILE": "true",
    }
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    a = Server(first, **shared)
    a.start()
    # the database has its administrator already: the second server makes none
    shutil.copy(first / "admin.token", second / "admin.token")
    b = Server(second, **shared)
    try:
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


def test_one_delivery_sent_to_two_servers_on_one_database_makes_one_run(
    servers: tuple[Server, Server],
) -> None:
    a, b = servers
    assert a.http.put("/secrets/SHARED_HOOK", json={"value": TOKEN}).status_code == 201
    assert a.http.post("/definitions", json={"name": "shared-hook"}).status_code == 201
    _go_live(a, _publish(a, SPEC, name="shared-hook"), name="shared-hook")
    # the second server sees the trigger registered by the first
    assert [t["trigger"] for t in b.http.get("/triggers").json()] == ["hook"]

    delivery = str(uuid.uuid4())

    def send(server: Server) -> httpx.Response:
        return httpx.post(
            f"{server.url}/api/v1/hooks/default/shared-hook/hook",
            json={"n": 1},
            headers={"authorization": f"Bearer {TOKEN}", "x-github-delivery": delivery},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(send, [a, b] * 5))
    assert all(r.status_code in (200, 202) for r in answers), [r.text for r in answers]
    assert sum(r.status_code == 202 for r in answers) == 1, [r.status_code for r in answers]
    assert len({r.json()["fire"] for r in answers}) == 1

    def fired() -> list[dict[str, Any]]:
        history = a.http.get("/triggers/shared-hook/hook/history").json()
        return history if history and history[0]["status"] == "fired" else []

    [fire] = wait_for(fired, timeout=60, what="the delivery's fire to make its run")
    for server in (a, b):
        runs = server.http.get("/runs", params={"trigger": "hook"}).json()["items"]
        assert [r["id"] for r in runs] == [fire["run_id"]], server.url
    run = wait_for(
        lambda: (got := a.run(fire["run_id"]))["finished_at"] and got,
        timeout=60,
        what="the run to finish",
    )
    assert run["status"] == "succeeded" and run["cause"]["delivery"] == delivery


PUSHED = """name: scanned-twice
steps:
  read:
    run: echo "sha=${{ run.sha }}" >> "$LOCKSTEP_OUTPUTS"
triggers:
  on-push:
    kind: git
    branches: [main]
"""


def test_scans_through_two_servers_at_once_register_and_fire_each_commit_once(
    servers: tuple[Server, Server], tmp_path: Path
) -> None:
    a, b = servers
    repo = Repo(tmp_path / "repo")
    repo.commit({"workflow.yaml": PUSHED}, message="first")
    repo.push("main")
    made = a.http.post("/repositories", json={"url": repo.url, "name": "twice", "poll_s": 86400})
    assert made.status_code == 201, made.text

    def scan(server: Server) -> httpx.Response:
        return server.http.post("/repositories/twice/scan")

    def scan_both() -> None:
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(scan, [a, b] * 3))
        assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
        assert all(r.json()["repository"]["error"] is None for r in answers)

    scan_both()  # the definition registered once, its first version once
    assert a.http.put("/definitions/scanned-twice/tags/$LIVE", json={"version": 1}).is_success
    sha = repo.commit({"workflow.yaml": PUSHED + "# a change\n"}, message="second")
    repo.push("main")
    scan_both()  # the new commit seen by six scans at once: one version, one fire, one run
    for server in (a, b):
        versions = server.http.get("/definitions/scanned-twice/versions").json()
        assert sorted(v["number"] for v in versions) == [1, 2], server.url
    fired = wait_for(
        lambda: a.http.get("/runs", params={"trigger": "on-push"}).json()["items"],
        timeout=60,
        what="the push's run",
    )
    run = a.wait(fired[0]["id"], timeout=60)
    assert run["status"] == "succeeded" and run["steps"]["read"]["outputs"]["sha"] == sha
    scan_both()  # nothing new: nothing more
    assert len(b.http.get("/runs", params={"trigger": "on-push"}).json()["items"]) == 1
