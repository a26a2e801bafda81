"""The per-worker zygote that forks attempt supervisors: it ends with its worker (however the
worker ends), takes none of a step's processes with it when it dies, and is started again
when it is gone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from lockstep.executors import spawner
from lockstep.executors.process import run_process
from lockstep.storage.logs import DirectoryLogStore
from tests.harness import pid_alive, wait_for

ENV = {"PATH": "/usr/bin:/bin"}


class _Log:
    def __init__(self, root: Path) -> None:
        self.store = DirectoryLogStore(root)
        self.writer = self.store.writer("run/step/1")

    @property
    def lines(self) -> list[str]:
        read = self.store.read("run/step/1", limit=1000, max_bytes=10**6).lines
        return [line.text for line in read if line.stream == "out"]


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from lockstep.executors import spawner
    from lockstep.executors.process import run_process

    from lockstep.storage.logs import DirectoryLogStore
    Log = lambda: DirectoryLogStore(Path(sys.argv[1]) / "logs").writer("r/s/1")

    async def main():
        here = Path(sys.argv[1])
        await run_process(["true"], cwd=here, env={"PATH": "/usr/bin:/bin"}, timeout_s=60,
                          log=Log())
        print(spawner._ZYGOTE._proc.pid, flush=True)
        if sys.argv[2] == "stay":  # a long step; the test kills this worker meanwhile
            await run_process(["sh", "-c", "echo $$ > step.pid; exec sleep 300"], cwd=here,
                              env={"PATH": "/usr/bin:/bin"}, timeout_s=600, log=Log())

    asyncio.run(main())
    """
)


def _worker(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with proc.stdout:
        return proc, int(proc.stdout.readline())


def test_the_zygote_ends_when_its_worker_exits(tmp_path: Path) -> None:
    worker, zygote = _worker(tmp_path, "leave")
    assert worker.wait(timeout=60) == 0
    wait_for(lambda: not pid_alive(zygote), timeout=30, what="the zygote to end")


def test_a_worker_killed_mid_step_leaves_neither_step_nor_zygote(tmp_path: Path) -> None:
    worker, zygote = _worker(tmp_path, "stay")
    pid_file = tmp_path / "step.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the step")
    step = int(pid_file.read_text())
    assert pid_alive(step) and pid_alive(zygote)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    wait_for(lambda: not pid_alive(step), timeout=30, what="the step killed with its worker")
    wait_for(lambda: not pid_alive(zygote), timeout=30, what="the zygote to end")


async def test_a_killed_zygote_is_started_again_and_the_step_runs(tmp_path: Path) -> None:
    log = _Log(tmp_path / "logs")
    first = await run_process(["echo", "one"], cwd=tmp_path, env=ENV, timeout_s=30, log=log.writer)
    assert first.exit_code == 0
    zygote = spawner._ZYGOTE._proc
    assert zygote is not None
    os.kill(zygote.pid, signal.SIGKILL)
    zygote.wait(timeout=30)
    again = await run_process(["echo", "two"], cwd=tmp_path, env=ENV, timeout_s=30, log=log.writer)
    assert again.exit_code == 0 and log.lines == ["one", "two"]
    restarted = spawner._ZYGOTE._proc
    assert restarted is not None and restarted.pid != zygote.pid and pid_alive(restarted.pid)


async def test_a_step_outlives_no_zygote_death(tmp_path: Path) -> None:
    """Killing the zygote does not touch a step it forked: the step's supervisor answers to the
    worker, not to the zygote."""
    log = _Log(tmp_path / "logs")
    gate = tmp_path / "go"
    script = f"echo started; while [ ! -e {gate} ]; do sleep 0.05; done; echo finished"
    task = run_process(["sh", "-c", script], cwd=tmp_path, env=ENV, timeout_s=60, log=log.writer)
    running = asyncio.ensure_future(task)
    for _ in range(1500):  # polled for up to 30 s
        if "started" in log.lines:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the step did not start")
    zygote = spawner._ZYGOTE._proc
    assert zygote is not None
    os.kill(zygote.pid, signal.SIGKILL)
    zygote.wait(timeout=30)
    gate.touch()
    outcome = await running
    assert outcome.exit_code == 0 and log.lines == ["started", "finished"]
