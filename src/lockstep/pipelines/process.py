"""One node program, started under the step supervisor (``executors/supervisor.py``): whatever
it starts (daemons, double forks) dies with it, on stop and when the runner itself dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lockstep.executors.supervision import Control, close_fds, supervised

#: after the program exits, how long its leftovers may keep its pipes open
DRAIN_S = 1.0


@dataclass(frozen=True)
class Exit:
    """How a program ended: ``code`` as a shell shows it (128+N after signal N)."""

    code: int
    reason: str  # one line: "exited with code 3", "killed by signal SIGKILL", "stopped"
    duration_s: float
    stopped: bool  # ended because the runner stopped it


class ProgramStdin(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


class Program(Protocol):
    """A running node program: a process (``NodeProcess``) or a container
    (``container.ContainerProcess``)."""

    @property
    def pid(self) -> int: ...

    @property
    def stdin(self) -> ProgramStdin | None: ...

    @property
    def stdout(self) -> asyncio.StreamReader: ...

    @property
    def stderr(self) -> asyncio.StreamReader: ...

    async def wait(self) -> Exit: ...

    async def stop(self, grace_s: float) -> None: ...


#: starts a node's program: (argv, env, with_stdin) -> the running program
Starter = Callable[[Sequence[str], Mapping[str, str], bool], Awaitable[Program]]


async def start_process(argv: Sequence[str], env: Mapping[str, str], with_stdin: bool) -> Program:
    return await NodeProcess.start(argv, env, with_stdin=with_stdin)


def exit_of(returncode: int, duration_s: float, stopping: bool) -> Exit:
    """How a program ended, from its return code (negative: the signal that killed it)."""
    if returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        code, reason = 128 + sig, f"killed by signal {name}"
    else:
        code, reason = returncode, f"exited with code {returncode}"
    if stopping:
        reason = "stopped"
    return Exit(code, reason, duration_s, stopping)


class NodeProcess:
    def __init__(self, proc: asyncio.subprocess.Process, ctl: Control) -> None:
        self._proc = proc
        self._ctl = ctl
        self._started = time.monotonic()
        self.stopping = False

    @property
    def pid(self) -> int:
        """The supervisor's pid; the program is its child, in a session of its own."""
        return self._proc.pid

    @property
    def stdin(self) -> asyncio.StreamWriter | None:
        return self._proc.stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self._proc.stdout is not None
        return self._proc.stdout

    @property
    def stderr(self) -> asyncio.StreamReader:
        assert self._proc.stderr is not None
        return self._proc.stderr

    @classmethod
    async def start(
        cls, argv: Sequence[str], env: Mapping[str, str], *, with_stdin: bool
    ) -> NodeProcess:
        ctl_r, ctl_w = os.pipe()  # our end stays open: its end of file means "runner gone"
        ctl = Control(ctl_w)
        try:
            proc = await asyncio.create_subprocess_exec(
                *supervised(list(argv), dict(env), ctl_r, float("inf"), DRAIN_S),
                stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env),
                start_new_session=True,
                pass_fds=(ctl_r,),
            )
        except BaseException:
            ctl.close()
            raise
        finally:
            close_fds(ctl_r)
        return cls(proc, ctl)

    async def wait(self) -> Exit:
        returncode = await self._proc.wait()
        self._ctl.close()
        return exit_of(returncode, time.monotonic() - self._started, self.stopping)

    async def stop(self, grace_s: float) -> None:
        """SIGTERM to every process of the program, SIGKILL to what is left after
        ``grace_s``; returns once none is left."""
        self.stopping = True
        if self._proc.returncode is None:
            self._ctl.send("term")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._proc.wait()), grace_s)
        if self._proc.returncode is None:
            self._ctl.send("kill")
            await self._proc.wait()
        self._ctl.close()
