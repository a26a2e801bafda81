"""OpenTelemetry traces: a server started with the standard ``OTEL_*`` variables exports over
OTLP/HTTP to a real receiver (on loopback, decoding the protobuf bodies): a step attempt's span
names its run, step, attempt and pool, a child run's spans are in its parent's trace, and no
attribute holds a secret's or a param's value. Without the variables a server sends nothing and
imports nothing of OpenTelemetry's SDK. The real server and engine."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from lockstep import tracing
from lockstep.errors import ConfigError
from tests.harness import BIN, Server, cli, env_for, wait_for

SECRET = "tr4ce-s3cr3t-value"
PARAM = "tr4ce-param-value"

KID = """\
name: traced-kid
steps:
  hop:
    run: echo "hop=1" >> "$LOCKSTEP_OUTPUTS"
"""

PARENT = """\
name: traced-parent
params: {type: object, properties: {word: {type: string}}}
steps:
  call:
    workflow: traced-kid
  plain:
    env: {TOKEN: "${{ secrets.TRACE_TOKEN }}", WORD: "${{ params.word }}"}
    run: test -n "$TOKEN" && echo "$WORD"
  away:
    runs_on: edge
    run: echo away
"""

TICK = """\
name: traced-tick
steps:
  tock:
    run: echo tock
triggers:
  tick:
    every: 2s
"""


@pytest.fixture(autouse=True)
def _no_otel_variables_of_the_developer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers and workers here inherit this process's environment: only the tests'
    own OTEL_* variables count."""
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)


class Receiver:
    """An OTLP/HTTP trace receiver: every span it is sent, flattened."""

    def __init__(self, port: int = 0) -> None:
        self.requests = 0
        self.spans: list[dict[str, Any]] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest.FromString(body)
                with lock:
                    outer.requests += 1
                    for rs in request.resource_spans:
                        resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                        for ss in rs.scope_spans:
                            outer.spans += [
                                {
                                    "name": s.name,
                                    "trace": s.trace_id.hex(),
                                    "service": resource.get("service.name"),
                                    "attributes": {a.key: _value(a.value) for a in s.attributes},
                                    "path": self.path,
                                }
                                for s in ss.spans
                            ]
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.http.server_address[1]

    def of_run(self, run_id: str) -> list[dict[str, Any]]:
        return [s for s in list(self.spans) if s["attributes"].get("lockstep.run_id") == run_id]

    @contextmanager
    def serving(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.http.shutdown()
            self.http.server_close()


def _value(v: Any) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


@contextmanager
def _server(home: Path, **env: str) -> Iterator[Server]:
    server = Server(home, OTEL_BSP_SCHEDULE_DELAY="200", **env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def _worker(home: Path, pool: str, env: dict[str, str]) -> Iterator[None]:
    """A `lockstep worker` process beside the server, as an operator starts one."""
    proc = subprocess.Popen(
        [str(BIN), "worker", "--pool", pool],
        env=env_for(home, OTEL_BSP_SCHEDULE_DELAY="200", **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _publish(server: Server, spec: str) -> None:
    name = spec.split("\n", 1)[0].removeprefix("name: ").strip()
    assert server.http.post("/definitions", json={"name": name}).status_code == 201
    draft = server.http.put(
        f"/definitions/{name}/draft", content=spec, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    published = server.http.post(f"/definitions/{name}/publish", json={})
    assert published.status_code == 201, published.text
    number = published.json()["number"]
    moved = server.http.put(f"/definitions/{name}/tags/$LIVE", json={"version": number})
    assert moved.status_code == 200, moved.text


def test_a_traced_run_names_its_steps_and_its_child_shares_its_trace(home: Path) -> None:
    receiver = Receiver()
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}"}
    with receiver.serving(), _server(home, **otel) as server, _worker(home, "edge", otel):
        assert server.http.put("/secrets/TRACE_TOKEN", json={"value": SECRET}).status_code in (
            200,
            201,
            204,
        )
        _publish(server, KID)
        parent = server.run_and_wait(PARENT, {"word": PARAM})
        assert parent["status"] == "succeeded", parent
        [child] = parent["children"]
        child_id = child["run_id"]

        def attempt_of(run_id: str, step: str) -> dict[str, Any] | None:
            spans = receiver.of_run(run_id)
            return next((s for s in spans if s["attributes"].get("lockstep.step") == step), None)

        plain = wait_for(lambda: attempt_of(parent["id"], "plain"), what="the step's span")
        away = wait_for(lambda: attempt_of(parent["id"], "away"), what="the worker's span")
        hop = wait_for(lambda: attempt_of(child_id, "hop"), what="the child's step span")
        run_span = wait_for(
            lambda: next(
                (s for s in receiver.of_run(child_id) if s["name"].startswith("RunWorkflow:")),
                None,
            ),
            what="the child run's workflow span",
        )
        # a schedule's fire: its span is in the trace of the run it makes
        _publish(server, TICK)
        fired = wait_for(
            lambda: server.http.get("/runs", params={"trigger": "tick"}).json()["items"],
            what="a fire's run",
        )[0]
        server.pause_schedules()
        tock = wait_for(lambda: attempt_of(fired["id"], "tock"), what="the fired run's step span")
        fire = wait_for(
            lambda: next(
                (
                    s
                    for s in receiver.spans
                    if s["name"] == "RunWorkflow:lockstep.TriggerFired"
                    and s["trace"] == tock["trace"]
                ),
                None,
            ),
            what="the fire's span in the run's trace",
        )
    assert plain["attributes"] == {
        **plain["attributes"],
        "lockstep.run_id": parent["id"],
        "lockstep.project": "default",
        "lockstep.step": "plain",
        "lockstep.attempt": 1,
        "lockstep.pool": "default",
    }
    assert plain["name"].startswith("RunActivity:") and plain["service"] == "lockstep-server"
    assert plain["path"] == "/v1/traces"
    # the step the other process ran: its span is in the run's trace, named by its pool
    assert away["service"] == "lockstep-worker" and away["trace"] == plain["trace"]
    assert away["attributes"]["lockstep.pool"] == "edge"
    assert run_span["attributes"]["lockstep.workflow"] == "traced-kid"
    assert fire["attributes"]["lockstep.workflow"] == "traced-tick"
    assert fire["attributes"]["lockstep.trigger"] == "tick"
    # parent and child: one trace, from the parent's start to the child's step
    traces = {s["trace"] for s in receiver.of_run(parent["id"]) + receiver.of_run(child_id)}
    assert traces == {plain["trace"]} and hop["trace"] == plain["trace"]
    # ids and names only: neither the secret nor the param's value is in any span
    for span in receiver.spans:
        said = " ".join(map(str, span["attributes"].values()))
        assert SECRET not in said and PARAM not in said, span


def test_without_the_variables_a_server_sends_nothing(home: Path) -> None:
    # the exporter's default address, where a server tracing by default would send (when a
    # collector of the machine holds it, any port: the test then shows less)
    try:
        receiver = Receiver(4318)
    except OSError:
        receiver = Receiver()
    with receiver.serving(), _server(home, OTEL_SERVICE_NAME="x") as server:
        run = server.run_and_wait("name: quiet\nsteps:\n  one:\n    run: echo hi\n")
        assert run["status"] == "succeeded"
    # stopped: a batched span would have been flushed at the stop
    assert receiver.requests == 0


def test_without_the_variables_nothing_of_the_sdk_is_imported() -> None:
    probe = (
        "import sys; from lockstep import tracing; "
        "import lockstep.server.runtime, lockstep.worker.activities, lockstep.cli.worker; "
        "tracing.start('lockstep-server'); "
        "assert tracing.client_interceptors() == [], 'interceptor'; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))"
    )
    env = {"PATH": "/usr/bin:/bin", "OTEL_SERVICE_NAME": "x"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


def test_traces_asked_for_without_the_extra_are_refused_in_one_line(
    home: Path, tmp_path: Path
) -> None:
    # an environment where OpenTelemetry's SDK cannot be imported (as without lockstep[otel])
    blocker = tmp_path / "blocker" / "opentelemetry" / "sdk"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ImportError('No module named opentelemetry.sdk', name='opentelemetry.sdk')\n"
    )
    done = cli(
        home,
        "worker",
        PYTHONPATH=str(tmp_path / "blocker"),
        OTEL_TRACES_EXPORTER="otlp",
        LOCKSTEP_TEMPORAL_ADDRESS="127.0.0.1:1",
    )
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "pip install 'lockstep[otel]'" in line, done.stderr


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_BSP_SCHEDULE_DELAY": "200"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_the_standard_variables_turn_traces_on(env: dict[str, str], on: bool) -> None:
    assert tracing.wanted(env) is on


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"OTEL_TRACES_EXPORTER": "console"}, "OTEL_TRACES_EXPORTER=console is not supported"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported",
        ),
    ],
)
def test_traces_asked_for_in_a_way_lockstep_does_not_export_are_refused(
    env: dict[str, str], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        with pytest.raises(ConfigError, match=said):
            tracing.start("lockstep-server")
        assert tracing.client_interceptors() == []
    finally:
        tracing.shutdown()
