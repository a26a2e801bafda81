"""Versions, drafts, tags and selectors: publish, promote, roll back, and the bad inputs that
must change nothing. A real server; git-backed selectors use real local repositories."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.gitrepo import Repo, git
from tests.harness import Server

SPEC = """\
name: {name}
params:
  type: object
  properties:
    who: {{type: string, default: world}}
steps:
  hello:
    run: echo "said=v{n} ${{{{ params.who }}}}" >> "$LOCKSTEP_OUTPUTS"
"""


def _spec(name: str, n: int) -> str:
    return SPEC.format(name=name, n=n)


def _publish(server: Server, name: str, text: str, expect: int = 201) -> dict[str, Any]:
    draft = server.http.put(
        f"/definitions/{name}/draft", content=text, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    resp = server.http.post(f"/definitions/{name}/publish", json={"message": "m"})
    assert resp.status_code == expect, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _new_definition(server: Server, name: str) -> None:
    resp = server.http.post("/definitions", json={"name": name})
    assert resp.status_code == 201, resp.text


def _tag(server: Server, name: str, version: int, **extra: Any) -> Any:
    return server.http.put(f"/definitions/{name}/tags/$LIVE", json={"version": version, **extra})


def _run(server: Server, selector: str, *args: str) -> dict[str, Any]:
    resp = server.http.post("/runs", json={"selector": selector, "args": list(args)})
    assert resp.status_code == 201, resp.text
    return server.wait(resp.json()["id"])


def test_publish_promote_and_roll_back(server: Server) -> None:
    _new_definition(server, "promo")
    first = _publish(server, "promo", _spec("promo", 1))
    assert (first["number"], first["created"], first["origin"]) == (1, True, "published")
    assert first["publisher"] == "user:admin" and first["message"] == "m"
    # the same content again is the same version, not a duplicate
    again = _publish(server, "promo", _spec("promo", 1), expect=200)
    assert (again["number"], again["created"]) == (1, False)
    assert _tag(server, "promo", 1).status_code == 200

    a = _run(server, "promo@$LIVE", "who=ann")
    assert a["steps"]["hello"]["outputs"] == {"said": "v1 ann"}
    assert _publish(server, "promo", _spec("promo", 2))["number"] == 2
    moved = _tag(server, "promo", 2, expect=1, reason="release 2")
    assert moved.json()["moved"] and moved.json()["from"] == 1
    b = _run(server, "promo")  # a bare name means $LIVE
    rollback = _tag(server, "promo", 1, expect=2, reason="v2 is broken")
    assert rollback.status_code == 200, rollback.text
    c = _run(server, "promo@$LIVE")
    assert [r["version"] for r in (a, b, c)] == [1, 2, 1]
    assert [r["selector"] for r in (a, b, c)] == ["promo@$LIVE", "promo", "promo@$LIVE"]
    assert c["steps"]["hello"]["outputs"] == {"said": "v1 world"}
    assert a["definition"] == "promo" and a["sha"] is None

    history = server.http.get("/definitions/promo/history").json()
    assert [(h["from"], h["to"], h["reason"]) for h in history] == [
        (None, 1, None),
        (1, 2, "release 2"),
        (2, 1, "v2 is broken"),
    ]
    assert all(h["by"] == "user:admin" and h["at"] for h in history)
    # the tagged version in one call, spec included
    tagged = server.http.get("/definitions/promo/tags/$LIVE").json()
    assert (tagged["number"], tagged["tags"]) == (1, ["$LIVE"]) and "said=v1" in tagged["spec"]
    # a version by number runs whatever the tag says
    assert _run(server, "promo@2")["version"] == 2


def test_expect_is_compare_and_set(server: Server) -> None:
    _new_definition(server, "cas")
    for n in (1, 2):
        _publish(server, "cas", _spec("cas", n))
    _tag(server, "cas", 1)
    stale = _tag(server, "cas", 2, expect=2)
    assert stale.status_code == 409
    assert stale.json()["current"] == 1 and "points at version 1" in stale.json()["detail"]
    assert server.http.get("/definitions/cas/tags/$LIVE").json()["number"] == 1


def test_twenty_concurrent_tag_moves_leave_one_consistent_history(server: Server) -> None:
    _new_definition(server, "race")
    for n in (1, 2, 3):
        _publish(server, "race", _spec("race", n))
    results: list[int] = []

    def move(i: int) -> None:
        resp = _tag(server, "race", i % 3 + 1, reason=f"client {i}")
        results.append(resp.status_code)

    threads = [threading.Thread(target=move, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 20
    history = server.http.get("/definitions/race/history").json()
    # every recorded move starts where the previous one ended; the tag is where the last ended
    assert history[0]["from"] is None
    assert all(prev["to"] == nxt["from"] for prev, nxt in itertools.pairwise(history))
    assert all(h["from"] != h["to"] for h in history)
    assert server.http.get("/definitions/race/tags/$LIVE").json()["number"] == history[-1]["to"]

    # compare-and-set from 20 clients that all saw the same target: exactly one wins
    current = history[-1]["to"]
    target = current % 3 + 1
    codes: list[int] = []

    def cas() -> None:
        codes.append(_tag(server, "race", target, expect=current).status_code)

    threads = [threading.Thread(target=cas) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [409] * 19
    assert len(server.http.get("/definitions/race/history").json()) == len(history) + 1


def test_versions_and_tag_history_cannot_be_changed_in_the_database(server: Server) -> None:
    _new_definition(server, "frozen")
    _publish(server, "frozen", _spec("frozen", 1))
    _tag(server, "frozen", 1)
    db = sqlite3.connect(server.home / "lockstep.db")
    try:
        for sql in (
            "UPDATE versions SET spec_text = 'x'",
            "DELETE FROM versions",
            "UPDATE tag_moves SET to_version = 9",
            "DELETE FROM tag_moves",
        ):
            with pytest.raises(sqlite3.IntegrityError, match=r"immutable|append-only"):
                db.execute(sql)
    finally:
        db.close()


def test_archive_hides_a_version_and_runs_keep_it(server: Server) -> None:
    _new_definition(server, "arch")
    for n in (1, 2):
        _publish(server, "arch", _spec("arch", n))
    _tag(server, "arch", 2)
    busy = server.http.post("/definitions/arch/versions/2/archive")
    assert busy.status_code == 409 and "$LIVE" in busy.text
    assert server.http.post("/definitions/arch/versions/1/archive").status_code == 204
    listed = [v["number"] for v in server.http.get("/definitions/arch/versions").json()]
    assert listed == [2]
    everything = server.http.get("/definitions/arch/versions", params={"archived": "true"})
    assert [(v["number"], v["archived"]) for v in everything.json()] == [(1, True), (2, False)]
    assert _run(server, "arch@1")["steps"]["hello"]["outputs"]["said"] == "v1 world"


def test_an_instance_that_follows_a_tag_runs_its_new_target(server: Server) -> None:
    _new_definition(server, "follow")
    for n in (1, 2):
        _publish(server, "follow", _spec("follow", n))
    _tag(server, "follow", 1)
    made = server.http.post(
        "/instances", json={"name": "follow-live", "definition": "follow", "ref": "$LIVE"}
    )
    assert made.status_code == 201, made.text

    def run() -> dict[str, Any]:
        resp = server.http.post("/instances/follow-live/runs", json={})
        assert resp.status_code == 201, resp.text
        return server.wait(resp.json()["id"])

    assert run()["version"] == 1
    _tag(server, "follow", 2)
    assert run()["version"] == 2


def test_diff_and_dry_run(server: Server) -> None:
    _new_definition(server, "diffed")
    _publish(server, "diffed", _spec("diffed", 1))
    changed = _spec("diffed", 2).replace(
        "who: {type: string, default: world}", "who: {type: string, default: world, maxLength: 10}"
    )
    _publish(server, "diffed", changed)
    _tag(server, "diffed", 1)
    diff = server.http.get("/diff", params={"from": "diffed@1", "to": "diffed@2"}).json()
    assert diff["breaking"] is True
    assert "1 step changed" in diff["summary"] and diff["lines"]
    dry = _tag(server, "diffed", 2, dry_run=True).json()
    assert (dry["moved"], dry["dry_run"], dry["from"]) == (False, True, 1)
    assert dry["diff"]["breaking"] is True
    assert server.http.get("/definitions/diffed/tags/$LIVE").json()["number"] == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("POST", "/runs", {"selector": "nobody@1"}, 404, "definition 'nobody' not found"),
        ("POST", "/runs", {"selector": "bad-in@9"}, 404, "version 9 of 'bad-in' not found"),
        ("POST", "/runs", {"selector": "bad-in@$NOPE"}, 404, "tag $NOPE is not set"),
        ("POST", "/runs", {"selector": "bad-in@$live"}, 400, "invalid tag name"),
        ("POST", "/runs", {"selector": "bad-in @1"}, 400, "contains spaces"),
        ("POST", "/runs", {"selector": "bad-in@a..b"}, 400, "contains '..'"),
        ("POST", "/runs", {"selector": "bad-in@" + "x" * 193}, 422, "at most 150"),
        ("POST", "/runs", {"selector": "bad-in@main"}, 400, "published through the API"),
        ("POST", "/runs", {"selector": "bad-in@1", "spec": "x"}, 400, "exactly one"),
        ("PUT", "/definitions/bad-in/tags/LIVE", {"version": 1}, 422, "tag"),
        ("PUT", "/definitions/bad-in/tags/$LIVE", {"version": 7}, 404, "version 7"),
        ("PUT", "/definitions/bad-in/tags/$LIVE", {"version": 1, "expect": 3}, 409, "not set"),
        # version 2 exists, but of other-def: a tag only points within its own definition
        ("PUT", "/definitions/bad-in/tags/$LIVE", {"version": 2}, 404, "version 2 of 'bad-in'"),
        ("POST", "/definitions", {"name": "bad-in"}, 409, "already exists"),
        ("POST", "/definitions", {"name": "Bad In"}, 422, "name"),
    ],
)
def test_bad_input_is_one_clear_error_and_changes_nothing(
    server: Server, method: str, path: str, body: dict[str, Any], status: int, says: str
) -> None:
    for name, count in (("bad-in", 1), ("other-def", 2)):
        if server.http.get(f"/definitions/{name}").status_code == 404:
            _new_definition(server, name)
            for n in range(1, count + 1):
                _publish(server, name, _spec(name, n))
    before = _state(server)
    resp = server.http.request(method, path, json=body)
    assert resp.status_code == status, resp.text
    assert says in resp.json()["detail"], resp.text
    assert _state(server) == before


def _state(server: Server) -> Any:
    return [
        server.http.get("/definitions/bad-in/versions").json(),
        server.http.get("/definitions/bad-in/history").json(),
        len(server.http.get("/runs", params={"limit": 500}).json()["items"]),
    ]


def test_an_invalid_draft_is_saved_with_its_errors_but_never_published(server: Server) -> None:
    _new_definition(server, "drafty")
    _publish(server, "drafty", _spec("drafty", 1))
    bad = "name: drafty\nsteps:\n  hello:\n    rnu: echo typo\n"
    saved = server.http.put("/definitions/drafty/draft", content=bad)
    assert saved.status_code == 200
    assert saved.json()["valid"] is False
    assert any("drafty.yaml:4:5: unknown key 'rnu'" in e for e in saved.json()["errors"])
    resp = server.http.post("/definitions/drafty/publish", json={})
    assert resp.status_code == 422
    assert any(d["line"] == 4 for d in resp.json()["diagnostics"])
    assert [v["number"] for v in server.http.get("/definitions/drafty/versions").json()] == [1]
    # JSON is accepted as well
    as_json = '{"name": "drafty", "steps": {"hello": {"run": "true"}}}'
    assert server.http.put("/definitions/drafty/draft", content=as_json).json()["valid"] is True
    assert _publish(server, "drafty", as_json)["number"] == 2


def test_git_selectors_branch_tag_sha_and_ambiguity(server: Server, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "sel")
    spec = 'name: gitsel\nsteps:\n  a:\n    run: echo "v=$(cat v.txt)" >> "$LOCKSTEP_OUTPUTS"\n'
    one = repo.commit({"workflow.yaml": spec, "v.txt": "one"})
    git(repo.work, "tag", "v1.0")
    repo.push("main", "v1.0")
    server.http.post(
        "/repositories",
        json={"url": repo.url, "name": "sel", "tags": ["v*"], "poll_s": 86400},
    )
    assert server.http.post("/repositories/sel/scan").status_code == 200  # version 1
    two = repo.commit({"workflow.yaml": spec + "  b: {run: 'true', needs: [a]}\n", "v.txt": "two"})
    repo.push("main")
    git(repo.work, "tag", "main", one)  # a tag named like the branch, at another commit
    git(repo.work, "push", "origin", "refs/tags/main")
    assert server.http.post("/repositories/sel/scan").status_code == 200  # version 2

    ambiguous = server.http.post("/runs", json={"selector": "gitsel@main"})
    assert ambiguous.status_code == 400
    detail = ambiguous.json()["detail"]
    assert "ambiguous" in detail and "refs/heads/main" in detail and "refs/tags/main" in detail
    branch = _run(server, "gitsel@refs/heads/main")
    assert (branch["sha"], branch["version"]) == (two, 2)
    assert branch["steps"]["a"]["outputs"] == {"v": "two"}
    tagged = _run(server, "gitsel@v1.0")
    assert (tagged["sha"], tagged["version"]) == (one, 1)
    # a prefix of only digits would be a version number: take the shortest that is not
    prefix = next(one[:n] for n in range(7, 41) if not one[:n].isdigit())
    by_sha = _run(server, f"gitsel@{prefix}")
    assert (by_sha["sha"], by_sha["steps"]["a"]["outputs"]) == (one, {"v": "one"})
    by_number = _run(server, "gitsel@1")
    assert (by_number["sha"], by_number["version"]) == (one, 1)
    unknown = server.http.post("/runs", json={"selector": "gitsel@nope"})
    assert unknown.status_code == 404
    not_here = server.http.post("/definitions/gitsel/draft", content="x")
    assert not_here.status_code == 405
    push_instead = server.http.put("/definitions/gitsel/draft", content=spec)
    assert push_instead.status_code == 400 and "push to it" in push_instead.text
    # a short SHA that two recorded commits share is ambiguous, and the error lists both
    twins = ["abcdef1" + "0" * 33, "abcdef1" + "1" * 33]
    db = sqlite3.connect(server.home / "lockstep.db")
    try:
        (def_id,) = db.execute("SELECT id FROM definitions WHERE name = 'gitsel'").fetchone()
        for sha in twins:
            db.execute(
                "INSERT INTO version_sources (definition_id, number, sha, path, seen_at) "
                "VALUES (?, 1, ?, 'workflow.yaml', '2026-01-01T00:00:00Z')",
                (def_id, sha),
            )
        db.commit()
    finally:
        db.close()
    twin = server.http.post("/runs", json={"selector": "gitsel@abcdef1"})
    assert twin.status_code == 400
    assert all(f"commit {sha}" in twin.json()["detail"] for sha in twins)


def test_resolve_shows_the_params_schema_a_run_of_the_version_takes(server: Server) -> None:
    _new_definition(server, "v-schema")
    _publish(server, "v-schema", _spec("v-schema", 1))
    _publish(server, "v-schema", "name: v-schema\nsteps:\n  a:\n    run: 'true'\n")
    first = server.http.get("/resolve", params={"selector": "v-schema@1"}).json()
    assert first["params_schema"]["properties"] == {"who": {"type": "string", "default": "world"}}
    assert (
        server.http.get("/resolve", params={"selector": "v-schema@2"}).json()["params_schema"]
        is None
    )
