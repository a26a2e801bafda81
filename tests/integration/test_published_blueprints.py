"""``uses: DEF@SELECTOR`` over the real server: a published definition imported into runs and
versions, resolved once (a tag moving later changes no stored run), and the bad inputs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.gitrepo import Repo, git
from tests.harness import Server

BLUEPRINT = """\
name: {name}
params:
  type: object
  properties:
    word: {{type: string}}
  required: [word]
steps:
  say:
    run: echo "said=v{n}-${{{{ params.word }}}}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  said: ${{{{ steps.say.outputs.said }}}}
"""

CALLER = """\
name: caller
steps:
  one:
    uses: {name}@$LIVE
    with: {{word: a}}
  two:
    uses: {name}@$LIVE
    needs: [one]
    with: {{word: b}}
  both:
    needs: [two]
    run: echo "got=${{{{ steps.one.outputs.said }}}}+${{{{ steps.two.outputs.said }}}}" >> "$LOCKSTEP_OUTPUTS"
"""


def _publish(server: Server, name: str, text: str, expect: int = 201) -> dict[str, Any]:
    if server.http.get(f"/definitions/{name}").status_code == 404:
        assert server.http.post("/definitions", json={"name": name}).status_code == 201
    draft = server.http.put(
        f"/definitions/{name}/draft", content=text, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    resp = server.http.post(f"/definitions/{name}/publish", json={"message": "m"})
    assert resp.status_code == expect, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _tag(server: Server, name: str, version: int) -> None:
    resp = server.http.put(f"/definitions/{name}/tags/$LIVE", json={"version": version})
    assert resp.status_code == 200, resp.text


def _stored_spec(server: Server, run_id: str) -> str:
    """The spec text the run was recorded with (what it runs, reruns and retries)."""
    db = sqlite3.connect(server.home / "lockstep.db")
    try:
        (text,) = db.execute("SELECT spec_text FROM runs WHERE id = ?", (run_id,)).fetchone()
    finally:
        db.close()
    return str(text)


def test_a_published_blueprint_used_twice_runs_and_a_later_tag_move_changes_no_run(
    server: Server,
) -> None:
    for n in (1, 2):
        _publish(server, "pb-greet", BLUEPRINT.format(name="pb-greet", n=n))
    _tag(server, "pb-greet", 1)
    caller = CALLER.format(name="pb-greet")
    run = server.run_and_wait(caller)
    assert run["status"] == "succeeded", run
    assert run["steps"]["both"]["outputs"] == {"got": "v1-a+v1-b"}
    spec = _stored_spec(server, run["id"])
    assert "# blueprint one: pb-greet@1 sha256:" in spec
    assert "# blueprint two: pb-greet@1 sha256:" in spec

    _tag(server, "pb-greet", 2)  # the tag moves: the stored run keeps what it resolved
    assert _stored_spec(server, run["id"]) == spec
    again = server.http.post(f"/runs/{run['id']}/rerun", json={})
    assert again.status_code == 201, again.text
    rerun = server.wait(again.json()["id"])
    assert rerun["steps"]["both"]["outputs"] == {"got": "v1-a+v1-b"}
    moved = server.run_and_wait(caller)  # a new submit resolves the tag as it is now
    assert moved["steps"]["both"]["outputs"] == {"got": "v2-a+v2-b"}

    # a version of a definition records the exact version it expanded
    version = _publish(server, "pb-caller", caller)
    shown = server.http.get(f"/definitions/pb-caller/versions/{version['number']}").json()
    assert "# blueprint one: pb-greet@2 sha256:" in shown["spec"]


def test_unknown_other_project_and_cyclic_published_blueprints_are_refused(
    server: Server,
) -> None:
    assert server.api.post("/projects", json={"name": "pb-other"}).status_code in (201, 409)
    other = server.api.post("/projects/pb-other/definitions", json={"name": "pb-theirs"})
    assert other.status_code in (201, 409), other.text

    for name in ("pb-nothing", "pb-theirs"):
        caller = f"name: c\nsteps:\n  x:\n    uses: {name}@1\n"
        refused = server.submit(caller, expect=422)
        assert refused["detail"].startswith(
            f"workflow.yaml:4:5: cannot use blueprint '{name}@1': definition '{name}' not found"
        )

    _publish(server, "pb-a", "name: a\nsteps:\n  s:\n    run: echo a\n")
    _publish(server, "pb-b", "name: b\nsteps:\n  t:\n    uses: pb-a@1\n")
    # pb-a's next version using pb-b (which expanded pb-a@1) is a cycle: saved, not published
    draft = server.http.put(
        "/definitions/pb-a/draft",
        content="name: a\nsteps:\n  u:\n    uses: pb-b\n",
        headers={"content-type": "application/yaml"},
    )
    assert draft.status_code == 200, draft.text
    assert draft.json()["errors"] == [
        "pb-a.yaml:4:5: blueprint cycle: pb-a.yaml -> pb-b@1 -> pb-a@1"
    ]
    refused = server.http.post("/definitions/pb-a/publish", json={"message": "m"})
    assert refused.status_code == 422, refused.text
    assert "blueprint cycle: pb-a.yaml -> pb-b@1 -> pb-a@1" in refused.text


def test_a_scanned_workflow_expands_a_published_blueprint(server: Server, tmp_path: Path) -> None:
    _publish(server, "pb-scanned", BLUEPRINT.format(name="pb-scanned", n=7))
    repo = Repo(tmp_path / "pbscan")
    flow = "name: pb-user\nsteps:\n  x:\n    uses: pb-scanned@1\n    with: {word: git}\n"
    repo.commit({"workflow.yaml": flow})
    repo.push("main")
    made = server.http.post("/repositories", json={"url": repo.url, "name": "pbscan"})
    assert made.status_code == 201, made.text
    assert server.http.post("/repositories/pbscan/scan").status_code == 200
    resp = server.http.post("/runs", json={"selector": "pb-user@main"})
    assert resp.status_code == 201, resp.text
    run = server.wait(resp.json()["id"])
    assert run["status"] == "succeeded", run
    assert run["steps"]["x"]["outputs"] == {"said": "v7-git"}
    assert "# blueprint x: pb-scanned@1 sha256:" in _stored_spec(server, run["id"])


def test_a_loop_through_unscanned_commits_ends_with_the_chain(
    server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "pbloop")
    plain = "name: {n}\nsteps:\n  s:\n    run: echo\n"
    repo.commit({
        "d.workflow.yaml": plain.format(n="pb-d"), "e.workflow.yaml": plain.format(n="pb-e")
    })  # fmt: skip
    repo.push("main")
    made = server.http.post("/repositories", json={"url": repo.url, "name": "pbloop"})
    assert made.status_code == 201, made.text
    assert server.http.post("/repositories/pbloop/scan").status_code == 200
    git(repo.work, "checkout", "-b", "loop")  # a branch the registry does not watch
    uses = "name: {n}\nsteps:\n  s:\n    uses: {other}@loop\n"
    repo.commit({
        "d.workflow.yaml": uses.format(n="pb-d", other="pb-e"),
        "e.workflow.yaml": uses.format(n="pb-e", other="pb-d"),
    })  # fmt: skip
    repo.push("loop")
    assert server.http.post("/repositories/pbloop/scan").status_code == 200  # sees the ref

    refused = server.submit("name: c\nsteps:\n  x:\n    uses: pb-d@loop\n", expect=422)
    # one line: each level's uses: line, down to the chain
    assert refused["detail"] == (
        "workflow.yaml:4:5: cannot use blueprint 'pb-d@loop': pb-d@loop is invalid: "
        "d.workflow.yaml:4:5: cannot use blueprint 'pb-e@loop': pb-e@loop is invalid: "
        "e.workflow.yaml:4:5: cannot use blueprint 'pb-d@loop': blueprint cycle: "
        "pb-d@loop -> pb-e@loop -> pb-d@loop"
    )
