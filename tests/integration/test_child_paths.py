"""``workflow: ./kid.workflow.yaml``: the child is the definition scanned from that file of the
parent run's repository, run at the parent's commit; a missing file and a run without a
repository fail the step with one line.
The real server, engine and a real local git repository."""

from __future__ import annotations

from pathlib import Path

from tests.gitrepo import Repo
from tests.harness import Server

KID = """\
name: cp-kid
steps:
  say:
    run: echo "v=$(cat v.txt)" >> "$LOCKSTEP_OUTPUTS"
outputs:
  v: ${{ steps.say.outputs.v }}
"""

PARENT = """\
name: cp-parent
steps:
  call:
    workflow: ./kid.workflow.yaml
  show:
    needs: [call]
    run: echo "got=${{ steps.call.outputs.v }}" >> "$LOCKSTEP_OUTPUTS"
"""


ORPHAN = "name: cp-orphan\nsteps:\n  call:\n    workflow: ./nope.workflow.yaml\n"


def _run(server: Server, selector: str) -> dict[str, object]:
    resp = server.http.post("/runs", json={"selector": selector})
    assert resp.status_code == 201, resp.text
    return server.wait(resp.json()["id"])


def test_a_child_by_path_runs_at_the_parents_commit(server: Server, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "cp")
    one = repo.commit({
        "flows/parent.workflow.yaml": PARENT,
        "flows/kid.workflow.yaml": KID,
        "flows/orphan.workflow.yaml": ORPHAN,
        "v.txt": "one",
    })  # fmt: skip
    repo.push("main")
    made = server.http.post("/repositories", json={"url": repo.url, "name": "cp", "poll_s": 86400})
    assert made.status_code == 201, made.text
    assert server.http.post("/repositories/cp/scan").status_code == 200
    two = repo.commit({"v.txt": "two"})
    repo.push("main")
    assert server.http.post("/repositories/cp/scan").status_code == 200

    parent = _run(server, f"cp-parent@{one}")  # the first commit, though main moved on
    assert parent["status"] == "succeeded", parent
    assert parent["steps"]["show"]["outputs"] == {"got": "one"}  # type: ignore[index]
    [child_ref] = parent["children"]  # type: ignore[misc]
    child = server.run(child_ref["run_id"])
    assert (child["definition"], child["sha"]) == ("cp-kid", one)
    assert two != one

    orphan = _run(server, "cp-orphan@main")
    assert orphan["status"] == "failed", orphan
    assert orphan["steps"]["call"]["error"] == (  # type: ignore[index]
        "step 'call' runs './nope.workflow.yaml', but no scanned workflow of the repository is "
        "at flows/nope.workflow.yaml; check the path (relative to flows/orphan.workflow.yaml)"
    )


def test_a_child_by_path_needs_a_repository_and_a_path(server: Server) -> None:
    run = server.run_and_wait(PARENT.replace("cp-parent", "cp-loose"))
    assert run["status"] == "failed", run
    error = run["steps"]["call"]["error"]
    assert error == (
        "step 'call' runs './kid.workflow.yaml', a file of the run's repository, but run "
        f"{run['id']} has no repository (it was not run from a git definition); use "
        "workflow: DEF@SELECTOR"
    )
    bad = server.submit("name: x\nsteps:\n  c:\n    workflow: /etc/kid.yaml\n", expect=422)
    assert "or a workflow file of the same repository, e.g. ./etl.yaml" in bad["detail"]
