"""Resources on a real server: a step writes a resource's next version with its success, a
workflow triggered by that resource runs once with the new version and records it, a rerun
reads the same versions (``latest``: the newest), a write that breaks the schema fails the step
naming the pointer and records nothing, writers at once get consecutive versions, and another
project can neither read nor trigger on the resource (404); every bad input is one line and
changes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import Server, wait_for
from tests.integration.test_schedule_triggers import _go_live, _publish

TAG_SCHEMA = {
    "type": "object",
    "properties": {"tag": {"type": "string", "pattern": "^v[0-9]+$"}},
    "required": ["tag"],
}


def _create(server: Server, name: str, data: Any, schema: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "data": data, "message": "first"}
    if schema is not None:
        body["schema"] = schema
    made = server.http.post("/resources", json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


def _history(server: Server, name: str, http: httpx.Client | None = None) -> list[int]:
    got = (http or server.http).get(f"/resources/{name}/versions")
    assert got.status_code == 200, got.text
    return [v["version"] for v in got.json()]


def _latest(server: Server, name: str) -> dict[str, Any]:
    got = server.http.get(f"/resources/{name}")
    assert got.status_code == 200, got.text
    return dict(got.json()["version"])


def _uses(run: dict[str, Any]) -> list[tuple[str, str, int, str | None]]:
    return [
        (r["access"], r["name"], r["version"], r["alias"] if r["access"] == "read" else r["step"])
        for r in run["resources"]
    ]


BUILD = """\
name: res-build
steps:
  build:
    run: echo "tag=TAG" >> "$LOCKSTEP_OUTPUTS"
    writes:
      res-image: {tag: "${{ steps.build.outputs.tag }}"}
"""
DEPLOY = """\
name: res-deploy
params:
  type: object
  properties:
    name: {type: string}
    version: {type: integer}
    previous: {type: [integer, "null"]}
resources: {image: res-image}
steps:
  deploy:
    run: echo "deployed=${{ resources.image.data.tag }}@${{ resources.image.version }}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  deployed: ${{ steps.deploy.outputs.deployed }}
triggers:
  on-image:
    kind: resource
    resource: res-image
    params:
      name: ${{ resource.name }}
      version: ${{ resource.version }}
      previous: ${{ resource.previous }}
"""


def _deploys(server: Server) -> list[dict[str, Any]]:
    got = server.http.get("/runs", params={"workflow": "res-deploy", "limit": 100})
    assert got.status_code == 200, got.text
    return [server.run(r["id"]) for r in got.json()["items"]]


def _deploy_of(server: Server, version: int) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        runs = [r for r in _deploys(server) if r["params"].get("version") == version]
        return runs[0] if runs else None

    run = wait_for(found, timeout=60, what=f"a deploy run for res-image v{version}")
    return server.wait(run["id"])


def test_a_written_version_triggers_its_reader_once_and_reruns_read_the_same_version(
    server: Server,
) -> None:
    _create(server, "res-image", {"tag": "v1"}, TAG_SCHEMA)
    assert server.http.post("/definitions", json={"name": "res-deploy"}).status_code == 201
    _go_live(server, _publish(server, DEPLOY, name="res-deploy"), name="res-deploy")

    build = server.run_and_wait(BUILD.replace("TAG", "v2"))
    assert build["status"] == "succeeded", build
    assert _uses(build) == [("write", "res-image", 2, "build")]
    v2 = _latest(server, "res-image")
    assert (v2["version"], v2["data"], v2["run_id"], v2["step"], v2["attempt"]) == (
        2, {"tag": "v2"}, build["id"], "build", 1
    )  # fmt: skip

    deploy = _deploy_of(server, 2)
    assert deploy["status"] == "succeeded", deploy
    assert deploy["cause"]["kind"] == "resource" and deploy["cause"]["trigger"] == "on-image"
    assert deploy["params"] == {"name": "res-image", "version": 2, "previous": 1}
    assert deploy["outputs"] == {"deployed": "v2@2"}
    assert _uses(deploy) == [("read", "res-image", 2, "image")]

    # v3 by a person: the trigger fires for it too, and a rerun of the v2 deploy keeps v2
    v3 = server.http.post("/resources/res-image/versions", json={"data": {"tag": "v3"}})
    assert v3.status_code == 201 and v3.json()["version"] == 3, v3.text
    assert _deploy_of(server, 3)["outputs"] == {"deployed": "v3@3"}
    history = server.http.get("/triggers/res-deploy/on-image/history").json()
    # the v2 change fired once (its key), however often it was handed on
    assert sorted(f["key"] for f in history) == ["resource:res-image:2", "resource:res-image:3"]
    assert len(_deploys(server)) == 2

    again = server.http.post(f"/runs/{deploy['id']}/rerun", json={})
    assert again.status_code == 201, again.text
    rerun = server.wait(again.json()["id"])
    assert rerun["outputs"] == {"deployed": "v2@2"}
    assert _uses(rerun) == [("read", "res-image", 2, "image")]
    latest = server.http.post(f"/runs/{deploy['id']}/rerun", json={"latest": True})
    assert latest.status_code == 201, latest.text
    newest = server.wait(latest.json()["id"])
    assert newest["outputs"] == {"deployed": "v3@3"}
    assert _uses(newest) == [("read", "res-image", 3, "image")]


def test_a_write_that_breaks_the_schema_fails_the_step_and_records_no_version(
    server: Server,
) -> None:
    _create(server, "res-strict", {"tag": "v1"}, TAG_SCHEMA)
    spec = BUILD.replace("res-image", "res-strict").replace("TAG", "latest-build")
    run = server.run_and_wait(spec)
    assert run["status"] == "failed"
    step = run["steps"]["build"]
    assert step["status"] == "failed"
    assert step["error"].startswith(
        "writes: resource 'res-strict' data /tag: must match the pattern"
    ), step["error"]
    assert "latest-build" not in step["error"]
    assert _history(server, "res-strict") == [1]
    assert _uses(run) == []


PARALLEL = """\
name: res-parallel
steps:
""" + "".join(
    f"""\
  w{i}:
    uses: noop
    with: {{n: {i}}}
    writes:
      res-counter: {{writer: "${{{{ run.id }}}}", n: "${{{{ steps.w{i}.outputs.n }}}}"}}
"""
    for i in range(4)
)


def test_writers_at_the_same_time_get_consecutive_versions_and_none_is_lost(
    server: Server,
) -> None:
    _create(server, "res-counter", {"n": 0})
    ids = [server.submit(PARALLEL)["id"] for _ in range(3)]
    # a person writes while the runs do
    person = server.http.post("/resources/res-counter/versions", json={"data": {"n": "person"}})
    assert person.status_code == 201, person.text
    runs = [server.wait(i) for i in ids]
    assert all(r["status"] == "succeeded" for r in runs), runs
    assert sorted(_history(server, "res-counter")) == list(range(1, 3 * 4 + 2 + 1))
    versions = server.http.get("/resources/res-counter/versions").json()
    written = {(v["run_id"], v["step"]) for v in versions if v["run_id"]}
    assert written == {(r["id"], f"w{i}") for r in runs for i in range(4)}
    for r in runs:  # each run's record lists what it wrote
        assert sorted(u[3] or "" for u in _uses(r)) == [f"w{i}" for i in range(4)]


WATCHER = """\
name: res-watcher
steps:
  a:
    run: "true"
triggers:
  on-image:
    kind: resource
    resource: res-private
"""
STRANGER = """\
name: res-stranger
steps:
  a:
    run: echo tag=v9 >> "$LOCKSTEP_OUTPUTS"
    writes:
      res-private: {tag: "${{ steps.a.outputs.tag }}"}
"""


def test_another_project_can_neither_read_nor_write_nor_trigger_on_a_resource(
    server: Server,
) -> None:
    _create(server, "res-private", {"tag": "v1"})
    made = server.api.post("/projects", json={"name": "res-other"})
    assert made.status_code in (201, 409), made.text
    other = httpx.Client(
        base_url=server.url + "/api/v1/projects/res-other",
        headers=dict(server.http.headers),
        timeout=30,
    )
    with other:
        for path in ("", "/versions", "/diff?old=1&new=1"):
            got = other.get(f"/resources/res-private{path}")
            assert got.status_code == 404, got.text
            assert got.json()["detail"].startswith(
                "resource 'res-private' not found in project 'res-other'"
            )
        wrote = other.post("/resources/res-private/versions", json={"data": {"tag": "v2"}})
        assert wrote.status_code == 404, wrote.text
        assert other.get("/resources").json() == []
        # a step of another project cannot write it: refused before the run exists
        refused = other.post("/runs", json={"spec": STRANGER})
        assert refused.status_code == 400, refused.text
        assert refused.json()["detail"] == (
            "the workflow writes resource 'res-private', which project 'res-other' does not "
            "have; create it with `lockstep resources create res-private --data FILE`"
        )
        assert other.get("/runs", params={"workflow": "res-stranger"}).json()["items"] == []
        # nor trigger on it: going live is refused, and $LIVE stays where it was
        assert other.post("/definitions", json={"name": "res-watcher"}).status_code == 201
        number = _publish_to(other, WATCHER, "res-watcher")
        live = other.put("/definitions/res-watcher/tags/$LIVE", json={"version": number})
        assert live.status_code == 400, live.text
        assert (
            "triggers.on-image.resource of version 1 of 'res-watcher': resource "
            in (live.json()["detail"])
        )
        assert "'res-private' not found in project 'res-other'" in live.json()["detail"]
        assert other.get("/triggers").json() == []
    # someone who is only a member of the other project does not see this one at all
    token = server.api.post("/tokens", json={"name": "res-out", "user": "res-outsider"})
    assert token.status_code == 201, token.text
    joined = server.api.put(
        "/projects/res-other/members", json={"user": "res-outsider", "role": "admin"}
    )
    assert joined.status_code in (200, 201), joined.text
    outsider = {"authorization": f"Bearer {token.json()['token']}"}
    got = httpx.get(server.url + "/api/v1/projects/default/resources/res-private", headers=outsider)
    assert got.status_code == 404 and got.json()["detail"] == "project 'default' not found"
    assert _history(server, "res-private") == [1]


def _publish_to(http: httpx.Client, text: str, name: str) -> int:
    draft = http.put(
        f"/definitions/{name}/draft", content=text, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    published = http.post(f"/definitions/{name}/publish", json={"message": "m"})
    assert published.status_code == 201, published.text
    return int(published.json()["number"])


SECRET_SCHEMA = {
    "type": "object",
    "properties": {"endpoint": {"type": "string"}, "password": {"type": "string", "secret": True}},
}


def _refused(resp: httpx.Response, status: int, detail: str) -> None:
    assert resp.status_code == status, resp.text
    said = resp.json()["detail"]
    assert said == detail or said.startswith(detail), said
    assert "\n" not in said


def test_bad_input_is_refused_in_one_line_and_changes_nothing(server: Server) -> None:
    _create(server, "res-db", {"endpoint": "https://db"}, SECRET_SCHEMA)
    _create(server, "res-tag", {"tag": "v1"}, TAG_SCHEMA)

    _refused(
        server.http.get("/resources/res-nope"),
        404,
        "resource 'res-nope' not found in project 'default'; create it with "
        "`lockstep resources create NAME --data FILE`",
    )
    _refused(
        server.http.get("/resources/res-tag", params={"version": 9}),
        404,
        "resource 'res-tag' has no version 9; its versions are 1 to 1",
    )
    _refused(
        server.http.get("/resources/res-tag/diff", params={"old": 1, "new": 9}),
        404,
        "resource 'res-tag' has no version 9",
    )
    _refused(
        server.http.post("/resources/res-tag/versions", json={"data": {"tag": "nightly"}}),
        400,
        "resource 'res-tag' data /tag: must match the pattern",
    )
    _refused(
        server.http.post("/resources", json={"name": "Res_Bad", "data": {}}),
        400,
        "invalid resource name 'Res_Bad': use lowercase letters, digits and '-'",
    )
    _refused(server.http.get("/resources/Res_Bad"), 400, "invalid resource name 'Res_Bad'")
    leaked = server.http.post(
        "/resources/res-db/versions",
        json={"data": {"endpoint": "https://db", "password": "hunter2-plain"}},
    )
    _refused(
        leaked,
        400,
        "resource 'res-db' data /password is marked secret in its schema: write a reference "
        '{"$secret": "NAME"} to a project secret, never the value',
    )
    assert "hunter2" not in leaked.text
    _refused(
        server.http.post(
            "/resources/res-db/versions",
            json={"data": {"endpoint": "https://db", "password": {"$secret": "RES_NOT_SET"}}},
        ),
        400,
        "data of resource 'res-db' refers to secret 'RES_NOT_SET', which project 'default' "
        "does not have; set it with `lockstep secrets set RES_NOT_SET`",
    )
    _refused(
        server.http.post("/resources", json={"name": "res-tag", "data": {"tag": "v1"}}),
        409,
        "resource 'res-tag' already exists in project 'default'",
    )
    _refused(
        server.http.post("/resources", json={"name": "res-bad", "data": {}, "schema": {"type": 5}}),
        400,
        "schema of resource 'res-bad' is not a valid JSON Schema",
    )
    deep = '{"a":' * 900 + "1" + "}" * 900
    for body in (
        '{"name": "res-deep", "data": {"x": ' + deep + "}}",
        '{"name": "res-deep", "data": {}, "schema": ' + deep + "}",
    ):
        nested = server.http.post(
            "/resources", content=body, headers={"content-type": "application/json"}
        )
        assert nested.status_code == 400 and "nests deeper than 64 levels" in nested.text
    # runs that read what does not exist are refused before they are recorded
    reads = "name: res-reader\nresources: {x: REF}\nsteps:\n  a:\n    run: 'true'\n"
    _refused(
        server.http.post("/runs", json={"spec": reads.replace("REF", "res-nope")}),
        400,
        "resources.x: resource 'res-nope' not found in project 'default'",
    )
    _refused(
        server.http.post("/runs", json={"spec": reads.replace("REF", "res-tag@4")}),
        400,
        "resources.x: resource 'res-tag' has no version 4; its versions are 1 to 1",
    )
    unknown = reads.replace("REF", "res-tag").replace("'true'", "echo ${{ resources.y.data }}")
    bad = server.http.post("/runs", json={"spec": unknown})
    assert bad.status_code == 422, bad.text
    assert bad.json()["detail"] == (
        "workflow.yaml:5:5: expression 'resources.y.data': unknown resource 'y'; declared: x"
    )

    assert _history(server, "res-tag") == [1] and _history(server, "res-db") == [1]
    assert server.http.get("/resources/res-bad").status_code == 404
    assert server.http.get("/resources/res-deep").status_code == 404
    assert server.http.get("/resources/Res_Bad").status_code == 400
    # (only this test's workflow is counted: other tests' schedules may add runs meanwhile)
    assert server.http.get("/runs", params={"workflow": "res-reader"}).json()["items"] == []


SECRET_READER = """\
name: res-secret-reader
resources: {db: res-vault}
steps:
  connect:
    env:
      PASS: ${{ resources.db.data.password }}
      HOST: ${{ resources.db.data.endpoint }}
    run: |
      test "$PASS" = "s3cret-res-value"
      echo "connecting to $HOST with $PASS"
"""


def test_a_secret_reference_in_a_resource_reaches_the_step_as_a_masked_secret(
    server: Server,
) -> None:
    put = server.http.put("/secrets/RES_VAULT_PASS", json={"value": "s3cret-res-value"})
    assert put.status_code in (200, 201), put.text
    data = {"endpoint": "https://db.example", "password": {"$secret": "RES_VAULT_PASS"}}
    _create(server, "res-vault", data, SECRET_SCHEMA)
    shown = server.http.get("/resources/res-vault")
    assert shown.json()["version"]["data"] == data  # the reference, never the value
    run = server.run_and_wait(SECRET_READER)
    assert run["status"] == "succeeded", run
    lines = [line["text"] for line in server.logs(run["id"], "connect")]
    assert "connecting to https://db.example with ***" in lines
    assert "s3cret" not in str(run) and "s3cret" not in str(lines)
