"""The one seam every delivery class sits behind.

A publisher takes records (JSON bytes) for one edge; ``flush`` returns once everything
published so far is as durable as the class makes it (the runner acks upstream only after
that). A consumer hands out deliveries for one consuming node (its replicas share them); each
delivery is acked when the node's program has finished with it, or nak'ed to be handed out
again. ``backlog`` is how many records wait for the consumer (its lag).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Delivery(Protocol):
    @property
    def payload(self) -> bytes: ...

    async def ack(self) -> None: ...

    async def nak(self) -> None: ...


class Publisher(Protocol):
    async def publish(self, payload: bytes) -> None:
        """Hand on one record; waits (never drops) while the channel is full."""
        ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class Consumer(Protocol):
    async def fetch(self, max_records: int, timeout_s: float) -> Sequence[Delivery]:
        """Up to ``max_records`` deliveries; empty after ``timeout_s`` with nothing to give."""
        ...

    async def backlog(self) -> int: ...

    async def close(self) -> None: ...
