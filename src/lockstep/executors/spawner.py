"""Starting a step's supervisor: forked by a per-worker zygote, or spawned directly.

A supervisor (``supervisor.py``) is a small Python program, but starting an interpreter for
each attempt cost more than the rest of a short step together (measured by
``bench/step_phases.py``). So a worker starts one zygote — the same script, ``--zygote`` — and
asks it over a socket to fork a supervisor per attempt, handing over the attempt's descriptors
(stdout, stderr, the control pipe) and a report pipe the child answers on. Nothing about the
supervisor's guarantees changes: it is still a subreaper in a session of its own, reading the
worker's control pipe, whose end of file kills the step. The zygote ends with the worker.

``direct`` (``LOCKSTEP_SPAWNER=direct``) spawns each supervisor as its own process instead, as
a request too large for the zygote's socket always is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

from lockstep.executors.lease import Lease
from lockstep.executors.supervision import SUPERVISOR, Control, close_fds, supervised
from lockstep.executors.supervisor import ZYGOTE_MAX_REQUEST

Spawner = Literal["zygote", "direct"]


class Supervisor(Protocol):
    """A started supervisor, as the worker waits for it."""

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...


class _Zygote:
    """This process's zygote, started on first use and again if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def send(self, request: bytes, fds: list[int]) -> bool:
        """Hand a request to the zygote; False if no zygote would take it."""
        with self._lock:
            for _ in range(2):  # a zygote found dead is started again, once
                try:
                    if self._sock is None:
                        self._start()
                    assert self._sock is not None
                    socket.send_fds(self._sock, [request], fds)
                    return True
                except OSError:
                    self._forget()
            return False

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", SUPERVISOR, "--zygote", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
                cwd="/",
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours

    def _forget(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.kill()
            self._proc.wait()
            self._proc = None


_ZYGOTE = _Zygote()


class _Reported:
    """A supervisor forked by the zygote, followed through its report pipe."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._loop = loop
        self._buffer = b""
        self._first: asyncio.Future[str | None] = loop.create_future()
        self._done: asyncio.Future[int] = loop.create_future()
        self.returncode: int | None = None
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except OSError:
            data = b""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            word, _, arg = line.decode(errors="replace").partition(" ")
            if not self._first.done():
                self._first.set_result(line.decode(errors="replace"))
            if word == "exit":
                self._finish(int(arg))
        if not data:  # the supervisor is gone without a word: killed from outside
            if not self._first.done():
                self._first.set_result(None)
            self._finish(-9)

    def _finish(self, code: int) -> None:
        if not self._done.done():
            self.returncode = code
            self._done.set_result(code)
            self._loop.remove_reader(self._fd)
            close_fds(self._fd)

    async def started(self) -> str | None:
        return await self._first

    async def wait(self) -> int:
        return await asyncio.shield(self._done)


def _check(argv: list[str], env: dict[str, str]) -> None:
    """Refuse what exec cannot take, as ``subprocess`` would, before a process is forked."""
    if any("\0" in text for text in (*argv, *env, *env.values())):
        raise ValueError("embedded null byte")
    if any(not name or "=" in name for name in env):
        raise ValueError("illegal environment variable name")


async def _forked(request: bytes, fds: list[int], cwd: Path | None = None) -> _Reported | None:
    """Have the zygote fork a child for ``request``; None when no zygote would (the caller
    then spawns the slow way). Raises ``OSError`` when the child could not enter ``cwd``."""
    report_r, report_w = os.pipe()
    os.set_blocking(report_r, False)
    try:
        sent = _ZYGOTE.send(request, [*fds, report_w])
    finally:
        close_fds(report_w)
    if not sent:
        close_fds(report_r)
        return None
    child = _Reported(report_r, asyncio.get_running_loop())
    first = await child.started()
    if first == "started":
        return child
    await child.wait()  # closes the report pipe
    if first is not None and first.startswith("nostart "):
        code = int(first.split()[1])
        raise OSError(code, os.strerror(code), str(cwd))
    return None  # the zygote died holding the request


async def start_watchdog(
    url: str, name: str, *, ctl: int, deadline: float, how: Spawner = "zygote"
) -> Supervisor:
    """Start the watchdog of a container step (``supervisor.py --container``)."""
    if how == "zygote":
        request = json.dumps({"container": [url, name], "deadline": deadline}).encode()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            child = await _forked(request, [null, 2, ctl])
        finally:
            close_fds(null)
        if child is not None:
            return child
    argv = [sys.executable, "-I", "-S", SUPERVISOR, "--container", url, name]
    return await asyncio.create_subprocess_exec(
        *argv, str(ctl), repr(deadline),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        start_new_session=True, pass_fds=(ctl,),
    )  # fmt: skip


async def start_supervisor(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    out: int,
    err: int,
    ctl: int,
    deadline: float,
    drain_s: float,
    how: Spawner = "zygote",
) -> Supervisor:
    """Start the supervisor of one attempt running ``argv``. Raises ``OSError`` (with
    ``filename`` = ``cwd`` when the working directory was the problem) if it cannot start."""
    _check(argv, env)
    request = json.dumps(
        {"argv": argv, "env": env, "cwd": str(cwd), "drain": drain_s, "deadline": deadline}
    ).encode()
    if how == "zygote" and len(request) <= ZYGOTE_MAX_REQUEST:
        child = await _forked(request, [out, err, ctl], cwd)
        if child is not None:
            return child
    return await asyncio.create_subprocess_exec(
        *supervised(argv, env, ctl, deadline, drain_s),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        cwd=cwd,
        env=env,
        start_new_session=True,
        pass_fds=(ctl,),
    )


class ContainerWatchdog:
    """A supervisor that kills container ``name`` (through the Docker API at ``url``) when the
    attempt's lease runs out or this worker dies, whether or not the worker can still act.
    Started before the container is created, so no moment of the container goes unwatched."""

    def __init__(self, proc: Supervisor, ctl: Control, unlisten: Callable[[], None]) -> None:
        self._proc = proc
        self._ctl = ctl
        self._unlisten = unlisten

    @classmethod
    async def start(
        cls, url: str, name: str, lease: Lease, how: Spawner = "zygote"
    ) -> ContainerWatchdog | None:
        if lease.deadline == float("inf"):
            return None  # nothing would ever start the step elsewhere
        ctl_r, ctl_w = os.pipe()
        ctl = Control(ctl_w)
        try:
            proc = await start_watchdog(url, name, ctl=ctl_r, deadline=lease.deadline, how=how)
        except BaseException:
            ctl.close()
            raise
        finally:
            close_fds(ctl_r)
        return cls(proc, ctl, lease.listen(ctl.deadline))

    async def stop(self) -> None:
        """The container is finished with: the watchdog leaves without killing anything."""
        self._unlisten()
        self._ctl.send("done")
        self._ctl.close()
        with contextlib.suppress(ProcessLookupError):
            await self._proc.wait()
