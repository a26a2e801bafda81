"""The worker's side of ``supervisor.py``: its command line and its control pipe."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

#: the supervisor script, run by path with only the standard library (a fast start)
SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))


def stop_group(proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """End a helper started in a session of its own (the embedded Temporal, nats-server):
    SIGTERM to its group, SIGKILL after ``timeout_s``."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


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
