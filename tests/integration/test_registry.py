"""Connected repositories: the scanner finds workflow files on watched refs, validates them,
and keeps per-ref status and immutable versions. Real git, local bare repositories."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.gitrepo import Repo, git
from tests.harness import Server, wait_for

GOOD = "name: build\nsteps:\n  compile:\n    run: echo compiling\n"
GOOD_2 = "name: build\nsteps:\n  compile:\n    run: echo compiling v2\n"
BAD = "name: build\nsteps:\n  compile:\n    rnu: echo typo\n"


def _definition(server: Server, name: str) -> dict:
    resp = server.http.get(f"/definitions/{name}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def _scan(server: Server, repo: str) -> dict:
    resp = server.http.post(f"/repositories/{repo}/scan")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_scanner_tracks_refs_versions_errors_and_history(server: Server, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r1")
    first = repo.commit(
        {
            "workflow.yaml": GOOD,
            "ci/lint.workflow.yaml": "name: lint\nsteps:\n  l: {run: 'true'}\n",
            ".lockstep/nightly.yaml": "name: nightly\nsteps:\n  n: {run: 'true'}\n",
            "docs/notes.yaml": "not: a workflow\n",
        }
    )
    repo.push("main")
    git(repo.work, "tag", "v1.0")
    git(repo.work, "push", "origin", "v1.0")
    git(repo.work, "checkout", "-b", "feature-x")
    repo.commit({"workflow.yaml": BAD})
    repo.push("feature-x")
    git(repo.work, "checkout", "main")

    resp = server.http.post(
        "/repositories",
        json={"url": repo.url, "name": "app", "branches": ["main", "feature-*"], "tags": ["v*"]},
    )
    assert resp.status_code == 201, resp.text
    scanned = _scan(server, "app")
    assert scanned["repository"]["error"] is None
    names = {d["name"] for d in server.http.get("/definitions").json()}
    assert {"build", "lint", "nightly"} <= names  # docs/notes.yaml is not a workflow file

    build = _definition(server, "build")
    refs = {r["ref"]: r for r in build["refs"]}
    assert refs["main"]["status"] == "valid" and refs["main"]["sha"] == first
    assert refs["main"]["version"] == 1
    assert refs["v1.0"]["version"] == 1  # same content at a tag: the same version
    # why feature-x is not runnable, with the position of the problem
    assert refs["feature-x"]["status"] == "invalid"
    assert any(
        "workflow.yaml:4:5: unknown key 'rnu'; did you mean 'run'?" in e
        for e in refs["feature-x"]["errors"]
    )

    # a new commit with new content: version 2; identical content later: no new version
    second = repo.commit({"workflow.yaml": GOOD_2})
    repo.push("main")
    _scan(server, "app")
    assert _definition(server, "build")["latest_version"] == 2
    third = repo.commit({"README": "docs only"})
    repo.push("main")
    _scan(server, "app")
    versions = server.http.get("/definitions/build/versions").json()
    assert [v["number"] for v in versions] == [1, 2]
    assert {s["sha"] for s in versions[1]["sources"]} == {second, third}

    # an invalid push shows its errors and leaves the last valid version in place
    repo.commit({"workflow.yaml": BAD})
    repo.push("main")
    _scan(server, "app")
    build = _definition(server, "build")
    main = next(r for r in build["refs"] if r["ref"] == "main")
    assert main["status"] == "invalid" and main["version"] is None
    assert build["latest_version"] == 2

    # force-push main back and delete the feature branch: history is kept
    git(repo.work, "reset", "--hard", first)
    repo.push("main", force=True)
    git(repo.work, "push", "origin", "--delete", "feature-x")
    _scan(server, "app")
    build = _definition(server, "build")
    assert {r["ref"] for r in build["refs"]} == {"main", "v1.0"}
    assert next(r for r in build["refs"] if r["ref"] == "main")["version"] == 1
    assert [v["number"] for v in server.http.get("/definitions/build/versions").json()] == [1, 2]

    # versions are immutable records, down to the database
    db = sqlite3.connect(server.home / "lockstep.db")
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        db.execute("UPDATE versions SET spec_text = 'x'")
    db.close()


def test_a_symlinked_workflow_is_reported_and_nothing_outside_is_read(
    server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "r2")
    (repo.work / "workflow.yaml").symlink_to("/etc/passwd")
    repo.commit({"ok.workflow.yaml": "name: sym-ok\nsteps:\n  a: {run: 'true'}\n"})
    repo.push("main")
    assert (
        server.http.post("/repositories", json={"url": repo.url, "name": "sym"}).status_code == 201
    )
    _scan(server, "sym")
    defs = {d["path"]: d for d in server.http.get("/definitions").json()}
    linked = defs["workflow.yaml"]
    assert linked["refs"][0]["status"] == "invalid"
    assert "symbolic link" in linked["refs"][0]["errors"][0]
    assert "root:" not in str(linked)
    assert defs["ok.workflow.yaml"]["refs"][0]["status"] == "valid"


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/lockstep-git-pwned",
        "--upload-pack=touch /tmp/lockstep-git-pwned",
        "-oProxyCommand=touch /tmp/lockstep-git-pwned",
        "fd::17",
        "https://user:pass@example.com/r.git",
        "gopher://example.com/r.git",
        "",
    ],
)
def test_hostile_urls_are_refused_before_git_runs(server: Server, url: str) -> None:
    resp = server.http.post("/repositories", json={"url": url, "name": "hostile"})
    assert resp.status_code in (400, 422), resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert "pass" not in resp.json()["detail"]
    assert not Path("/tmp/lockstep-git-pwned").exists()
    names = [r["name"] for r in server.http.get("/repositories").json()]
    assert "hostile" not in names


def test_a_vanished_repository_is_reported_and_others_still_scan(
    server: Server, tmp_path: Path
) -> None:
    gone, fine = Repo(tmp_path / "gone"), Repo(tmp_path / "fine")
    for r, name in ((gone, "gone"), (fine, "fine")):
        r.commit({"workflow.yaml": f"name: wf-{name}\nsteps:\n  a: {{run: 'true'}}\n"})
        r.push("main")
        assert (
            server.http.post("/repositories", json={"url": r.url, "name": name}).status_code == 201
        )
    subprocess.run(["rm", "-rf", str(gone.bare)], check=True)
    result = _scan(server, "gone")
    assert result["repository"]["error"]
    assert str(gone.bare) in result["repository"]["error"] or "not" in result["repository"]["error"]
    assert _scan(server, "fine")["repository"]["error"] is None
    assert _definition(server, "wf-fine")["refs"][0]["status"] == "valid"
    listed = {r["name"]: r for r in server.http.get("/repositories").json()}
    assert listed["gone"]["error"] and listed["fine"]["error"] is None


def _hook(server: Server, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        server.url + "/api/v1/hooks/git",
        content=body,
        headers={"content-type": "application/json", **headers},
        timeout=30,
    )


def _latest(server: Server, name: str) -> int | None:
    return _definition(server, name)["latest_version"]


def test_signed_push_webhooks_rescan_and_unsigned_ones_change_nothing(
    server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "hooked")
    repo.commit({"workflow.yaml": "name: hooked-wf\nsteps:\n  a: {run: 'echo 1'}\n"})
    repo.push("main")
    resp = server.http.post(
        "/repositories", json={"url": repo.url, "name": "hooked", "poll_s": 86400}
    )
    assert resp.status_code == 201, resp.text
    secret = resp.json()["webhook_secret"]
    assert secret not in server.http.get("/repositories").text  # shown once, never again
    _scan(server, "hooked")
    assert _latest(server, "hooked-wf") == 1

    n = 1
    for shape in ("github", "gitlab", "gitea"):
        n += 1
        repo.commit({"workflow.yaml": f"name: hooked-wf\nsteps:\n  a: {{run: 'echo {n}'}}\n"})
        repo.push("main")
        if shape == "gitlab":
            body = json.dumps(
                {"ref": "refs/heads/main", "project": {"git_http_url": repo.url}}
            ).encode()
            good, bad = {"x-gitlab-token": secret}, {"x-gitlab-token": "wrong"}
        else:
            body = json.dumps(
                {"ref": "refs/heads/main", "repository": {"clone_url": repo.url}}
            ).encode()
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            header = "x-hub-signature-256" if shape == "github" else "x-gitea-signature"
            prefix = "sha256=" if shape == "github" else ""
            good, bad = {header: prefix + digest}, {header: prefix + "0" * 64}
        for wrong in (bad, {}):
            refused = _hook(server, body, wrong)
            assert refused.status_code == 401, (shape, refused.text)
        assert _latest(server, "hooked-wf") == n - 1  # nothing was scanned
        accepted = _hook(server, body, good)
        assert accepted.status_code == 202, (shape, accepted.text)
        wait_for(
            lambda n=n: _latest(server, "hooked-wf") == n,
            timeout=10,
            what=f"the {shape} push to be scanned",
        )
    assert _hook(server, b"not json", {"x-gitlab-token": secret}).status_code == 400


def test_polling_picks_up_pushes_and_an_unchanged_remote_is_not_fetched(
    server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "polled")
    repo.commit({"workflow.yaml": "name: polled-wf\nsteps:\n  a: {run: 'echo 1'}\n"})
    repo.push("main")
    resp = server.http.post("/repositories", json={"url": repo.url, "name": "polled", "poll_s": 5})
    assert resp.status_code == 201
    wait_for(
        lambda: server.http.get("/definitions/polled-wf").status_code == 200,
        timeout=20,
        what="the first poll",
    )
    repo.commit({"workflow.yaml": "name: polled-wf\nsteps:\n  a: {run: 'echo 2'}\n"})
    repo.push("main")
    wait_for(lambda: _latest(server, "polled-wf") == 2, timeout=20, what="the next poll")

    def state() -> tuple[str, dict[str, float]]:
        row = next(r for r in server.http.get("/repositories").json() if r["name"] == "polled")
        files = {
            str(p): p.stat().st_mtime for p in (server.home / "mirrors").rglob("*") if p.is_file()
        }
        return row["scanned_at"], files

    scanned, before = state()
    wait_for(lambda: state()[0] != scanned, timeout=20, what="an unchanged poll")
    assert state()[1] == before  # the poll listed refs and fetched nothing


LOCKED = """name: locked-wf
params: {type: object, properties: {who: {type: string, default: nobody}}}
steps:
  read:
    run: |
      echo "data=$(cat data.txt)" >> "$LOCKSTEP_OUTPUTS"
      echo "sha=${{ run.sha }}" >> "$LOCKSTEP_OUTPUTS"
      echo "who=${{ params.who }}" >> "$LOCKSTEP_OUTPUTS"
"""


def test_instances_lock_each_run_to_a_commit_and_version(server: Server, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "locked")
    first = repo.commit({"workflow.yaml": LOCKED, "data.txt": "one"})
    repo.push("main")
    assert (
        server.http.post(
            "/repositories", json={"url": repo.url, "name": "locked", "poll_s": 86400}
        ).status_code
        == 201
    )
    _scan(server, "locked")
    for name, ref in (("follow-main", "main"), ("pinned", first[:10])):
        resp = server.http.post(
            "/instances",
            json={"name": name, "definition": "locked-wf", "ref": ref, "params": ["who=inst"]},
        )
        assert resp.status_code == 201, resp.text

    def run(instance: str, *params: str) -> dict:
        resp = server.http.post(f"/instances/{instance}/runs", json={"params": list(params)})
        assert resp.status_code == 201, resp.text
        return server.wait(resp.json()["id"])

    a = run("follow-main")
    assert a["status"] == "succeeded", a
    assert (a["sha"], a["version"], a["definition"], a["instance"], a["selector"]) == (
        first,
        1,
        "locked-wf",
        "follow-main",
        "locked-wf@main",
    )
    assert a["steps"]["read"]["outputs"] == {"data": "one", "sha": first, "who": "inst"}

    second = repo.commit({"workflow.yaml": LOCKED.replace("nobody", "somebody"), "data.txt": "two"})
    repo.push("main")
    _scan(server, "locked")
    b = run("follow-main", "who=override")
    assert (b["sha"], b["version"]) == (second, 2)  # the branch instance follows
    assert b["steps"]["read"]["outputs"] == {"data": "two", "sha": second, "who": "override"}
    c = run("pinned")
    assert (c["sha"], c["version"]) == (first, 1)  # the SHA instance never moves
    assert c["steps"]["read"]["outputs"]["data"] == "one"

    # reproduce the first run after main moved: same commit, version and params
    same = server.http.post(f"/runs/{a['id']}/rerun", json={})
    assert same.status_code == 201, same.text
    same_run = server.wait(same.json()["id"])
    assert (same_run["sha"], same_run["version"], same_run["params"]) == (first, 1, a["params"])
    assert (same_run["rerun_of"], same_run["rerun_policy"]) == (a["id"], "same")
    assert (same_run["cause"]["kind"], same_run["cause"]["of"]) == ("rerun", a["id"])
    assert a["cause"]["kind"] == "manual"  # an instance run by a person
    assert same_run["steps"]["read"]["outputs"]["data"] == "one"
    # or on the instance's ref as it is now, keeping the params
    latest = server.http.post(f"/runs/{a['id']}/rerun", json={"latest": True})
    assert latest.status_code == 201, latest.text
    latest_run = server.wait(latest.json()["id"])
    assert (latest_run["sha"], latest_run["version"]) == (second, 2)
    assert latest_run["params"] == a["params"]
    assert (latest_run["rerun_of"], latest_run["rerun_policy"]) == (a["id"], "latest")
    assert (latest_run["cause"]["kind"], latest_run["cause"]["of"]) == ("rerun", a["id"])


@pytest.mark.parametrize(
    ("ref", "status"), [("--output=/tmp/x", 400), ("refs/../../x", 400), ("no-such-branch", 404)]
)
def test_bad_instance_refs_are_refused(
    server: Server, tmp_path: Path, ref: str, status: int
) -> None:
    repo = Repo(tmp_path / "refs")
    repo.commit({"workflow.yaml": "name: refs-wf\nsteps:\n  a: {run: 'true'}\n"})
    repo.push("main")
    name = f"refs-{abs(hash(ref)) % 10000}"
    server.http.post("/repositories", json={"url": repo.url, "name": name, "poll_s": 86400})
    _scan(server, name)
    created = server.http.post(
        "/instances", json={"name": f"i-{name}", "definition": "refs-wf", "ref": ref}
    )
    if created.status_code == 201:
        resp = server.http.post(f"/instances/i-{name}/runs", json={})
        assert resp.status_code == status, resp.text
    else:
        assert created.status_code == status, created.text


def test_a_retry_stays_on_the_failed_runs_commit(server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "fixed"
    repo = Repo(tmp_path / "retried")
    spec = (
        "name: retried-wf\nsteps:\n  read:\n    run: |\n"
        '      echo "data=$(cat data.txt)" >> "$LOCKSTEP_OUTPUTS"\n'
        f"      test -e {marker}\n"
    )
    first = repo.commit({"workflow.yaml": spec, "data.txt": "one"})
    repo.push("main")
    server.http.post("/repositories", json={"url": repo.url, "name": "retried", "poll_s": 86400})
    _scan(server, "retried")
    server.http.post(
        "/instances", json={"name": "retried-main", "definition": "retried-wf", "ref": "main"}
    )
    failed = server.wait(server.http.post("/instances/retried-main/runs", json={}).json()["id"])
    assert failed["status"] == "failed" and failed["sha"] == first
    repo.commit({"data.txt": "two"})  # the branch moves on
    repo.push("main")
    _scan(server, "retried")
    marker.touch()
    resp = server.http.post(f"/runs/{failed['id']}/retry")
    assert resp.status_code == 201, resp.text
    retried = server.wait(resp.json()["id"])
    assert retried["status"] == "succeeded", retried
    assert (retried["sha"], retried["version"], retried["retry_of"]) == (first, 1, failed["id"])
    assert retried["steps"]["read"]["outputs"] == {"data": "one"}
