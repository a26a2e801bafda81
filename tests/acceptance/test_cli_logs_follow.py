"""`lockstep runs logs ID -f` against a server: every line live, in order, once, over the
Server-Sent Events stream; a dropped connection resumes where it stopped; errors are one line."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.harness import BIN, Server, cli, env_for, wait_for

LINES = 12
# the step holds at the gate until the test opens it, so "printed before the run finished" is
# a fact the test controls, not a race it hopes to win
SPEC = """\
name: slow-talk
steps:
  talk:
    run: |
      for i in $(seq 1 {lines}); do echo "line $i"; sleep 0.2; done
      echo "to stderr" >&2
      while [ ! -e '{gate}' ]; do sleep 0.05; done
      echo "after the gate"
  done:
    needs: [talk]
    run: echo finished
"""


class _Follower:
    """``lockstep runs logs … -f`` as a subprocess, its stdout collected line by line."""

    def __init__(self, home: Path, url: str, token: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(BIN), "runs", "logs", *args, "-f"],
            env=env_for(home, LOCKSTEP_URL=url, LOCKSTEP_TOKEN=token),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def printed(self, text: str) -> bool:
        return text in self.lines

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Wait for the command to exit by itself; its exit code and stderr."""
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


class _Proxy:
    """A TCP relay to the server that a test can cut or shut, as a flaky network would."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        #: the first bytes each client sent (its request line and headers)
        self.requests: list[bytes] = []
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    self.requests.append(data)
                    record = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shut(src, dst)

    def cut(self) -> None:
        """Break every open connection; new ones are still relayed."""
        with self._lock:
            conns, self._open = self._open, []
        _shut(*conns)

    def close(self) -> None:
        """Refuse new connections and break the open ones."""
        _shut(self._listener)
        self.cut()


def _shut(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """The file the step waits for; opened at the end in any case, so no run is left hanging."""
    path = tmp_path / "gate"
    yield path
    path.touch()


@pytest.fixture
def follow(home: Path) -> Iterator[Callable[..., _Follower]]:
    started: list[_Follower] = []

    def start(url: str, token: str, *args: str) -> _Follower:
        started.append(_Follower(home, url, token, *args))
        return started[-1]

    yield start
    for follower in started:
        follower.close()


@pytest.fixture
def proxy(server: Server) -> Iterator[_Proxy]:
    relay = _Proxy(server.url)
    yield relay
    relay.close()


def test_follow_prints_every_line_live_once_and_exits_0_at_the_end(
    server: Server, follow: Callable[..., _Follower], gate: Path, home: Path
) -> None:
    run_id = server.submit(SPEC.format(lines=LINES, gate=gate))["id"]
    follower = follow(server.url, server.token, run_id)
    wait_for(lambda: follower.printed("talk  line 1"), what="the first line")
    # the step waits at the gate, so the run cannot have finished yet
    assert server.run(run_id)["status"] == "running"
    wait_for(lambda: follower.printed(f"talk  line {LINES}"), what="the last looped line")
    assert server.run(run_id)["status"] == "running"
    gate.touch()
    code, stderr = follower.finish()
    assert code == 0, stderr
    assert stderr == ""
    assert server.run(run_id)["status"] == "succeeded"
    talk = [line for line in follower.lines if line.startswith("talk  line ")]
    assert talk == [f"talk  line {i}" for i in range(1, LINES + 1)]
    assert "talk !to stderr" in follower.lines
    assert follower.lines.index("talk  after the gate") < follower.lines.index("done  finished")
    # exactly what the paged command prints for the finished run: nothing missing or repeated
    paged = cli(home, "runs", "logs", run_id, LOCKSTEP_URL=server.url, LOCKSTEP_TOKEN=server.token)
    assert paged.returncode == 0, paged.stderr
    assert follower.lines == paged.stdout.splitlines()


def test_follow_resumes_after_the_connection_drops(
    server: Server, proxy: _Proxy, follow: Callable[..., _Follower], gate: Path, home: Path
) -> None:
    run_id = server.submit(SPEC.format(lines=LINES, gate=gate))["id"]
    follower = follow(proxy.url, server.token, run_id, "talk")
    wait_for(lambda: follower.printed(" line 3"), what="the third line")
    proxy.cut()
    wait_for(lambda: follower.printed(f" line {LINES}"), what="lines after the drop")
    gate.touch()
    code, stderr = follower.finish()
    assert code == 0, stderr
    # the second connection asked to continue after the last event it had
    assert len(proxy.requests) >= 2
    assert b"last-event-id:" in proxy.requests[1].lower()
    talk = [line for line in follower.lines if line.startswith(" line ")]
    assert talk == [f" line {i}" for i in range(1, LINES + 1)]
    paged = cli(
        home, "runs", "logs", run_id, "talk", LOCKSTEP_URL=server.url, LOCKSTEP_TOKEN=server.token
    )
    assert follower.lines == paged.stdout.splitlines()


def test_follow_gives_up_with_one_line_when_the_server_stays_away(
    server: Server, proxy: _Proxy, follow: Callable[..., _Follower], gate: Path
) -> None:
    run_id = server.submit(SPEC.format(lines=LINES, gate=gate))["id"]
    follower = follow(proxy.url, server.token, run_id, "talk")
    wait_for(lambda: follower.printed(" line 1"), what="the first line")
    proxy.close()
    code, stderr = follower.finish()
    gate.touch()
    assert code == 1
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith(f"error: lost the log stream of run {run_id}"), stderr
    assert "could not resume it (6 tries)" in stderr
    server.wait(run_id)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rnope"], "error: run 'rnope' not found"),
        (["{run}", "nostep"], "error: step 'nostep' not found in run"),
    ],
)
def test_follow_reports_what_is_missing_in_one_line(
    server: Server, home: Path, args: list[str], message: str
) -> None:
    run_id = server.run_and_wait("name: quick\nsteps:\n  a: {run: 'echo hi'}\n")["id"]
    argv = [a.format(run=run_id) for a in args]
    proc = cli(
        home, "runs", "logs", *argv, "-f", LOCKSTEP_URL=server.url, LOCKSTEP_TOKEN=server.token
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(message), proc.stderr


def test_follow_of_an_unreachable_server_is_one_line(home: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = cli(home, "runs", "logs", "rsome", "-f", LOCKSTEP_URL=f"http://127.0.0.1:{port}")
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"error: cannot reach lockstep at http://127.0.0.1:{port}")
