"""An attempt's lease: how long its step may keep running without word from the engine.

The engine gives up on an attempt whose heartbeats stop for the heartbeat timeout and starts
the step again elsewhere. A worker that is frozen (SIGSTOP, a long pause) or cut off must have
stopped the step by then, or two copies run at once. So the step may run only until
``last acknowledged heartbeat + timeout - margin``, counted from when that heartbeat was *sent*
(it reached the server later, so the server's own clock runs out after ours). The deadline is on
CLOCK_MONOTONIC, shared by every process of the machine, so a supervisor process can enforce it
while the worker itself cannot run.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

from lockstep.errors import ExecutionError

Listener = Callable[[float], None]


class AttemptLost(ExecutionError):
    """The attempt outlived its lease; the engine has (or will have) started another."""


def lease_ttl(heartbeat_timeout_s: float) -> float:
    """How long after sending an acknowledged heartbeat the step may still run: the timeout
    less a margin for stopping it and for a send that took a while to be acknowledged."""
    margin = min(max(1.0, 0.2 * heartbeat_timeout_s), 0.5 * heartbeat_timeout_s)
    return heartbeat_timeout_s - margin


def renew_every(heartbeat_timeout_s: float) -> float:
    """Renew often enough that several renewals fit before the lease runs out."""
    return min(2.0, lease_ttl(heartbeat_timeout_s) / 4)


class Lease:
    def __init__(self, ttl_s: float, *, started: float | None = None) -> None:
        self.ttl_s = ttl_s
        self.deadline = (time.monotonic() if started is None else started) + ttl_s
        self.lost: str | None = None
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()

    @classmethod
    def unbounded(cls) -> Lease:
        return cls(math.inf)

    def renewed(self, sent_at: float) -> None:
        """A heartbeat sent at ``sent_at`` (monotonic) was acknowledged."""
        deadline = sent_at + self.ttl_s
        if self.lost is None and deadline > self.deadline:
            self.deadline = deadline
            self._tell()

    def lose(self, reason: str) -> None:
        """The engine said this attempt is over (timed out, or unknown to it)."""
        if self.lost is None:
            self.lost = reason
            self.deadline = -math.inf
            self._tell()

    def expired(self) -> bool:
        return self.lost is not None or time.monotonic() >= self.deadline

    def reason(self) -> str:
        return self.lost or (
            f"attempt abandoned: no heartbeat reached the engine for {self.ttl_s:g}s "
            "(worker frozen or cut off); the step was stopped and may run again elsewhere"
        )

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(deadline)`` on every change; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def wait_expired(self) -> None:
        while not self.expired():
            self._changed.clear()
            wait = min(max(self.deadline - time.monotonic(), 0.01), 3600.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)

    def _tell(self) -> None:
        self._changed.set()
        for listener in list(self._listeners):
            listener(self.deadline)
