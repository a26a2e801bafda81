"""Several servers on one PostgreSQL database and one Temporal (no engine of their own): a
server killed -9 while it interprets a run and runs its step loses nothing — another server
takes the run's interpretation over (its control worker polls the same queue), the step lost
with the dead server's worker runs again on the other's, and every record and log line the
dead one acknowledged is still there."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.harness import Server, wait_for
from tests.integration.test_engine_outage import Engine
from tests.postgres import Postgres

pytestmark = pytest.mark.slow


def _spec(counter: Path) -> str:
    return f"""\
name: taken-over
steps:
  one:
    run: echo one >> {counter}; echo "x=1" >> "$LOCKSTEP_OUTPUTS"
  two:
    needs: [one]
    run: |
      echo two-$LOCKSTEP_ATTEMPT >> {counter}
      echo "begin attempt $LOCKSTEP_ATTEMPT"
      # past the attempt's first heartbeat, which names its worker, before the kill
      if [ "$LOCKSTEP_ATTEMPT" = 1 ]; then sleep 1; echo steady; sleep 300; fi
      echo "y=${{{{ steps.one.outputs.x }}}}" >> "$LOCKSTEP_OUTPUTS"
  three:
    needs: [two]
    run: echo three >> {counter}
"""


@pytest.fixture
def shared(postgres: Postgres, tmp_path: Path) -> Iterator[dict[str, str]]:
    engine = Engine(tmp_path)
    engine.start()
    try:
        yield {
            "LOCKSTEP_DATABASE_URL": postgres.database(),
            "LOCKSTEP_SECRET_KEY": Fernet.generate_key().decode(),
            "LOCKSTEP_TEMPORAL_ADDRESS": f"127.0.0.1:{engine.port}",
            # one place for step logs, as a shared filesystem would be
            "LOCKSTEP_LOGS_DIR": str(tmp_path / "logs"),
        }
    finally:
        engine.stop()


def _logged(server: Server, run_id: str, step: str, text: str) -> bool:
    return any(text in line["text"] for line in server.logs(run_id, step))


def test_a_server_killed_mid_run_is_taken_over_by_another(
    shared: dict[str, str], tmp_path: Path
) -> None:
    counter = tmp_path / "executions"
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    a = Server(first, heartbeat_timeout=3, **shared)
    a.start()
    b = Server(second, heartbeat_timeout=3, **shared)
    try:
        # only a runs while the run starts: its interpreter and step `two` are a's
        run_id = a.submit(_spec(counter))["id"]
        wait_for(lambda: _logged(a, run_id, "two", "steady"), timeout=60, what="two")
        assert not (first / "temporal.db").exists()  # no engine of its own: the shared one
        shutil.copy(first / "admin.token", second / "admin.token")  # one database, one admin
        b.start()
        a.kill9()

        run = b.wait(run_id, timeout=120)
        assert run["status"] == "succeeded", run
        # each step ran once, but the one lost with a's worker: again on b's
        assert counter.read_text().split() == ["one", "two-1", "two-2", "three"]
        lost, redo = run["steps"]["two"]["history"]
        assert (lost["status"], lost["error"]) == ("failed", "worker lost: no heartbeat for 3s")
        assert redo["status"] == "succeeded" and redo["worker"] != lost["worker"]
        assert run["steps"]["two"]["outputs"] == {"y": "1"}
        assert run["steps"]["three"]["history"][0]["worker"] == redo["worker"]
        # what a acknowledged before it died is still there, read through b
        assert _logged(b, run_id, "two", "begin attempt 1")
        assert run["steps"]["one"]["attempts"] == 1
        # and a, started again, sees the same record: one database
        a.start()
        assert a.http.get(f"/runs/{run_id}").json()["status"] == "succeeded"
    finally:
        b.stop()
        a.stop()
