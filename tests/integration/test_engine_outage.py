"""A run submitted while Temporal is down is accepted, waits queued, and starts when the
engine is back; a retried submission with the same idempotency key creates no second run."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import BIN, Server, pid_alive, wait_for

pytestmark = pytest.mark.slow

TEMPORAL = BIN.parent / "temporal"
SPEC = 'name: patient\nsteps:\n  a:\n    run: echo "x=1" >> "$LOCKSTEP_OUTPUTS"\n'
#: a partial run of it started late still runs only its part, reusing the same run
PARTIAL = """name: part-of-it
steps:
  a:
    run: echo "n=$RANDOM$RANDOM" >> "$LOCKSTEP_OUTPUTS"
  b:
    needs: [a]
    run: echo "m=${{ steps.a.outputs.n }}" >> "$LOCKSTEP_OUTPUTS"
  c:
    run: "true"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Engine:
    """A Temporal dev server of our own, restartable on the same port and history file."""

    def __init__(self, root: Path) -> None:
        self.port = _free_port()
        self.db = root / "temporal.db"
        self.log = root / "temporal.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [str(TEMPORAL), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
        args += ["--port", str(self.port), "--db-filename", str(self.db), "--log-level", "error"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        wait_for(lambda: _listening(self.port), timeout=60, what="temporal to listen")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        wait_for(lambda: not _listening(self.port), timeout=30, what="temporal to stop")

    def stop(self) -> None:
        if self.proc is not None and pid_alive(self.proc.pid):
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path)
    eng.start()
    yield eng
    eng.stop()


def test_a_run_submitted_while_the_engine_is_down_starts_when_it_returns(
    home: Path, engine: Engine
) -> None:
    server = Server(
        home,
        LOCKSTEP_TEMPORAL_ADDRESS=f"127.0.0.1:{engine.port}",
        LOCKSTEP_RECONCILE_INTERVAL="1",
    )
    server.start()
    try:
        assert server.run_and_wait(SPEC)["status"] == "succeeded"
        whole = server.run_and_wait(PARTIAL)
        engine.kill()
        first = server.submit(SPEC, idempotency_key="deploy-42")  # 201: accepted
        assert first["status"] == "queued"
        again = server.submit(SPEC, idempotency_key="deploy-42", expect=200)
        assert again["id"] == first["id"]
        assert server.run(first["id"])["status"] == "queued"  # nothing to run it yet
        part = server.submit(PARTIAL, **{"from": ["b"], "reuse": whole["id"]})
        assert part["status"] == "queued" and part["steps"]["c"]["error"] == "not selected"

        engine.start()  # the same port and history file
        run = server.wait(first["id"], timeout=120)
        assert run["status"] == "succeeded", run
        assert run["steps"]["a"]["outputs"] == {"x": "1"}
        late = server.wait(part["id"], timeout=120)
        assert late["status"] == "succeeded", late
        assert late["steps"]["a"]["reused_from"] == whole["id"]
        n = whole["steps"]["a"]["outputs"]["n"]
        assert late["steps"]["b"]["outputs"] == {"m": n} and late["steps"]["c"]["attempts"] == 0
        listed = server.http.get("/runs", params={"workflow": "patient"}).json()["items"]
        assert len(listed) == 2  # the run before the outage, and exactly one after
    finally:
        server.stop()
