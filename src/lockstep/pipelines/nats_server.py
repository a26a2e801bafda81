"""The embedded stream broker: Debian's ``nats-server`` with JetStream, started in a home the
way the embedded Temporal dev server is (``server/temporal_dev.py``). An external broker is
used instead when its URL is configured (``LOCKSTEP_NATS_URL``).

The records of every stream live in ``home/nats/`` (``-sd``), so a restart of the server loses
nothing that was stored; the port is remembered in ``home/nats.json`` so that runners keep
finding the broker after a restart.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from pathlib import Path

import nats.errors

from lockstep.executors.supervision import stop_group
from lockstep.pipelines.channels.stream import BrokerUnavailable, connect, connect_once

_CANDIDATES = ("nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server")


def binary() -> str:
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrokerUnavailable(
        "nats-server is missing; install Debian's nats-server (scripts/system-deps.sh) "
        "or point LOCKSTEP_NATS_URL at a running broker"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """One ``nats-server -js`` on loopback, its state in ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def _port(self) -> int:
        path = self.home / "nats.json"
        try:
            port = int(json.loads(path.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            port = _free_port()
            path.write_text(json.dumps({"port": port}))
        return port

    async def start(self, timeout_s: float = 30.0) -> str:
        """Start the broker and wait until JetStream answers; its URL."""
        self.home.mkdir(parents=True, exist_ok=True)
        port = self._port()
        self.url = f"nats://127.0.0.1:{port}"
        args = [binary(), "-js", "-sd", str(self.home / "nats"), "-a", "127.0.0.1"]
        args += ["-p", str(port), "-l", str(self.home / "nats.log")]
        # the broker must not outlive us (an orphan would hold the port and the store)
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            args = [setpriv, "--pdeathsig", "TERM", "--", *args]
        self.proc = _spawn(args)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise BrokerUnavailable(
                    f"the embedded nats-server exited with code {self.proc.returncode}; "
                    f"see {self.home / 'nats.log'}"
                )
            if await _ready(self.url):
                return self.url
            if loop.time() > deadline:
                self.stop()
                raise BrokerUnavailable(
                    f"the embedded nats-server did not start in {timeout_s:g}s; "
                    f"see {self.home / 'nats.log'}"
                )
            await asyncio.sleep(0.05)

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        stop_group(proc, timeout_s)


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def _ready(url: str) -> bool:
    try:
        nc = await asyncio.wait_for(connect_once(url, timeout_s=1), 2)
    except (OSError, TimeoutError, nats.errors.Error, BrokerUnavailable):
        return False
    try:
        await nc.jetstream().account_info()
        return True
    except nats.errors.Error:
        return False
    finally:
        await nc.close()


async def broker_url(configured: str | None, home: Path) -> tuple[str, NatsServer | None]:
    """The broker to use: ``configured`` (``LOCKSTEP_NATS_URL``) as it is, else an embedded
    one started in ``home`` (the caller stops it)."""
    if configured:
        nc = await connect(configured)
        await nc.close()
        return configured, None
    server = NatsServer(home)
    return await server.start(), server
