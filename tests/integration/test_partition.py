"""A worker frozen past the heartbeat timeout stops its own step: never two live attempts."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.harness import BIN, Server, env_for, pid_alive, wait_for

pytestmark = pytest.mark.slow

HEARTBEAT_TIMEOUT = 5


def _worker(home: Path, name: str) -> subprocess.Popen[bytes]:
    with open(home / f"{name}.out", "ab") as out:  # read when a test fails
        return subprocess.Popen(
            [str(BIN), "worker", "--pool", "default"],
            env=env_for(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _ledger(path: Path) -> list[tuple[str, int, float]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        word, attempt, at = line.split()
        rows.append((word, int(attempt), float(at)))
    return rows


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _worker_of(pid: int, workers: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """The worker process that ``pid`` descends from."""
    by_pid = {w.pid: w for w in workers}
    while pid > 1:
        if pid in by_pid:
            return by_pid[pid]
        pid = _parent(pid)
    raise AssertionError("the step runs under none of the workers")


def test_a_frozen_worker_stops_its_step_before_the_retry_starts(home: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    pidfile = tmp_path / "pid"
    spec = f"""
name: partition
steps:
  long:
    run: |
      echo "start $LOCKSTEP_ATTEMPT $(date +%s.%N)" >> {ledger}
      if [ "$LOCKSTEP_ATTEMPT" = 1 ]; then
        sleep 1  # past the attempt's first heartbeat, which names its worker
        echo $$ > {pidfile}
        # alive and visibly so until stopped: a tick after the retry started would be overlap
        while :; do echo "tick 1 $(date +%s.%N)" >> {ledger}; sleep 0.1; done
      fi
      echo "result=$LOCKSTEP_ATTEMPT" >> "$LOCKSTEP_OUTPUTS"
      echo "end $LOCKSTEP_ATTEMPT $(date +%s.%N)" >> {ledger}
"""
    server = Server(home, worker=False, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    server.start()
    workers = [_worker(home, "worker-1"), _worker(home, "worker-2")]
    frozen: subprocess.Popen[bytes] | None = None
    try:
        run_id = server.submit(spec)["id"]
        wait_for(
            lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=60, what="attempt 1"
        )
        step_pid = int(pidfile.read_text())
        frozen = _worker_of(step_pid, workers)
        frozen.send_signal(signal.SIGSTOP)

        # the frozen worker cannot act, yet its step is stopped; the retry runs elsewhere
        run = server.wait(run_id, timeout=60)
        assert run["status"] == "succeeded", run["steps"]["long"]["history"]
        assert not pid_alive(step_pid)
        rows = _ledger(ledger)
        # attempt 1 and the retry that ran (a task the frozen worker's open poll took in the
        # meantime is lost too, and never starts)
        started = sorted(attempt for word, attempt, _ in rows if word == "start")
        assert started[0] == 1 and len(started) == 2, rows
        retry = started[1]
        first = [at for _, attempt, at in rows if attempt == 1]
        (retry_start,) = [at for word, attempt, at in rows if (word, attempt) == ("start", retry)]
        assert max(first) < retry_start, "attempt 1 was still running when the retry started"
        assert ("end", 1) not in {(word, attempt) for word, attempt, _ in rows}
        assert [(w, a) for w, a, _ in rows if a == retry] == [("start", retry), ("end", retry)]

        # woken up, the worker reports nothing of its stale attempts as a success
        frozen.send_signal(signal.SIGCONT)
        wait_for(
            lambda: any(
                line["attempt"] == 1 and "attempt abandoned" in line["text"]
                for line in server.logs(run_id, "long")
            ),
            timeout=30,
            what="the woken worker to give up its attempt",
        )
        run = server.run(run_id)
        assert run["status"] == "succeeded", run
        step = run["steps"]["long"]
        assert step["outputs"] == {"result": str(retry)}
        *lost, kept = step["history"]
        assert [h["status"] for h in lost] == ["failed"] * len(lost)
        assert {h["error"] for h in lost} == {f"worker lost: no heartbeat for {HEARTBEAT_TIMEOUT}s"}
        assert kept["status"] == "succeeded" and kept["attempt"] == retry
        assert lost[0]["worker"] and kept["worker"] and lost[0]["worker"] != kept["worker"]
        assert _ledger(ledger) == rows  # nothing of the frozen worker ran after it woke
    finally:
        if frozen is not None and frozen.poll() is None:
            frozen.send_signal(signal.SIGCONT)
        for proc in workers:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        server.stop()
