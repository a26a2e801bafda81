"""A remote worker outlives a restart of its server: it finds the engine again and runs steps,
says what happened in its own words, and `workers list` never calls a dead worker live."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

from tests.harness import BIN, Server, cli, env_for, wait_for

STEP = "name: where\nsteps:\n  a:\n    run: echo hi\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_remote_worker_reconnects_after_the_server_restarts(home: Path, tmp_path: Path) -> None:
    # no worker in the server: every step must be run by the remote worker
    srv = Server(home, worker=False, port=_free_port())
    srv.start()
    out = tmp_path / "worker.out"
    env = env_for(tmp_path / "worker-home", LOCKSTEP_URL=srv.url, LOCKSTEP_TOKEN=srv.token)
    with out.open("w") as sink:
        worker = subprocess.Popen(
            [str(BIN), "worker"], env=env, stdout=sink, stderr=subprocess.STDOUT, text=True
        )
    try:
        assert srv.run_and_wait(STEP)["status"] == "succeeded"
        temporal_before = json.loads((home / "temporal.json").read_text())["port"]
        srv.stop()
        wait_for(lambda: "lost the engine" in out.read_text(), timeout=30, what="worker notices")
        srv.start()
        assert json.loads((home / "temporal.json").read_text())["port"] == temporal_before
        again = srv.run_and_wait(STEP, timeout=90)
        assert again["status"] == "succeeded", again
        wait_for(lambda: "is back" in out.read_text(), timeout=30, what="worker says it is back")

        worker.send_signal(signal.SIGKILL)
        worker.wait(10)

        def state() -> str:
            listed = cli(home, "workers", "list", "--json")
            assert listed.returncode == 0, listed.stderr
            (row,) = json.loads(listed.stdout)
            return str(row["state"])

        wait_for(lambda: state() == "lost", timeout=40, every=1, what="the dead worker lost")
        table = cli(home, "workers", "list").stdout
        assert "lost" in table and "ago" in table and "live" not in table
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(30)
        srv.stop()
    printed = out.read_text()
    assert "temporalio_client" not in printed and "WARN" not in printed, printed
