"""The JSON state-machine dialect on the real engine: conditional transitions, loops bounded by
visits, noop/shell/http executors, and typed contracts checked at the right step. A real local
HTTP service stands in for the vendor's Lambda."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Server
from tests.receivers import Answer, HttpReceiver, http_receiver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def service() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


def _answer(make: Callable[[Any, int], Any]) -> Answer:
    """An answer from the request's body alone, always HTTP 200."""
    return lambda call, n: (200, make(call.body, n))


def _bodies(service: HttpReceiver) -> list[Any]:
    return [call.body for call in service.calls]


VENDOR = {
    "workflowName": "my-workflow",
    "steps": [
        {
            "name": "fetchData",
            "integrationDetails": {
                "type": "/justworkflowit/http",
                "config": {"url": "URL/fetch"},
                "inputDefinition": {"$ref": "#/definitions/workflowInput"},
                "outputDefinition": {"$ref": "#/definitions/fetchOutput"},
            },
            "transitionToStep": "processData",
        },
        {
            "name": "processData",
            "integrationDetails": {
                "type": "/justworkflowit/noop",
                "inputDefinition": {"$ref": "#/definitions/fetchOutput"},
                "outputDefinition": {"$ref": "#/definitions/fetchOutput"},
            },
            "transitionToStep": None,
        },
    ],
    "definitions": {
        "workflowInput": {
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": False,
        },
        "fetchOutput": {
            "type": "object",
            "properties": {"data": {"type": "string"}},
            "required": ["data"],
            "additionalProperties": False,
        },
    },
}


def _vendor(url: str) -> str:
    return json.dumps(VENDOR).replace("URL", url)


def test_the_vendor_example_runs_with_a_local_endpoint(
    server: Server, service: HttpReceiver
) -> None:
    service.answer = _answer(lambda body, n: {"data": "fetched"})
    run = server.run_and_wait(_vendor(service.url), file="workflow.json")
    assert run["status"] == "succeeded", run
    assert run["workflow"] == "my-workflow"
    assert run["outputs"] == {"data": "fetched"}
    assert [s["status"] for s in run["steps"].values()] == ["succeeded", "succeeded"]
    assert run["steps"]["processData"]["outputs"] == {"data": "fetched"}
    assert _bodies(service) == [{}]


def test_an_output_violation_fails_the_step_that_produced_it(
    server: Server, service: HttpReceiver
) -> None:
    service.answer = _answer(lambda body, n: {"data": 5})
    run = server.run_and_wait(_vendor(service.url), file="workflow.json")
    assert run["status"] == "failed"
    fetch = run["steps"]["fetchData"]
    assert fetch["status"] == "failed"
    assert fetch["error"] == "step 'fetchData' output /data: must be of type string"
    assert run["steps"]["processData"]["status"] == "skipped"


def test_an_input_violation_stops_the_step_before_it_starts(
    server: Server, service: HttpReceiver
) -> None:
    doc = json.loads(_vendor(service.url))
    doc["steps"][1]["integrationDetails"]["inputDefinition"] = {
        "type": "object",
        "properties": {"data": {"type": "string", "maxLength": 3}},
    }
    service.answer = _answer(lambda body, n: {"data": "too long"})
    run = server.run_and_wait(json.dumps(doc), file="workflow.json")
    assert run["status"] == "failed"
    assert run["steps"]["fetchData"]["status"] == "succeeded"
    assert run["steps"]["processData"]["error"] == (
        "step 'processData' input /data: 'too long' is too long"
    )
    # the run's own input is the first step's input: checked before any run exists
    bad = server.http.post("/runs", json={"spec": _vendor(service.url), "params": {"extra": 1}})
    assert bad.status_code == 422 and "extra" in bad.text


def test_a_conditional_loop_runs_until_its_exit(server: Server, service: HttpReceiver) -> None:
    text = (ROOT / "examples/statemachine/workflow.json").read_text()
    text = text.replace("http://127.0.0.1:8099", service.url)
    # the service echoes the request and adds its verdict; a pending answer is sent back
    service.answer = _answer(
        lambda body, n: {
            **body,
            "status": "pending" if n < 3 else "approved",
            "score": 0.9,
        }
    )
    order = {
        "orderId": "o-1",
        "items": [
            {"sku": "a", "price": 2.5, "quantity": 2},
            {"sku": "b", "price": 1, "quantity": 1},
        ],
    }
    run = server.run_and_wait(text, params=order, file="workflow.json")
    assert run["status"] == "succeeded", (run["error"], run["steps"])
    priced = {"orderId": "o-1", "total": 6.0, "currency": "EUR"}
    assert run["outputs"] == {**priced, "status": "approved", "score": 0.9}
    assert _bodies(service) == [priced] + [{**priced, "status": "pending", "score": 0.9}] * 2
    score = run["steps"]["scoreOrder"]
    assert score["status"] == "succeeded" and score["attempts"] == 3
    assert [a["status"] for a in score["history"]] == ["succeeded"] * 3


def test_a_loop_past_its_visits_fails_the_run(server: Server, service: HttpReceiver) -> None:
    text = (ROOT / "examples/statemachine/workflow.json").read_text()
    doc = json.loads(text.replace("http://127.0.0.1:8099", service.url))
    doc["steps"][1]["transitionToStep"]["conditions"][0]["if"] = "output.status == 'pending'"
    doc["steps"][1]["maxVisits"] = 2
    service.answer = _answer(lambda body, n: {**body, "status": "pending"})
    order = {"orderId": "o-2", "items": [{"sku": "a", "price": 1, "quantity": 1}]}
    run = server.run_and_wait(json.dumps(doc), params=order, file="workflow.json")
    assert run["status"] == "failed"
    assert run["error"].startswith("step 'scoreOrder' has run 2 times, its maxVisits,")
    assert len(service.calls) == 2
    assert run["steps"]["finish"]["status"] == "skipped"


def test_a_bad_machine_is_refused_with_positions(server: Server) -> None:
    doc = json.loads(_vendor("http://127.0.0.1:1"))
    doc["steps"][0]["transitionToStep"] = "procesData"
    resp = server.http.post("/runs", json={"spec": json.dumps(doc, indent=1), "file": "wf.json"})
    assert resp.status_code == 422
    assert "did you mean 'processData'" in resp.text
    assert "wf.json:" in resp.json()["detail"]


def test_a_published_machine_runs_by_selector(server: Server, service: HttpReceiver) -> None:
    service.answer = _answer(lambda body, n: {"data": "v"})
    assert server.http.post("/definitions", json={"name": "my-machine"}).status_code == 201
    doc = _vendor(service.url).replace('"my-workflow"', '"my-machine"')
    assert server.http.put("/definitions/my-machine/draft", content=doc).json()["valid"]
    assert server.http.post("/definitions/my-machine/publish", json={}).status_code == 201
    resp = server.http.post("/runs", json={"selector": "my-machine@1"})
    assert resp.status_code == 201, resp.text
    run = server.wait(resp.json()["id"])
    assert (run["status"], run["version"], run["outputs"]) == ("succeeded", 1, {"data": "v"})


def test_a_big_output_is_read_by_the_branches_and_handed_to_the_next_step(
    server: Server,
) -> None:
    """An output stored by reference (over 64 KiB) is transparent to a machine too: its
    conditions read the value and the next step gets the value as input."""
    make = 'import json; print(json.dumps({"rows": list(range(20000))}))'
    count = (
        "import json, os; d = json.load(open(os.environ['LOCKSTEP_INPUT'])); print(len(d['rows']))"
    )
    doc = {
        "workflowName": "big-machine",
        "steps": [
            {
                "name": "make",
                "integrationDetails": {
                    "type": "shell",
                    "config": {"run": f"python3 -c '{make}' > \"$LOCKSTEP_OUTPUTS\""},
                },
                "transitionToStep": {
                    "conditions": [{"if": "size(output.rows) == 20000", "next": "count"}],
                    "default": None,
                },
            },
            {
                "name": "count",
                "integrationDetails": {
                    "type": "shell",
                    "config": {"run": ["python3", "-c", count]},
                },
                "transitionToStep": None,
            },
        ],
    }
    run = server.run_and_wait(json.dumps(doc), file="workflow.json")
    assert run["status"] == "succeeded", (run["error"], run["steps"])
    assert run["steps"]["make"]["outputs"]["rows"]["__lockstep_ref__"]["size"] > 64 * 1024
    assert run["steps"]["count"]["status"] == "succeeded"  # the branch saw the real list
    assert "20000" in [line["text"] for line in server.logs(run["id"], "count")]
