"""uvicorn's HTTP/1.1 protocol with a deadline on the request head: a client that opens a
connection and sends its headers slowly (slowloris) is answered 408 and cut off, instead of
holding the connection for as long as it likes. (uvicorn bounds only idle keep-alive time;
the body has its own deadline, ``api.limits.BodyTimeout``.)"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _HeadTimedProtocol(H11Protocol):
    head_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        """Time a request head from its first byte (or the connection's) until it is whole;
        an idle keep-alive connection is uvicorn's own timer's business."""
        waiting = self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE
        started = self.timeout_keep_alive_task is None  # bytes came, or nothing was served yet
        if waiting and started and not self.transport.is_closing():
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.head_timeout, self._head_late)
        else:
            self._stop_head_timer()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMED_OUT)
            self.transport.close()


def head_timed(timeout: float) -> type[H11Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``."""
    return type("HeadTimedProtocol", (_HeadTimedProtocol,), {"head_timeout": timeout})
