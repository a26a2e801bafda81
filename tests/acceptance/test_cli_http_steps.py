"""A workflow.yaml ``http:`` step, as a user writes and runs it: its ``with:`` input goes to a
service as the JSON body, the JSON object answered is its outputs (checked against its
``outputs`` schema) for the next step to read, and a service that fails fails the step with
one clear line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import cli
from tests.receivers import Call, HttpReceiver, http_receiver


def _price(call: Call, n: int) -> tuple[int, Any]:
    """``/price`` doubles ``qty``; ``/broken`` answers HTTP 500."""
    if call.path == "/broken":
        return 500, b"database is down\n"
    return 200, {"total": call.body["qty"] * 2}


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver(_price) as service:
        yield service


def _workflow(tmp_path: Path, url: str) -> Path:
    wf = tmp_path / "workflow.yaml"
    wf.write_text(
        f"""\
name: pricing
params:
  type: object
  properties: {{qty: {{type: integer}}}}
steps:
  price:
    http: {{url: "{url}", headers: {{X-Token: t0ken}}}}
    with: {{qty: "${{{{ params.qty }}}}"}}
    input: {{type: object, properties: {{qty: {{type: integer}}}}}}
    outputs:
      type: object
      properties: {{total: {{type: integer}}}}
      required: [total]
  report:
    needs: [price]
    run: echo "doubled=${{{{ steps.price.outputs.total }}}}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  doubled: ${{{{ steps.report.outputs.doubled }}}}
"""
    )
    return wf


def test_an_http_step_calls_the_service_and_the_next_step_reads_its_answer(
    home: Path, tmp_path: Path, receiver: HttpReceiver
) -> None:
    wf = _workflow(tmp_path, f"{receiver.url}/price")
    assert cli(home, "validate", str(wf)).returncode == 0
    proc = cli(home, "run", str(wf), "-p", "qty=21", "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = json.loads(proc.stdout)
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"] == {"doubled": "42"}
    assert [(c.path, c.headers.get("x-token"), c.body) for c in receiver.calls] == [
        ("/price", "t0ken", {"qty": 21})
    ]
    logs = cli(home, "runs", "logs", run["id"], "price")
    assert f"POST {receiver.url}/price" in logs.stdout and "HTTP 200" in logs.stdout


def test_a_service_that_answers_500_fails_the_step_with_one_clear_line(
    home: Path, tmp_path: Path, receiver: HttpReceiver
) -> None:
    wf = _workflow(tmp_path, f"{receiver.url}/broken")
    proc = cli(home, "run", str(wf), "-p", "qty=1", "--no-watch")
    assert proc.returncode == 1, proc.stderr
    run_id = json.loads(cli(home, "runs", "list", "--json").stdout)[0]["id"]
    record = json.loads(cli(home, "runs", "show", run_id, "--json").stdout)
    assert record["status"] == "failed"
    assert record["steps"]["report"]["status"] == "upstream_failed"
    price = record["steps"]["price"]
    assert price["status"] == "failed"
    assert price["error"] == f"POST {receiver.url}/broken answered HTTP 500: database is down"
