"""A workflow.yaml ``http:`` step, as a user writes and runs it: its ``with:`` input goes to a
service as the JSON body, the JSON object answered is its outputs (checked against its
``outputs`` schema) for the next step to read, and a service that fails fails the step with
one clear line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.harness import cli


class Receiver:
    """A JSON service on loopback: ``/price`` doubles ``qty``, ``/broken`` answers HTTP 500."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                outer.calls.append((self.path, self.headers.get("x-token"), body))
                if self.path == "/broken":
                    status, data = 500, b"database is down\n"
                else:
                    status, data = 200, json.dumps({"total": body["qty"] * 2}).encode()
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    service = Receiver()
    yield service
    service.httpd.shutdown()
    service.httpd.server_close()


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
    home: Path, tmp_path: Path, receiver: Receiver
) -> None:
    wf = _workflow(tmp_path, f"{receiver.url}/price")
    assert cli(home, "validate", str(wf)).returncode == 0
    proc = cli(home, "run", str(wf), "-p", "qty=21", "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = json.loads(proc.stdout)
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"] == {"doubled": "42"}
    assert receiver.calls == [("/price", "t0ken", {"qty": 21})]
    logs = cli(home, "runs", "logs", run["id"], "price")
    assert f"POST {receiver.url}/price" in logs.stdout and "HTTP 200" in logs.stdout


def test_a_service_that_answers_500_fails_the_step_with_one_clear_line(
    home: Path, tmp_path: Path, receiver: Receiver
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
