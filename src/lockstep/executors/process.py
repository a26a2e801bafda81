"""Run one child process to completion, streaming its output into a step log.

The child gets exactly the argv and environment it is given (no shell is added) and stdin from
/dev/null. It runs under a per-attempt supervisor (``supervisor.py``), so a timeout, a cancel, a
lost lease or the worker's death stops everything it started: children that ignore SIGTERM, and
daemons that left its process group. Output is read in fixed-size pieces as it
arrives and written to the log line by line, so memory stays flat however much a step prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lockstep.errors import ExecutionError
from lockstep.executors.lease import AttemptLost, Lease
from lockstep.executors.spawner import Spawner, Supervisor, start_supervisor
from lockstep.executors.stdout_result import StdoutCapture
from lockstep.executors.supervision import Control, close_fds
from lockstep.storage.logs import LogStream, LogWriter

logger = logging.getLogger(__name__)

#: lines longer than this many bytes are stored as several lines
LINE_MAX_BYTES = 64 * 1024
#: after the main process exits, how long its leftovers may keep the pipes open
DRAIN_S = 1.0
#: how long SIGKILLed processes get to disappear before we stop waiting for the supervisor
_REAP_S = 2.0
#: an attempt's first heartbeat is sent this long after it began (most steps end before)
FIRST_BEAT_S = 0.25


@dataclass(frozen=True)
class ProcessOutcome:
    exit_code: int | None  # None when the process never started; 128+N after signal N
    timed_out: bool
    signal: int | None
    duration_s: float
    error: str | None  # one line for a user; None after exit code 0
    log_bytes: int  # bytes of the step's own output stored in the log (without line prefixes)
    truncated: bool  # output beyond max_log_bytes was read and discarded


def _missing_command(argv0: str, env: dict[str, str], cwd: Path) -> str | None:
    """Why ``argv0`` cannot be executed, as exec would say; None when it can.

    Checked up front because with a launcher the failing exec happens in the launcher, which
    would report it as an exit code instead of "cannot start".
    """
    if not cwd.is_dir():
        return None  # the spawn reports the working directory itself
    if "/" in argv0:
        path = Path(argv0) if Path(argv0).is_absolute() else cwd / argv0
        if not path.exists():
            return "No such file or directory"
        if path.is_dir() or not os.access(path, os.X_OK):
            return "Permission denied"
        return None
    if shutil.which(argv0, path=env.get("PATH", os.defpath)) is None:
        return "No such file or directory"
    return None


def _cut(data: bytes, limit: int) -> int:
    # Step back over UTF-8 continuation bytes so a split never breaks a character in two.
    cut = limit
    while cut > limit - 3 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut if data[cut] & 0xC0 != 0x80 else limit


class _Splitter:
    """Turns a byte stream into blocks of whole lines.

    A block is one or more lines joined by '\\n' (so the log writer can format it in one go):
    '\\r\\n' is folded to '\\n' and no line in it is longer than ``LINE_MAX_BYTES``.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._pending + data if self._pending else data
        end = buf.rfind(b"\n")
        blocks: list[bytes] = []
        if end >= 0:
            block = buf[:end]
            buf = buf[end + 1 :]
            if b"\r" in block:
                block = block.replace(b"\r\n", b"\n").removesuffix(b"\r")
            if len(block) > LINE_MAX_BYTES and max(map(len, block.split(b"\n"))) > LINE_MAX_BYTES:
                for line in block.split(b"\n"):
                    blocks.extend(_pieces(line))
            else:
                blocks.append(block)
        while len(buf) > LINE_MAX_BYTES:  # a line still growing: store what is there
            cut = _cut(buf, LINE_MAX_BYTES)
            blocks.append(buf[:cut])
            buf = buf[cut:]
        self._pending = buf
        return blocks

    def flush(self) -> list[bytes]:
        rest, self._pending = self._pending, b""
        return [rest.removesuffix(b"\r")] if rest else []


def _pieces(line: bytes) -> list[bytes]:
    pieces = []
    while len(line) > LINE_MAX_BYTES:
        cut = _cut(line, LINE_MAX_BYTES)
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


class _Sink:
    """Writes blocks to the log, enforces the byte cap, and never raises into the event loop."""

    def __init__(self, log: LogWriter, max_bytes: int | None) -> None:
        self._log = log
        self._max = max_bytes
        self.bytes = 0
        self.truncated = False
        self.error: Exception | None = None

    def write(self, stream: LogStream, blocks: list[bytes]) -> None:
        for block in blocks:
            if self.truncated or self.error is not None:
                return
            size = len(block) + 1  # every line of the block had its newline
            if self._max is not None and self.bytes + size > self._max:
                # Keep the whole lines that still fit, then say that the rest is gone.
                keep = block.rfind(b"\n", 0, self._max - self.bytes)
                self.truncated = True
                if keep >= 0:
                    self._append(stream, block[:keep], keep + 1)
                self.system(f"log truncated after {self._max} bytes; further output discarded")
                return
            self._append(stream, block, size)

    def _append(self, stream: LogStream, block: bytes, size: int) -> None:
        try:
            self._log.write_text(stream, block.decode("utf-8", errors="replace"))
        except Exception as exc:
            # Keep draining the pipes (a blocked child would hang), but stop writing; raising
            # here would only reach the event loop's exception handler.
            self.error = exc
            return
        self.bytes += size

    def system(self, text: str) -> None:
        if self.error is None:
            try:
                self._log.write("sys", text)
            except Exception as exc:
                self.error = exc


class _Pipe(asyncio.Protocol):
    def __init__(
        self,
        stream: LogStream,
        sink: _Sink,
        closed: asyncio.Future[None],
        capture: StdoutCapture | None = None,
    ) -> None:
        self._stream = stream
        self._sink = sink
        self._capture = capture  # the step's result is what it prints here (bounded)
        self._splitter = _Splitter()
        self._finished = False
        self.closed = closed

    def data_received(self, data: bytes) -> None:
        if not self._finished:
            if self._capture is not None:
                self._capture.feed(data)
            self._sink.write(self._stream, self._splitter.feed(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self.finish()
        if not self.closed.done():
            self.closed.set_result(None)

    def finish(self) -> None:
        """Log a last unterminated line; later data (if any) is ignored."""
        if not self._finished:
            self._finished = True
            self._sink.write(self._stream, self._splitter.flush())


async def _exited(proc: Supervisor, within_s: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(proc.wait()), within_s)
    return proc.returncode is not None


async def _stop(proc: Supervisor, ctl: Control, grace_s: float, sink: _Sink) -> None:
    """SIGTERM every process of the step, SIGKILL whatever is left after ``grace_s``; wait
    until the supervisor says none is left."""
    try:
        ctl.send("term")
        if await _exited(proc, grace_s):
            return
        sink.system(f"still running {grace_s:g}s after SIGTERM; sending SIGKILL")
        ctl.send("kill")
        await _exited(proc, _REAP_S)
    except asyncio.CancelledError:
        # Cancelled again while waiting out the grace period: no more patience.
        ctl.send("kill")
        raise


def _not_started(start: float, error: str) -> ProcessOutcome:
    return ProcessOutcome(None, False, None, time.monotonic() - start, error, 0, False)


async def run_process(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout_s: float | None,
    log: LogWriter,
    heartbeat: Callable[[], None] | None = None,
    heartbeat_every_s: float = 1.0,
    kill_grace_s: float = 5.0,
    max_log_bytes: int | None = None,
    lease: Lease | None = None,
    capture: StdoutCapture | None = None,
    spawner: Spawner = "zygote",
) -> ProcessOutcome:
    """Run ``argv`` and return how it ended. Never raises for a failing or missing command;
    raises ``CancelledError`` (after killing every process of the step) when cancelled, and
    ``AttemptLost`` (after killing them) when ``lease`` runs out.

    The command runs under a supervisor process (``supervisor.py``) that adopts and kills
    whatever the step leaves behind, and kills it all by itself when the worker dies or the
    lease runs out while the worker cannot act (frozen, say). ``capture`` also gets stdout."""
    start = time.monotonic()
    if not argv:
        return _not_started(start, "cannot start: the command is empty")
    if (missing := _missing_command(argv[0], env, cwd)) is not None:
        return _not_started(start, f"cannot start {argv[0]!r}: {missing}")
    lease = lease or Lease.unbounded()
    sink = _Sink(log, max_log_bytes)
    loop = asyncio.get_running_loop()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ctl_r, ctl_w = os.pipe()  # the write end stays here: its end of file means "worker gone"
    ctl = Control(ctl_w)
    try:
        proc = await start_supervisor(
            argv, env=env, cwd=cwd, out=out_w, err=err_w, ctl=ctl_r,
            deadline=lease.deadline, drain_s=DRAIN_S, how=spawner,
        )  # fmt: skip
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        close_fds(out_r, err_r)
        ctl.close()
        reason = getattr(exc, "strerror", None) or str(exc)
        if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) == str(cwd):
            reason = f"working directory {cwd}: {reason}"  # chdir failed, not the command
        return _not_started(start, f"cannot start {argv[0]!r}: {reason}")
    finally:
        # Only the child may hold the write ends, or we would never see end-of-file.
        close_fds(out_w, err_w, ctl_r)
    unlisten = lease.listen(ctl.deadline)

    pipes: list[_Pipe] = []
    transports: list[asyncio.BaseTransport] = []
    unowned = [out_r, err_r]  # read ends no transport has taken over yet
    beat: asyncio.Task[None] | None = None
    expiry = asyncio.ensure_future(lease.wait_expired())
    timed_out = False
    ended = start
    try:
        streams: list[tuple[LogStream, int]] = [("out", out_r), ("err", err_r)]
        for stream, fd in streams:
            pipe = _Pipe(stream, sink, loop.create_future(), capture if stream == "out" else None)
            transports.append(await _connect(loop, pipe, fd))
            unowned.remove(fd)
            pipes.append(pipe)
        if heartbeat is not None:
            # create_task copies the context, so Temporal's activity.heartbeat works in there.
            beat = asyncio.create_task(beat_forever(heartbeat, max(heartbeat_every_s, 0.01)))
        waiting = asyncio.ensure_future(proc.wait())
        await asyncio.wait([waiting, expiry], timeout=timeout_s, return_when="FIRST_COMPLETED")
        if not waiting.done() and not expiry.done():
            timed_out = True
            sink.system(f"timed out after {timeout_s:g}s; sending SIGTERM to the step's processes")
            await _stop(proc, ctl, kill_grace_s, sink)
        if lease.expired():
            ctl.send("kill")
            await _exited(proc, _REAP_S)
            sink.system(lease.reason())
            raise AttemptLost(lease.reason())
        ended = time.monotonic()
        # The supervisor exits once no process of the step is left, so the pipes close now.
        await asyncio.wait([p.closed for p in pipes], timeout=DRAIN_S)
    except BaseException:
        if proc.returncode is None:
            await _stop(proc, ctl, kill_grace_s, sink)
        raise
    finally:
        unlisten()
        expiry.cancel()
        ctl.close()
        if beat is not None:
            beat.cancel()
        for pipe in pipes:
            pipe.finish()
        for transport in transports:
            transport.close()
        close_fds(*unowned)
    if sink.error is not None:
        reason = getattr(sink.error, "strerror", None) or sink.error
        raise ExecutionError(f"cannot write the step log: {reason}")
    return _outcome(proc.returncode, timed_out, timeout_s, ended - start, sink)


async def _connect(loop: asyncio.AbstractEventLoop, pipe: _Pipe, fd: int) -> asyncio.BaseTransport:
    transport, _ = await loop.connect_read_pipe(lambda: pipe, os.fdopen(fd, "rb", buffering=0))
    return transport


def _outcome(
    returncode: int | None, timed_out: bool, timeout_s: float | None, duration: float, sink: _Sink
) -> ProcessOutcome:
    code = returncode if returncode is not None else -signal.SIGKILL
    sig: int | None = None
    error: str | None = None
    if code < 0:
        sig = -code
        code = 128 + sig
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        error = f"killed by signal {name}"
    elif code != 0:
        error = f"exited with code {code}"
    if timed_out:
        error = f"timed out after {timeout_s:g}s"
    return ProcessOutcome(code, timed_out, sig, duration, error, sink.bytes, sink.truncated)


async def beat_forever(heartbeat: Callable[[], None], every_s: float) -> None:
    """Call ``heartbeat`` every ``every_s``, the first time after at most ``FIRST_BEAT_S``: a
    beat is a call to the engine, which a step shorter than that does not need (the engine's
    heartbeat timeout counts from the attempt's start). A worker lost before its first beat
    is not named in the lost attempt's record."""
    await asyncio.sleep(min(every_s, FIRST_BEAT_S))
    while True:
        try:
            heartbeat()
        except Exception:
            # A failed heartbeat must not fail the step; the engine notices missing beats.
            logger.warning("step.heartbeat_failed", exc_info=True)
        await asyncio.sleep(every_s)
