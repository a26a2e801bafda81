"""The worker's side of ``supervisor.py``: its command line and its control pipe."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from lockstep.executors.lease import Lease

#: the supervisor script, run by path with only the standard library (a fast start)
SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))


def close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class Control:
    """The worker's end of a supervisor's control pipe. Its end of file (this worker gone,
    however it died) makes the supervisor kill what it watches."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def send(self, line: str) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # a supervisor already gone needs no orders
                os.write(self._fd, line.encode() + b"\n")

    def deadline(self, at: float) -> None:
        self.send(f"deadline {at!r}")

    def close(self) -> None:
        if self._fd is not None:
            close_fds(self._fd)
            self._fd = None


def supervised(
    argv: list[str], env: dict[str, str], ctl: int, deadline: float, drain_s: float
) -> list[str]:
    """The command line that runs ``argv`` under a supervisor reading orders from ``ctl``."""
    # the supervisor's Python adds LC_CTYPE to the environment when it is missing (PEP 538)
    unset = "" if "LC_CTYPE" in env else "LC_CTYPE"
    options = [str(ctl), repr(drain_s), repr(deadline), unset]
    return [sys.executable, "-I", "-S", SUPERVISOR, *options, "--", *argv]


class ContainerWatchdog:
    """A supervisor that kills container ``name`` (through the Docker API at ``url``) when the
    attempt's lease runs out or this worker dies, whether or not the worker can still act.
    Started before the container is created, so no moment of the container goes unwatched."""

    def __init__(
        self, proc: asyncio.subprocess.Process, ctl: Control, unlisten: Callable[[], None]
    ) -> None:
        self._proc = proc
        self._ctl = ctl
        self._unlisten = unlisten

    @classmethod
    async def start(cls, url: str, name: str, lease: Lease) -> ContainerWatchdog | None:
        if lease.deadline == float("inf"):
            return None  # nothing would ever start the step elsewhere
        ctl_r, ctl_w = os.pipe()
        ctl = Control(ctl_w)
        try:
            argv = [sys.executable, "-I", "-S", SUPERVISOR, "--container", url, name]
            proc = await asyncio.create_subprocess_exec(
                *argv, str(ctl_r), repr(lease.deadline),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                start_new_session=True, pass_fds=(ctl_r,),
            )  # fmt: skip
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
