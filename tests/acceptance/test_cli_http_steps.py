"""A workflow.yaml ``http:`` step, as a user writes and runs it: its ``with:`` input goes to a
service as the JSON body, the JSON object answered is its outputs (checked against its
``outputs`` schema) for the next step to read, and a service that fails fails the step with
one clear line. The services here are on loopback, which the worker reaches only because
``LOCKSTEP_OUTBOUND_ALLOW`` says so; without it, or at a redirect elsewhere, nothing is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import cli
from tests.receivers import Call, HttpReceiver, Redirect, http_receiver

#: the worker may call the receiver on 127.0.0.1, and no other loopback or private address
ALLOW = {"LOCKSTEP_OUTBOUND_ALLOW": "127.0.0.1/32"}


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
    proc = cli(home, "run", str(wf), "-p", "qty=21", "--json", **ALLOW)
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
    proc = cli(home, "run", str(wf), "-p", "qty=1", "--no-watch", **ALLOW)
    assert proc.returncode == 1, proc.stderr
    run_id = json.loads(cli(home, "runs", "list", "--json").stdout)[0]["id"]
    record = json.loads(cli(home, "runs", "show", run_id, "--json").stdout)
    assert record["status"] == "failed"
    assert record["steps"]["report"]["status"] == "upstream_failed"
    price = record["steps"]["price"]
    assert price["status"] == "failed"
    assert price["error"] == f"POST {receiver.url}/broken answered HTTP 500: database is down"


def _failed_step(home: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The only run's record and its ``price`` step, which failed."""
    run_id = json.loads(cli(home, "runs", "list", "--json").stdout)[0]["id"]
    record = json.loads(cli(home, "runs", "show", run_id, "--json").stdout)
    assert record["status"] == "failed"
    assert record["steps"]["report"]["status"] == "upstream_failed"
    assert record["steps"]["price"]["status"] == "failed"
    return record, record["steps"]["price"]


def test_a_loopback_service_is_refused_by_default_and_gets_nothing(
    home: Path, tmp_path: Path, receiver: HttpReceiver
) -> None:
    wf = _workflow(tmp_path, f"{receiver.url}/price")
    proc = cli(home, "run", str(wf), "-p", "qty=1", "--no-watch")
    assert proc.returncode == 1, proc.stderr
    _, price = _failed_step(home)
    assert price["error"] == (
        f"POST {receiver.url}/price refused: 127.0.0.1 is a loopback address; "
        "to allow it set LOCKSTEP_OUTBOUND_ALLOW=127.0.0.1/32"
    )
    assert receiver.calls == []


def test_a_redirect_to_an_address_not_allowed_is_refused_at_the_hop(
    home: Path, tmp_path: Path, receiver: HttpReceiver
) -> None:
    with http_receiver(host="127.0.0.2") as elsewhere:
        receiver.answer = lambda call, n: (307, Redirect(f"{elsewhere.url}/price"))
        wf = _workflow(tmp_path, f"{receiver.url}/moved")
        proc = cli(home, "run", str(wf), "-p", "qty=1", "--no-watch", **ALLOW)
        assert proc.returncode == 1, proc.stderr
        _, price = _failed_step(home)
        assert price["error"] == (
            f"POST {elsewhere.url}/price refused: 127.0.0.2 is a loopback address; "
            "to allow it set LOCKSTEP_OUTBOUND_ALLOW=127.0.0.2/32"
        )
        assert [c.path for c in receiver.calls] == ["/moved"]
        assert elsewhere.calls == []
        logs = cli(home, "runs", "logs", _failed_step(home)[0]["id"], "price").stdout
        assert f"HTTP 307: redirected to {elsewhere.url}/price" in logs


@pytest.mark.parametrize("command", [("worker",), ("server", "--port", "0")])
def test_a_bad_allow_setting_stops_the_worker_or_server_with_one_line(
    home: Path, command: tuple[str, ...]
) -> None:
    proc = cli(home, *command, timeout=60, LOCKSTEP_OUTBOUND_ALLOW="127.0.0.1/32,10.0.0.1/8")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: LOCKSTEP_OUTBOUND_ALLOW: '10.0.0.1/8' is not an address range (10.0.0.1/8 has "
        "host bits set); write ranges like 127.0.0.1/32,10.0.0.0/8,fd00::/8 separated by commas"
    ]
