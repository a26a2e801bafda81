"""A step's processes die with its attempt: daemons, setsid, double forks and processes that
ignore SIGTERM, on normal exit, timeout, cancel, a lost lease and a SIGKILLed worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lockstep.executors.lease import AttemptLost, Lease, lease_ttl, renew_every
from lockstep.executors.process import ProcessOutcome, run_process
from lockstep.storage.logs import DirectoryLogStore
from tests.harness import await_for

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
#: every way out of a process group and out of a parent's reach, each recording its pid
ESCAPES = """
setsid sh -c 'echo $$ >> pids; exec sleep 1000' &
( ( sh -c 'echo $$ >> pids; exec sleep 1000' & ) & )
nohup sh -c 'echo $$ >> pids; exec sleep 1000' >/dev/null 2>&1 &
setsid sh -c 'trap "" TERM HUP; echo $$ >> pids; while :; do sleep 1; done' &
sh -c 'trap "" TERM; echo $$ >> pids; exec sleep 1000' &
echo $$ >> pids
while [ "$(wc -l < pids)" -lt 6 ]; do sleep 0.01; done
echo started
"""
PIDS = 6


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _pids(cwd: Path) -> list[int]:
    path = cwd / "pids"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    await await_for(condition, timeout=timeout_s)


async def _all_gone(cwd: Path) -> None:
    pids = _pids(cwd)
    assert len(pids) == PIDS, pids
    await _until(lambda: not any(map(_running, pids)))


async def _step(cwd: Path, tail: str, **kw: object) -> ProcessOutcome:
    kw.setdefault("timeout_s", 30.0)
    log = DirectoryLogStore(cwd / "logs").writer("run/step/1")
    return await run_process(
        ["bash", "-c", ESCAPES + tail],
        cwd=cwd,
        env=ENV,
        log=log,
        kill_grace_s=0.5,
        **kw,  # type: ignore[arg-type]
    )


async def test_everything_a_step_started_dies_when_it_exits(tmp_path: Path) -> None:
    outcome = await _step(tmp_path, "exit 0")
    assert outcome.exit_code == 0
    await _all_gone(tmp_path)


async def test_everything_a_step_started_dies_on_timeout(tmp_path: Path) -> None:
    outcome = await _step(tmp_path, "trap '' TERM; sleep 1000", timeout_s=1.0)
    assert outcome.timed_out
    await _all_gone(tmp_path)


async def test_everything_a_step_started_dies_on_cancel(tmp_path: Path) -> None:
    task = asyncio.create_task(_step(tmp_path, "sleep 1000"))
    await _until(lambda: len(_pids(tmp_path)) == PIDS)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _all_gone(tmp_path)


async def test_everything_a_step_started_dies_when_its_lease_runs_out(tmp_path: Path) -> None:
    lease = Lease(30.0)
    task = asyncio.create_task(_step(tmp_path, "sleep 1000", lease=lease))
    await _until(lambda: len(_pids(tmp_path)) == PIDS)
    lease.lose("the engine gave up on this attempt")
    with pytest.raises(AttemptLost, match="the engine gave up on this attempt"):
        await task
    await _all_gone(tmp_path)


_FROZEN_WORKER = """
import asyncio, os, signal, sys, time
from pathlib import Path
from lockstep.executors.lease import Lease
from lockstep.executors.process import run_process
from lockstep.storage.logs import DirectoryLogStore
cwd, script, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
log = DirectoryLogStore(cwd / "logs").writer("r/s/1")

async def main() -> None:
    lease = Lease(3.0)  # never renewed: as if no heartbeat reached the engine
    if mode == "freeze":  # frozen as soon as the step runs: only the supervisor can act
        loop = asyncio.get_running_loop()
        loop.call_later(1.0, os.kill, os.getpid(), signal.SIGSTOP)
    await run_process(["bash", "-c", script], cwd=cwd, env={"PATH": "/usr/bin:/bin"},
        timeout_s=None, log=log, lease=lease if mode == "freeze" else None)

asyncio.run(main())
"""


def _worker(tmp_path: Path, mode: str) -> subprocess.Popen[bytes]:
    src = Path(__file__).resolve().parents[2] / "src"
    return subprocess.Popen(
        [sys.executable, "-c", _FROZEN_WORKER, str(tmp_path), ESCAPES + "sleep 1000", mode],
        env={"PYTHONPATH": str(src)},
    )


async def test_everything_a_step_started_dies_with_a_sigkilled_worker(tmp_path: Path) -> None:
    worker = _worker(tmp_path, "plain")
    try:
        await _until(lambda: len(_pids(tmp_path)) == PIDS)
        worker.kill()
        worker.wait()
        await _all_gone(tmp_path)
    finally:
        worker.kill()
        worker.wait()


async def test_a_frozen_worker_still_stops_its_step_when_the_lease_runs_out(
    tmp_path: Path,
) -> None:
    worker = _worker(tmp_path, "freeze")
    try:
        await _until(lambda: len(_pids(tmp_path)) == PIDS)
        await _all_gone(tmp_path)  # while the worker is still stopped
        assert Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    finally:
        os.kill(worker.pid, signal.SIGCONT)
        worker.kill()
        worker.wait()


@pytest.mark.parametrize("timeout_s", [0.5, 1, 3, 5, 30, 600])
def test_a_lease_runs_out_before_the_engine_gives_up_and_leaves_room_to_renew(
    timeout_s: float,
) -> None:
    ttl = lease_ttl(timeout_s)
    assert 0 < ttl < timeout_s
    assert renew_every(timeout_s) * 2 <= ttl  # at least two renewals fit in a lease
