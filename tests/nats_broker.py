"""A real NATS JetStream broker for tests, started the way the server embeds it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lockstep.pipelines.nats_server import NatsServer


@contextmanager
def nats_broker(home: Path) -> Iterator[str]:
    """``nats-server -js`` on a free loopback port; its URL. Fails (never skips) when the
    broker cannot start."""
    server = NatsServer(home)
    url = asyncio.run(server.start())
    try:
        yield url
    finally:
        server.stop()
