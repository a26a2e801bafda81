"""``workflow:`` steps: a child run of its own (record, version lock, logs), linked both ways
with its parent step, whose run outputs become the step's outputs (beside a blueprint used
under two aliases, whose steps run in the parent); cancel goes down to the child, a retry
reuses a child that succeeded, a fan-out makes one child per item, a chain of children stops at
the configured depth limit, a killed server neither loses the child nor starts a second one,
and a publish or a tag move closing a cycle is refused. The real server and engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.harness import Server

KID = """\
name: kid
params: {type: object, properties: {n: {type: integer, default: 1}}}
steps:
  double:
    run: echo "twice=${{ params.n * 2 }}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  twice: ${{ steps.double.outputs.twice }}
"""

PARENT = """\
name: parent
steps:
  call:
    workflow: kid@$LIVE
    with: {n: 21}
  show:
    needs: [call]
    run: echo "got=${{ steps.call.outputs.twice }}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  got: ${{ steps.show.outputs.got }}
"""


#: a blueprint: a published definition whose steps a caller imports under an alias
TAGGER = """\
name: tagger
params:
  type: object
  properties: {label: {type: string}, value: {type: string}}
  required: [label, value]
steps:
  mark:
    run: echo "tagged=${{ params.label }}:${{ params.value }}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  tagged: ${{ steps.mark.outputs.tagged }}
"""

#: PARENT with the blueprint used twice, under two aliases, on the child's outputs
COMPOSED = PARENT.replace(
    "  show:\n    needs: [call]",
    """  left:
    uses: tagger@$LIVE
    needs: [call]
    with: {label: left, value: "${{ steps.call.outputs.twice }}"}
  right:
    uses: tagger@$LIVE
    needs: [left]
    with: {label: right, value: "${{ steps.left.outputs.tagged }}"}
  show:
    needs: [right]""",
).replace("outputs:\n  got:", "outputs:\n  tagged: ${{ steps.right.outputs.tagged }}\n  got:")


def _publish(server: Server, spec: str, *, live: bool = True) -> int:
    name = spec.split("\n", 1)[0].removeprefix("name: ").strip()
    made = server.http.post("/definitions", json={"name": name})
    assert made.status_code in (201, 409), made.text
    draft = server.http.put(
        f"/definitions/{name}/draft", content=spec, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    published = server.http.post(f"/definitions/{name}/publish", json={})
    assert published.status_code in (200, 201), published.text  # 200: that content exists
    version = int(published.json()["number"])
    if live:
        moved = server.http.put(f"/definitions/{name}/tags/$LIVE", json={"version": version})
        assert moved.status_code == 200, moved.text
    return version


def _runs_of(server: Server, workflow: str) -> list[dict[str, Any]]:
    resp = server.http.get("/runs", params={"workflow": workflow, "limit": 500})
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def test_a_child_run_hands_its_outputs_to_the_parent_and_both_name_each_other(
    server: Server,
) -> None:
    version = _publish(server, KID)
    _publish(server, TAGGER)
    parent = server.run_and_wait(COMPOSED)
    assert parent["status"] == "succeeded", parent
    assert parent["outputs"] == {"tagged": "right:left:42", "got": "42"}
    assert parent["steps"]["call"]["outputs"] == {"twice": "42"}
    # the blueprint's step, imported once per alias, ran in the parent (not as a child run)
    assert parent["steps"]["left__mark"]["outputs"] == {"tagged": "left:42"}
    assert parent["steps"]["right__mark"]["outputs"] == {"tagged": "right:left:42"}
    [child_ref] = parent["children"]
    assert (child_ref["step"], child_ref["workflow"]) == ("call", "kid")
    child = server.run(child_ref["run_id"])
    assert child["status"] == "succeeded" and child["outputs"] == {"twice": "42"}
    assert (child["definition"], child["version"], child["params"]) == ("kid", version, {"n": 21})
    cause = {k: v for k, v in child["cause"].items() if v is not None}
    assert cause == {
        "kind": "parent",
        "parent_run": parent["id"],
        "parent_step": "call",
        "parent_attempt": 1,
    }
    said = " ".join(line["text"] for line in server.logs(parent["id"], "call"))
    assert f"child run {child['id']}: kid@{version}" in said and "succeeded" in said
    # listed under its parent, and found by its cause
    kinds = server.http.get("/runs", params={"cause": "parent", "limit": 500}).json()["items"]
    assert child["id"] in {r["id"] for r in kinds}


def test_a_child_that_fails_fails_its_step_saying_which_run_and_why(server: Server) -> None:
    _publish(server, "name: broken-kid\nsteps:\n  boom:\n    run: echo no >&2; exit 3\n")
    spec = "name: sad-parent\nsteps:\n  call:\n    workflow: broken-kid\n"
    parent = server.run_and_wait(spec)
    assert parent["status"] == "failed"
    error = parent["steps"]["call"]["error"]
    [child] = parent["children"]
    assert error.startswith(f"child run {child['run_id']} failed: ")
    assert "boom" in error and "\n" not in error
    # the step's outputs contract holds for what the child hands back
    _publish(server, KID)
    strict = server.run_and_wait(
        "name: strict-parent\nsteps:\n  call:\n    workflow: kid\n    outputs:\n"
        "      type: object\n      required: [thrice]\n"
    )
    assert strict["status"] == "failed"
    assert "thrice" in strict["steps"]["call"]["error"], strict["steps"]["call"]["error"]
    # a definition the project does not have: the step says so
    missing = server.run_and_wait("name: lost-parent\nsteps:\n  call:\n    workflow: nowhere\n")
    assert missing["status"] == "failed" and missing["children"] == []
    assert "nowhere" in missing["steps"]["call"]["error"]


def test_cancelling_the_parent_cancels_its_child(server: Server) -> None:
    _publish(server, "name: slow-kid\nsteps:\n  nap:\n    run: sleep 600\n")
    spec = "name: impatient\nsteps:\n  call:\n    workflow: slow-kid\n"
    parent_id = server.submit(spec)["id"]
    running = server.wait(
        parent_id,
        until=lambda r: (
            bool(r["children"])
            and server.run(r["children"][0]["run_id"])["steps"]["nap"]["status"] == "running"
        ),
    )
    child_id = running["children"][0]["run_id"]
    assert server.http.post(f"/runs/{parent_id}/cancel").status_code == 200
    assert server.wait(parent_id)["status"] == "cancelled"
    assert server.wait(child_id)["status"] == "cancelled"


def test_a_retry_of_the_parent_reuses_the_child_that_succeeded(server: Server) -> None:
    _publish(server, KID)
    spec = PARENT.replace("name: parent", "name: retried-parent").replace(
        'run: echo "got=', 'run: exit 1; echo "got='
    )
    first = server.run_and_wait(spec)
    assert first["status"] == "failed" and len(first["children"]) == 1
    retried = server.http.post(f"/runs/{first['id']}/retry")
    assert retried.status_code == 201, retried.text
    second = server.wait(retried.json()["id"])
    assert second["steps"]["call"]["reused_from"] == first["id"]
    assert second["steps"]["call"]["outputs"] == {"twice": "42"}
    assert second["children"] == []  # no second child: the first one's outputs are reused


ECHO = """\
name: echo-kid
params: {type: object, properties: {v: {type: integer}}}
steps:
  echo:
    uses: noop
    with: {v: "${{ params.v }}"}
outputs:
  v: ${{ steps.echo.outputs.v }}
"""


def test_a_hundred_item_fan_out_of_workflow_steps_links_every_child(server: Server) -> None:
    _publish(server, ECHO)
    spec = """\
name: many-kids
steps:
  each:
    for_each: ${{ params.items }}
    workflow: echo-kid
    with: {v: "${{ item }}"}
params: {type: object, properties: {items: {type: array}}}
"""
    parent = server.run_and_wait(spec, {"items": list(range(100))}, timeout=300)
    assert parent["status"] == "succeeded", parent["error"]
    outputs = parent["steps"]["each"]["outputs"]
    assert [o["v"] for o in outputs] == list(range(100))
    children = parent["children"]
    assert sorted(c["step"] for c in children) == sorted(f"each[{i}]" for i in range(100))
    assert {c["status"] for c in children} == {"succeeded"}
    assert len({c["run_id"] for c in children}) == 100


def test_a_chain_of_children_stops_at_the_configured_depth_limit(home: Path) -> None:
    # a limit of 2 (the default, 10, is a unit test): top -> first -> second, whose own child
    # would be the third level; no cycle check sees a chain, only the limit stops it
    server = Server(home, LOCKSTEP_CHILD_MAX_DEPTH="2")
    server.start()
    try:
        for name, kid in [("deep-a", "deep-b"), ("deep-b", "deep-c"), ("deep-c", "deep-d")]:
            _publish(server, f"name: {name}\nsteps:\n  call:\n    workflow: {kid}\n")
        _publish(server, "name: deep-d\nsteps:\n  end:\n    run: 'true'\n")
        made = server.http.post("/runs", json={"selector": "deep-a"})
        assert made.status_code == 201, made.text
        top = server.wait(made.json()["id"], timeout=120)
        assert top["status"] == "failed"
        chain = [top]
        while chain[-1]["children"]:
            chain.append(server.run(chain[-1]["children"][0]["run_id"]))
        assert [r["definition"] for r in chain] == ["deep-a", "deep-b", "deep-c"]
        assert chain[-1]["steps"]["call"]["error"] == (
            "step 'call' would start a child run 3 runs deep, more than 2 "
            "(LOCKSTEP_CHILD_MAX_DEPTH): do its workflows run each other in a cycle?"
        )
        assert _runs_of(server, "deep-d") == []
    finally:
        server.stop()


def test_a_step_that_runs_its_own_workflow_is_refused_before_anything_runs(server: Server) -> None:
    resp = server.http.post(
        "/runs", json={"spec": "name: selfish\nsteps:\n  again:\n    workflow: selfish@$LIVE\n"}
    )
    assert resp.status_code == 422, resp.text
    [problem] = resp.json()["diagnostics"]
    assert (problem["line"], problem["col"], problem["path"]) == (4, 5, "/steps/again/workflow")
    assert problem["message"].startswith("step 'again' runs 'selfish@$LIVE', the workflow it is in")
    assert _runs_of(server, "selfish") == []


def test_a_child_of_another_project_is_refused_or_not_found(server: Server) -> None:
    # a selector names a definition of the parent's own project: a project prefix is no name
    resp = server.http.post(
        "/runs", json={"spec": "name: reacher\nsteps:\n  call:\n    workflow: other/kid\n"}
    )
    assert resp.status_code == 422, resp.text
    [problem] = resp.json()["diagnostics"]
    assert (problem["line"], problem["col"], problem["path"]) == (4, 5, "/steps/call/workflow")
    assert problem["message"].startswith(
        "'workflow' 'other/kid' must name a definition of this project"
    )
    # a definition that only another project has is not found when the step starts
    assert server.api.post("/projects", json={"name": "child-else"}).status_code in (201, 409)
    assert server.api.post(
        "/projects/child-else/definitions", json={"name": "elsewhere-kid"}
    ).status_code in (201, 409)
    draft = server.api.put(
        "/projects/child-else/definitions/elsewhere-kid/draft",
        content="name: elsewhere-kid\nsteps:\n  s:\n    run: 'true'\n",
        headers={"content-type": "application/yaml"},
    )
    assert draft.status_code == 200, draft.text
    published = server.api.post("/projects/child-else/definitions/elsewhere-kid/publish", json={})
    assert published.status_code in (200, 201), published.text
    parent = server.run_and_wait("name: homebound\nsteps:\n  call:\n    workflow: elsewhere-kid\n")
    assert parent["status"] == "failed" and parent["children"] == []
    error = parent["steps"]["call"]["error"]
    assert "elsewhere-kid" in error and "not found" in error, error


def test_a_server_killed_while_a_child_runs_loses_neither_and_starts_no_second(
    home: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    server = Server(home, heartbeat_timeout=3)
    server.start()
    try:
        _publish(
            server,
            f"name: waiting-kid\nsteps:\n  hold:\n    run: while [ ! -e {gate} ]; do sleep 0.2; done"
            "; echo done=1 >> $LOCKSTEP_OUTPUTS\noutputs:\n  done: ${{ steps.hold.outputs.done }}\n",
        )
        spec = "name: durable-parent\nsteps:\n  call:\n    workflow: waiting-kid\n"
        parent_id = server.submit(spec)["id"]
        server.wait(parent_id, until=lambda r: bool(r["children"]))
        server.kill9()
        server.start()
        gate.touch()
        done = server.wait(parent_id, timeout=120)
        assert done["status"] == "succeeded", done
        assert done["steps"]["call"]["outputs"] == {"done": "1"}
        assert len(_runs_of(server, "waiting-kid")) == 1
        assert len(done["children"]) == 1
    finally:
        server.stop()
        gate.touch()


def test_a_tag_move_that_closes_a_cycle_of_children_is_refused(server: Server) -> None:
    _publish(server, "name: hen\nsteps:\n  lay:\n    run: 'true'\n")  # no child yet
    _publish(server, "name: egg\nsteps:\n  hatch:\n    workflow: hen@$LIVE\n")
    # hen version 2 would run egg, which runs hen@$LIVE: that is version 2 once $LIVE moves
    second = _publish(server, "name: hen\nsteps:\n  lay:\n    workflow: egg\n", live=False)
    moved = server.http.put("/definitions/hen/tags/$LIVE", json={"version": second})
    assert moved.status_code == 400, moved.text
    detail = moved.json()["detail"]
    assert f"hen@{second} → egg@1 → hen@{second}" in detail and "$LIVE did not move" in detail
    versions = server.http.get("/definitions/hen/versions").json()
    assert [v["number"] for v in versions if "$LIVE" in v["tags"]] == [1]
    # another tag may point there: only $LIVE is what `egg` follows
    staged = server.http.put("/definitions/hen/tags/$STAGING", json={"version": second})
    assert staged.status_code == 200, staged.text


def test_a_publish_that_closes_a_cycle_of_numbered_children_is_refused(server: Server) -> None:
    # rooster@1 would run chick@1, which runs rooster@1: seen before rooster@1 exists
    _publish(server, "name: chick\nsteps:\n  grow:\n    workflow: rooster@1\n", live=False)
    assert server.http.post("/definitions", json={"name": "rooster"}).status_code == 201
    draft = server.http.put(
        "/definitions/rooster/draft",
        content="name: rooster\nsteps:\n  crow:\n    workflow: chick@1\n",
        headers={"content-type": "application/yaml"},
    )
    assert draft.status_code == 200, draft.text
    refused = server.http.post("/definitions/rooster/publish", json={})
    assert refused.status_code == 400, refused.text
    assert refused.json()["detail"] == (
        "workflow: steps would run each other without end: rooster@1 → chick@1 → rooster@1; "
        "'rooster' was not published"
    )
    assert server.http.get("/definitions/rooster/versions").json() == []
    # a bare name is the latest version while no $LIVE is set: the same cycle
    _publish(server, "name: chick\nsteps:\n  grow:\n    workflow: rooster\n", live=False)
    draft = server.http.put(
        "/definitions/rooster/draft",
        content="name: rooster\nsteps:\n  crow:\n    workflow: chick@2\n",
        headers={"content-type": "application/yaml"},
    )
    refused = server.http.post("/definitions/rooster/publish", json={})
    assert refused.status_code == 400 and "rooster@1 → chick@2 → rooster@1" in refused.text
