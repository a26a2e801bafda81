"""kill -9 of a worker, or of the whole server and its Temporal, loses no work."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.harness import BIN, Server, env_for, pid_alive, wait_for

pytestmark = pytest.mark.slow


def _worker(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN), "worker", "--pool", "default"],
        env=env_for(home, LOCKSTEP_HEARTBEAT_TIMEOUT="3"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _logged(server: Server, run_id: str, step: str, text: str) -> bool:
    return any(l["text"] == text for l in server.logs(run_id, step))


def test_worker_killed_mid_step_is_replaced_and_both_attempts_are_recorded(home: Path) -> None:
    server = Server(home, worker=False, heartbeat_timeout=3)
    server.start()
    first = _worker(home)
    second: subprocess.Popen[bytes] | None = None
    try:
        spec = """
name: survive-worker-loss
steps:
  prepare:
    run: echo "x=1" >> "$LOCKSTEP_OUTPUTS"
  long:
    needs: [prepare]
    run: |
      echo "begin attempt $LOCKSTEP_ATTEMPT"
      # past the attempt's first heartbeat, which names its worker, before the kill
      if [ "$LOCKSTEP_ATTEMPT" = 1 ]; then sleep 1; echo steady; sleep 300; fi
      echo "y=${{ steps.prepare.outputs.x }}" >> "$LOCKSTEP_OUTPUTS"
"""
        run_id = server.submit(spec)["id"]
        wait_for(
            lambda: _logged(server, run_id, "long", "steady"), timeout=30, what="the long step"
        )
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = _worker(home)
        run = server.wait(run_id, timeout=60)
        assert run["status"] == "succeeded", run
        step = run["steps"]["long"]
        assert step["outputs"] == {"y": "1"}
        lost, redo = step["history"]
        assert lost["status"] == "failed"
        assert lost["error"] == "worker lost: no heartbeat for 3s"
        assert redo["status"] == "succeeded"
        assert lost["worker"] and redo["worker"] and lost["worker"] != redo["worker"]
        # what the dead worker had logged is still there
        assert _logged(server, run_id, "long", "begin attempt 1")
        assert run["steps"]["prepare"]["attempts"] == 1
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        server.stop()


def test_server_and_temporal_killed_mid_run_resume_without_rerunning_steps(
    home: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "executions"
    spec = f"""
name: survive-crash
steps:
  one:
    run: echo one >> {counter}; echo "done one"
  two:
    needs: [one]
    run: |
      echo two-$LOCKSTEP_ATTEMPT >> {counter}
      for i in 1 2 3; do echo "tick $i"; done
      if [ "$LOCKSTEP_ATTEMPT" = 1 ]; then sleep 300; fi
  three:
    needs: [two]
    run: echo three >> {counter}
"""
    server = Server(home, heartbeat_timeout=3)
    server.start()
    try:
        run_id = server.submit(spec)["id"]
        wait_for(
            lambda: _logged(server, run_id, "two", "tick 3"),
            timeout=30,
            what="step two to be running",
        )
        server.kill9()
        server.start()
        run = server.wait(run_id, timeout=90)
        assert run["status"] == "succeeded", run
        assert counter.read_text().split() == ["one", "two-1", "two-2", "three"]
        assert run["steps"]["one"]["attempts"] == 1
        assert run["steps"]["two"]["attempts"] == 2
        # acknowledged log lines from before the crash are all there
        assert _logged(server, run_id, "one", "done one")
        ticks = [l["text"] for l in server.logs(run_id, "two") if l["text"].startswith("tick")]
        assert ticks == ["tick 1", "tick 2", "tick 3"] * 2
    finally:
        server.stop()


def test_a_killed_server_takes_its_embedded_temporal_with_it(home: Path) -> None:
    server = Server(home)
    server.start()
    temporal = server.temporal_pid
    assert temporal is not None
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait()
    server.log.close()
    server.http.close()
    server.api.close()
    # no orphan keeps the history file: a restart starts the one and only dev server on it
    wait_for(lambda: not pid_alive(temporal), timeout=15, what="temporal to follow its parent")
    server.start()
    try:
        assert server.run_and_wait("name: after\nsteps:\n  a: {run: 'true'}\n")["status"] == (
            "succeeded"
        )
    finally:
        server.stop()
