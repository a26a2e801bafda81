"""A ``kind: git`` trigger runs the instances that follow a branch or tag, once per new commit
the scanner sees (a scan, a poll or a push webhook), each locked to that commit; pinned
instances never move. Real git repositories over file://, the real server."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx

from tests.gitrepo import Repo, git
from tests.harness import Server, wait_for

PUSHED = """name: pushed-wf
params: {type: object, properties: {commit: {type: string, default: none}, who: {type: string}}}
steps:
  read:
    run: |
      echo "data=$(cat data.txt)" >> "$LOCKSTEP_OUTPUTS"
      echo "sha=${{ run.sha }}" >> "$LOCKSTEP_OUTPUTS"
      echo "who=${{ params.who }}" >> "$LOCKSTEP_OUTPUTS"
triggers:
  on-push:
    kind: git
    branches: [main, "release/*"]
    params: {commit: '${{ git.commit }}'}
"""


def _scan(server: Server, repo: str) -> None:
    resp = server.http.post(f"/repositories/{repo}/scan")
    assert resp.status_code == 200, resp.text
    assert resp.json()["repository"]["error"] is None, resp.text


def _connect(server: Server, repo: Repo, name: str) -> str:
    resp = server.http.post("/repositories", json={"url": repo.url, "name": name, "poll_s": 86400})
    assert resp.status_code == 201, resp.text
    _scan(server, name)
    return str(resp.json()["webhook_secret"])


def _go_live(server: Server, definition: str, version: int = 1) -> None:
    resp = server.http.put(f"/definitions/{definition}/tags/$LIVE", json={"version": version})
    assert resp.status_code == 200, resp.text


def _instance(server: Server, name: str, ref: str, definition: str = "pushed-wf") -> None:
    resp = server.http.post(
        "/instances",
        json={"name": name, "definition": definition, "ref": ref, "params": [f"who={name}"]},
    )
    assert resp.status_code == 201, resp.text


def _fired(server: Server, workflow: str, trigger: str = "on-push") -> list[dict[str, Any]]:
    resp = server.http.get("/runs", params={"trigger": trigger, "workflow": workflow})
    assert resp.status_code == 200, resp.text
    return sorted((server.run(r["id"]) for r in resp.json()["items"]), key=lambda r: r["id"])


def _new(server: Server, seen: set[str], workflow: str) -> list[tuple[str, str]]:
    """(instance, sha) of the runs fired since the last look (by id, not by order: run ids
    follow the wall clock, which this machine may step back)."""
    runs = [r for r in _fired(server, workflow) if r["id"] not in seen]
    seen.update(r["id"] for r in runs)
    return sorted((r["instance"], r["sha"]) for r in runs)


def _push(repo: Repo, branch: str, data: str) -> str:
    git(repo.work, "checkout", branch)
    sha = repo.commit({"data.txt": data}, message=data)
    repo.push(branch)
    return sha


def test_a_push_runs_the_instances_following_the_branch_at_the_new_commit(
    server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "pushed")
    first = repo.commit({"workflow.yaml": PUSHED, "data.txt": "one"})
    repo.push("main")
    git(repo.work, "checkout", "-b", "feature")
    repo.push("feature")
    git(repo.work, "checkout", "-b", "release/1.0")
    repo.push("release/1.0")
    _connect(server, repo, "pushed")
    _go_live(server, "pushed-wf")
    [registered] = server.http.get("/triggers", params={"definition": "pushed-wf"}).json()
    assert (registered["trigger"], registered["kind"]) == ("on-push", "git")
    for name, ref in (("tip", "main"), ("frozen", first), ("rel", "release/1.0")):
        _instance(server, name, ref)
    _instance(server, "feat", "feature")  # its branch matches no glob of the trigger

    # a push to main: the instance following main runs at the new commit; the pinned one not
    second = _push(repo, "main", "two")
    _scan(server, "pushed")
    [run] = _fired(server, "pushed-wf")
    assert (run["instance"], run["sha"], run["selector"]) == ("tip", second, f"pushed-wf@{second}")
    assert (run["cause"]["kind"], run["cause"]["trigger"]) == ("git", "on-push")
    assert run["params"] == {"commit": second, "who": "tip"}  # the instance's defaults too
    done = server.wait(run["id"])
    assert done["status"] == "succeeded", done
    assert done["steps"]["read"]["outputs"] == {"data": "two", "sha": second, "who": "tip"}
    [fire] = server.http.get("/triggers/pushed-wf/on-push/history").json()
    assert fire["event"] == {
        "ref": "refs/heads/main",
        "branch": "main",
        "tag": None,
        "commit": second,
        "before": first,
        "repository": "pushed",
        "instance": "tip",
    }
    assert (fire["status"], fire["run_id"]) == ("fired", run["id"])

    # a scan that sees no new commit fires nothing
    _scan(server, "pushed")
    assert [r["id"] for r in _fired(server, "pushed-wf")] == [run["id"]]
    seen = {run["id"]}

    # a push to another followed branch runs only its instance; an unmatched branch nothing
    third = _push(repo, "release/1.0", "three")
    _push(repo, "feature", "feature work")
    _scan(server, "pushed")
    assert _new(server, seen, "pushed-wf") == [("rel", third)]

    # two pushes between scans: one run, at the head the scan saw
    _push(repo, "main", "four")
    fifth = _push(repo, "main", "five")
    _scan(server, "pushed")
    assert _new(server, seen, "pushed-wf") == [("tip", fifth)]

    # a force-push back to a commit the instance never ran at fires for it once
    git(repo.work, "checkout", "main")
    git(repo.work, "reset", "--hard", first)
    repo.push("main", force=True)
    _scan(server, "pushed")
    _scan(server, "pushed")
    back = [r for r in _fired(server, "pushed-wf") if r["id"] not in seen]
    assert [(r["instance"], r["sha"]) for r in back] == [("tip", first)]
    assert "frozen" not in {r["instance"] for r in _fired(server, "pushed-wf")}
    assert server.wait(back[0]["id"])["steps"]["read"]["outputs"]["data"] == "one"


TAGGED = """name: tagged-wf
params: {type: object, properties: {tag: {type: string, default: none}}}
steps:
  show:
    run: echo "tag=${{ params.tag }}" >> "$LOCKSTEP_OUTPUTS"
triggers:
  release:
    kind: git
    tags: ["v*"]
    params: {tag: '${{ git.tag }}'}
"""


def test_a_signed_push_of_a_tag_runs_a_definition_without_instances_at_the_tagged_commit(
    server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "tagged")
    repo.commit({"workflow.yaml": TAGGED})
    repo.push("main")
    secret = _connect(server, repo, "tagged")
    _go_live(server, "tagged-wf")

    def hook() -> None:
        body = json.dumps({"ref": "refs/tags/v1", "repository": {"clone_url": repo.url}}).encode()
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        resp = httpx.post(
            server.url + "/api/v1/hooks/git",
            content=body,
            headers={"content-type": "application/json", "x-hub-signature-256": "sha256=" + digest},
            timeout=30,
        )
        assert resp.status_code == 202, resp.text

    # a branch push: the trigger names only tags
    repo.commit({"notes.txt": "x"})
    repo.push("main")
    _scan(server, "tagged")
    assert _fired(server, "tagged-wf", "release") == []

    tagged = repo.commit({"notes.txt": "y"})
    git(repo.work, "tag", "-a", "v1", "-m", "release one")  # annotated: the commit it peels to
    git(repo.work, "push", "origin", "v1")
    hook()
    [run] = wait_for(lambda: _fired(server, "tagged-wf", "release"), what="the tag's run")
    assert (run["sha"], run["instance"], run["cause"]["kind"]) == (tagged, None, "git")
    assert server.wait(run["id"])["steps"]["show"]["outputs"] == {"tag": "v1"}


WATCHER = """name: models-watcher
params: {type: object, properties: {new: {type: string}, old: {type: string}}}
steps:
  show:
    run: echo "new=${{ params.new }}" >> "$LOCKSTEP_OUTPUTS"
triggers:
  models-moved:
    kind: resource
    repository: {name: models, ref: main}
    params: {new: '${{ resource.new }}', old: '${{ resource.old }}'}
"""


def test_a_resource_trigger_runs_when_a_watched_repository_ref_moves(
    server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "models")
    first = repo.commit({"weights.txt": "v1"})
    repo.push("main")
    git(repo.work, "checkout", "-b", "experiments")
    repo.push("experiments")
    _connect(server, repo, "models")  # holds no workflow: a repository sources: read
    assert server.http.post("/definitions", json={"name": "models-watcher"}).status_code == 201
    draft = server.http.put(
        "/definitions/models-watcher/draft",
        content=WATCHER,
        headers={"content-type": "application/yaml"},
    )
    assert draft.status_code == 200, draft.text
    assert server.http.post("/definitions/models-watcher/publish", json={}).status_code == 201
    _go_live(server, "models-watcher")

    second = _push(repo, "main", "v2")
    _push(repo, "experiments", "v2-exp")  # not the watched ref
    _scan(server, "models")
    [run] = _fired(server, "models-watcher", "models-moved")
    assert run["params"] == {"new": second, "old": first}
    assert (run["cause"]["kind"], run["cause"]["trigger"]) == ("resource", "models-moved")
    assert server.wait(run["id"])["steps"]["show"]["outputs"] == {"new": second}
    [fire] = server.http.get("/triggers/models-watcher/models-moved/history").json()
    assert fire["event"] == {
        "kind": "ref",
        "repository": "models",
        "ref": "main",
        "old": first,
        "new": second,
    }
    _scan(server, "models")  # nothing moved: nothing fires
    assert [r["id"] for r in _fired(server, "models-watcher", "models-moved")] == [run["id"]]

    # a watch of a repository the project has not connected is refused before $LIVE moves
    lost = WATCHER.replace("name: models-watcher", "name: lost-watcher").replace(
        "name: models, ref", "name: no-such-repo, ref"
    )
    assert server.http.post("/definitions", json={"name": "lost-watcher"}).status_code == 201
    put = server.http.put(
        "/definitions/lost-watcher/draft",
        content=lost,
        headers={"content-type": "application/yaml"},
    )
    assert put.status_code == 200, put.text
    assert server.http.post("/definitions/lost-watcher/publish", json={}).status_code == 201
    refused = server.http.put("/definitions/lost-watcher/tags/$LIVE", json={"version": 1})
    assert refused.status_code == 400, refused.text
    assert "repository 'no-such-repo' is not connected" in refused.json()["detail"]
    assert server.http.get("/triggers", params={"definition": "lost-watcher"}).json() == []
