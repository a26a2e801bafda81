"""A tenant forges output-by-reference markers naming another project's stored output, in
every form a step or a run can carry one: no route and no loader hands over the other
project's bytes (a forged marker is refused in a step's outputs, and stays data elsewhere)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import TERMINAL, Server, wait_for

VICTIM = f"VICTIM-{secrets.token_hex(6)}"


@pytest.fixture(scope="module")
def victim(server: Server) -> dict[str, Any]:
    """A big output of project 'default', stored by reference: its marker."""
    script = f"""python3 -c "import json; print(json.dumps({{'big': ['{VICTIM}'] * 20000}}))" """
    spec = f"name: victim\nsteps:\n  make:\n    run: {json.dumps(script + '> $LOCKSTEP_OUTPUTS')}\n"
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded", run
    marker: dict[str, Any] = run["steps"]["make"]["outputs"]["big"]
    assert marker["__lockstep_ref__"]["key"].startswith("outputs/default/")
    return {"marker": marker, "run": run["id"]}


@pytest.fixture(scope="module")
def mallory(server: Server) -> Iterator[httpx.Client]:
    """An operator of another project, and nothing else."""
    assert server.api.post("/projects", json={"name": "mallory"}).status_code in (201, 409)
    put = server.api.put("/projects/mallory/members", json={"user": "mallory", "role": "operator"})
    assert put.status_code in (200, 201, 204), put.text
    token = server.api.post("/tokens", json={"name": "t-mallory", "user": "mallory"})
    assert token.status_code == 201, token.text
    headers = {"authorization": f"Bearer {token.json()['token']}"}
    with httpx.Client(
        base_url=server.url + "/api/v1/projects/mallory", headers=headers, timeout=30
    ) as client:
        yield client


def _wait(client: httpx.Client, run_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = client.get(f"/runs/{run_id}").json()
        return run if run["status"] in TERMINAL else None

    return wait_for(done, timeout=90, what=f"run {run_id}")


def test_forged_markers_never_read_another_projects_output(
    server: Server, victim: dict[str, Any], mallory: httpx.Client
) -> None:
    # what another tenant could guess or learn of the key; the preview is its own
    marker = {"__lockstep_ref__": {**victim["marker"]["__lockstep_ref__"], "preview": "?"}}
    text = json.dumps(marker)
    flow = json.dumps(marker)  # JSON is YAML flow syntax
    as_json = json.dumps(f"echo '{{\"x\": {text}}}' > $LOCKSTEP_OUTPUTS")
    as_line = json.dumps(f"echo 'x={text}' > $LOCKSTEP_OUTPUTS")
    nested = json.dumps({"x": {"list": [1, {"deeper": marker}]}})
    as_nested = json.dumps(f"echo '{nested}' > $LOCKSTEP_OUTPUTS")
    spec = f"""
name: forge
params:
  type: object
  properties: {{data: {{type: object}}}}
steps:
  json-out:
    continue_on_error: true
    run: {as_json}
  kv-out:
    continue_on_error: true
    outputs: {{type: object, properties: {{x: {{type: object}}}}}}
    run: {as_line}
  nested:
    continue_on_error: true
    run: {as_nested}
  echo:
    uses: noop
    with: {{x: {flow}}}
  via-with:
    with: {{data: {flow}}}
    run: cat "$LOCKSTEP_INPUT"
  via-param:
    with: {{data: "${{{{ params.data }}}}"}}
    run: cat "$LOCKSTEP_INPUT"
  via-env:
    if: ${{{{ params.data.__lockstep_ref__.size > 0 }}}}
    env: {{X: "${{{{ params.data }}}}"}}
    run: echo "$X"
outputs:
  stolen: ${{{{ params.data }}}}
"""
    resp = mallory.post("/runs", json={"spec": spec, "params": {"data": marker}})
    assert resp.status_code == 201, resp.text
    run = _wait(mallory, resp.json()["id"])
    steps = run["steps"]
    # a step's outputs can never hold a marker, however it writes one
    for step in ("json-out", "kv-out", "nested"):
        assert steps[step]["status"] == "failed", steps[step]
        assert "'__lockstep_ref__' is reserved" in steps[step]["error"], steps[step]["error"]
    # handed to a step (a with: value, a param, an env value, a condition): plain data
    for step in ("via-with", "via-param", "via-env", "echo"):
        assert steps[step]["status"] == "succeeded", (step, steps[step])
    logs = [line["text"] for line in mallory.get(f"/runs/{run['id']}/logs").json()["lines"]]
    assert any(marker["__lockstep_ref__"]["key"] in line for line in logs)

    # every route that returns an output: 404 or the literal data, never the blob
    answers = [
        mallory.get(f"/runs/{run['id']}/outputs/stolen"),
        mallory.get(f"/runs/{run['id']}/outputs/x", params={"step": "echo"}),
        mallory.get(f"/runs/{run['id']}/outputs/x", params={"step": "json-out"}),
        mallory.get(f"/runs/{run['id']}"),
        mallory.get(f"/runs/{run['id']}/steps"),
        mallory.get(f"/runs/{run['id']}/logs"),
        mallory.get(f"/runs/{run['id']}/artifacts"),
    ]
    assert answers[0].status_code == 200 and answers[0].json() == marker
    assert answers[1].status_code == 200 and answers[1].json() == marker
    assert answers[2].status_code == 404
    # the victim's run and its output are not mallory's, by any route
    answers.append(mallory.get(f"/runs/{victim['run']}/outputs/big", params={"step": "make"}))
    assert answers[-1].status_code == 404
    key = marker["__lockstep_ref__"]["key"]
    answers.append(httpx.get(f"{server.url}/api/v1/worker/blobs", params={"key": key}))
    answers.append(mallory.get(f"{server.url}/api/v1/worker/blobs", params={"key": key}))
    assert [a.status_code for a in answers[-2:]] == [401, 403]
    # even a worker's token gets a key only with its own project's run in it
    moved = key.replace("outputs/default/", "outputs/mallory/")
    admin = server.api.get("/worker/blobs", params={"key": moved})
    assert admin.status_code == 404
    for answer in [*answers, admin]:
        assert VICTIM not in answer.text, answer.request.url


def test_the_owners_reference_still_streams(server: Server, victim: dict[str, Any]) -> None:
    full = server.http.get(f"/runs/{victim['run']}/outputs/big", params={"step": "make"})
    assert full.status_code == 200 and full.json() == [VICTIM] * 20000
