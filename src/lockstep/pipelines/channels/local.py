"""``local``: an in-process bounded queue between nodes placed in the same worker process.

No broker: a full queue makes the publisher wait (back-pressure by bound). A nak'ed record goes
back in front of the queue. Records live in memory: they survive a node program's restart but
not the worker process (the class's documented limit).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_BOUND = 1000


@dataclass
class _Queue:
    bound: int
    items: asyncio.Queue[bytes] = field(init=False)
    returned: deque[bytes] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.items = asyncio.Queue(maxsize=self.bound)


class LocalHub:
    """The local queues of one worker process, one per edge, made on first use."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}

    def queue(self, edge: str, bound: int = DEFAULT_BOUND) -> _Queue:
        if edge not in self._queues:
            self._queues[edge] = _Queue(bound)
        return self._queues[edge]


class _LocalDelivery:
    def __init__(self, queue: _Queue, payload: bytes) -> None:
        self._queue = queue
        self.payload = payload

    async def ack(self) -> None:
        return None

    async def nak(self) -> None:
        self._queue.returned.appendleft(self.payload)
        self._queue.ready.set()


class LocalPublisher:
    def __init__(self, queue: _Queue) -> None:
        self._queue = queue

    async def publish(self, payload: bytes) -> None:
        await self._queue.items.put(payload)
        self._queue.ready.set()

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


class LocalConsumer:
    def __init__(self, queue: _Queue) -> None:
        self._queue = queue

    async def fetch(self, max_records: int, timeout_s: float) -> Sequence[_LocalDelivery]:
        q = self._queue
        if not q.returned and q.items.empty():
            q.ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(q.ready.wait(), timeout_s)
        out: list[_LocalDelivery] = []
        while len(out) < max_records and q.returned:
            out.append(_LocalDelivery(q, q.returned.popleft()))
        while len(out) < max_records and not q.items.empty():
            out.append(_LocalDelivery(q, q.items.get_nowait()))
        return out

    async def backlog(self) -> int:
        return self._queue.items.qsize() + len(self._queue.returned)

    async def close(self) -> None:
        return None
