"""``sources:``: other repositories cloned into the workspace, each locked to a commit when the
run is created, recorded in the run, and reused by a rerun. Real git, local bare repos."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitrepo import Repo, git
from tests.harness import Server

READ_BOTH = """\
name: {name}
sources:
  - {{repo: "{models}", ref: v1, path: vendor/models}}
  - {{repo: "{lib}", ref: main, path: lib}}
steps:
  read:
    run: |
      echo "models=$(cat vendor/models/model.txt)" >> "$LOCKSTEP_OUTPUTS"
      echo "lib=$(cat lib/lib.txt)" >> "$LOCKSTEP_OUTPUTS"
      echo "own=$(cat own.txt 2>/dev/null || echo none)" >> "$LOCKSTEP_OUTPUTS"
      test ! -e vendor/models/.git/hooks/post-checkout
"""


def _repos(root: Path) -> tuple[Repo, str, Repo, str]:
    models = Repo(root / "models")
    models_sha = models.commit({"model.txt": "orbit-v1"})
    git(models.work, "tag", "v1")
    models.push("main", "v1")
    lib = Repo(root / "lib")
    lib_sha = lib.commit({"lib.txt": "lib-one"})
    lib.push("main")
    return models, models_sha, lib, lib_sha


def test_sources_are_locked_recorded_and_reused_by_a_rerun(server: Server, tmp_path: Path) -> None:
    models, models_sha, lib, lib_sha = _repos(tmp_path)
    app = Repo(tmp_path / "app")
    spec = READ_BOTH.format(name="with-sources", models=models.url, lib=lib.url)
    app_sha = app.commit({"workflow.yaml": spec, "own.txt": "app-file"})
    app.push("main")
    server.http.post("/repositories", json={"url": app.url, "name": "srcapp", "poll_s": 86400})
    assert server.http.post("/repositories/srcapp/scan").status_code == 200
    created = server.http.post(
        "/instances", json={"name": "srcapp-main", "definition": "with-sources", "ref": "main"}
    )
    assert created.status_code == 201, created.text

    first = server.wait(server.http.post("/instances/srcapp-main/runs", json={}).json()["id"])
    assert first["status"] == "succeeded", first
    assert first["sha"] == app_sha
    assert first["steps"]["read"]["outputs"] == {
        "models": "orbit-v1",
        "lib": "lib-one",
        "own": "app-file",
    }
    assert [(s["path"], s["ref"], s["sha"], s["repo"]) for s in first["sources"]] == [
        ("vendor/models", "v1", models_sha, models.url),
        ("lib", "main", lib_sha, lib.url),
    ]

    # the library's branch moves on: a rerun keeps the recorded commits, --latest takes the new
    lib_two = lib.commit({"lib.txt": "lib-two"})
    lib.push("main")
    same = server.http.post(f"/runs/{first['id']}/rerun", json={})
    assert same.status_code == 201, same.text
    same_run = server.wait(same.json()["id"])
    assert same_run["steps"]["read"]["outputs"]["lib"] == "lib-one"
    assert [s["sha"] for s in same_run["sources"]] == [models_sha, lib_sha]
    latest = server.http.post(f"/runs/{first['id']}/rerun", json={"latest": True})
    assert latest.status_code == 201, latest.text
    latest_run = server.wait(latest.json()["id"])
    assert latest_run["steps"]["read"]["outputs"]["lib"] == "lib-two"
    assert [s["sha"] for s in latest_run["sources"]] == [models_sha, lib_two]


def test_an_ad_hoc_run_gets_its_sources_too(server: Server, tmp_path: Path) -> None:
    models, models_sha, lib, _ = _repos(tmp_path)
    spec = READ_BOTH.format(name="adhoc-sources", models=models.url, lib=lib.url)
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded", run
    assert run["steps"]["read"]["outputs"]["own"] == "none"
    assert run["sources"][0]["sha"] == models_sha


def test_an_unknown_source_ref_creates_no_run(server: Server, tmp_path: Path) -> None:
    models, _, lib, _ = _repos(tmp_path)
    spec = READ_BOTH.format(name="bad-ref", models=models.url, lib=lib.url).replace(
        "ref: v1", "ref: v9"
    )
    before = len(server.http.get("/runs", params={"workflow": "bad-ref"}).json()["items"])
    resp = server.http.post("/runs", json={"spec": spec})
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert "vendor/models" in detail and "'v9' not found" in detail
    after = len(server.http.get("/runs", params={"workflow": "bad-ref"}).json()["items"])
    assert after == before


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{repo: 'ext::sh', ref: main, path: a}", "transport helper"),
        ("{repo: '--upload-pack=touch', ref: main, path: a}", "starts with '-'"),
        ("{repo: 'https://h/r.git', ref: '--output=/tmp/x', path: a}", "starts with '-'"),
        ("{repo: 'https://h/r.git', ref: 'refs/../../x', path: a}", "contains '..'"),
        ("{repo: 'https://h/r.git', ref: main, path: ../outside}", "'..' component"),
        ("{repo: 'https://h/r.git', ref: main, path: /etc}", "is absolute"),
        ("{repo: 'https://h/r.git', ref: main, path: .git/hooks}", "inside '.git'"),
        ("{repo: 'https://h/r.git', ref: main, path: x, nope: 1}", "nope"),
    ],
)
def test_hostile_sources_are_refused_at_validation(
    server: Server, entry: str, problem: str
) -> None:
    spec = f"name: hostile-src\nsources:\n  - {entry}\nsteps:\n  a: {{run: 'true'}}\n"
    resp = server.http.post("/runs", json={"spec": spec})
    assert resp.status_code == 422, resp.text
    assert problem in resp.text
    assert "workflow.yaml:3:" in resp.text  # the position of the bad entry


def test_overlapping_source_paths_are_refused(server: Server) -> None:
    spec = (
        "name: overlap\nsources:\n"
        "  - {repo: 'https://h/a.git', ref: main, path: vendor}\n"
        "  - {repo: 'https://h/b.git', ref: main, path: vendor/b}\n"
        "steps:\n  a: {run: 'true'}\n"
    )
    resp = server.http.post("/runs", json={"spec": spec})
    assert resp.status_code == 422
    assert "overlaps source 1" in resp.text


def test_a_source_cannot_escape_through_a_symlink_in_the_checkout(
    server: Server, tmp_path: Path
) -> None:
    models, _, _, _ = _repos(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    app = Repo(tmp_path / "linked")
    (app.work / "vendor").symlink_to(outside)  # committed as a symlink out of the repository
    app.commit(
        {
            "workflow.yaml": (
                f"name: symlinked\nsources:\n  - {{repo: '{models.url}', ref: v1, "
                "path: vendor/models}\nsteps:\n  a: {run: 'true'}\n"
            )
        }
    )
    app.push("main")
    server.http.post("/repositories", json={"url": app.url, "name": "linked", "poll_s": 86400})
    server.http.post("/repositories/linked/scan")
    server.http.post(
        "/instances", json={"name": "linked-main", "definition": "symlinked", "ref": "main"}
    )
    run = server.wait(server.http.post("/instances/linked-main/runs", json={}).json()["id"])
    assert run["status"] == "failed"
    assert "goes through a symlink" in run["steps"]["a"]["error"]
    assert not any(outside.iterdir())  # nothing was written outside the workspace
