"""Process-level helpers: run the real `lockstep` command, start servers and workers, poll.

Nothing here mocks lockstep or its components; tests drive them as a user would.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from lockstep.storage.snapshots import snapshot_directory

BIN = Path(sys.executable).parent / "lockstep"
T = TypeVar("T")
TERMINAL = ("succeeded", "failed", "cancelled")


def _tries(timeout: float, what: str) -> Iterator[None]:
    """One pass a try, until ``timeout`` has passed; then the test fails saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        yield
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_for(
    predicate: Callable[[], T], *, timeout: float = 30, every: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    for _ in _tries(timeout, what):
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError("unreachable")


async def await_for(
    predicate: Callable[[], T], *, timeout: float = 30, every: float = 0.02, what: str = "condition"
) -> T:
    """``wait_for`` for async tests: polls without blocking the event loop."""
    for _ in _tries(timeout, what):
        if value := predicate():
            return value
        await asyncio.sleep(every)
    raise AssertionError("unreachable")


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSTEP_")}
    env["LOCKSTEP_HOME"] = str(home)
    # never a developer's `lockstep login` context: it would send commands to their server
    env["LOCKSTEP_CONFIG_DIR"] = str(home.parent / f"{home.name}-config")
    env["LOCKSTEP_KILL_GRACE"] = "1"
    # the tests' schedules fire every 2s (a real server refuses less than a minute)
    env["LOCKSTEP_SCHEDULE_MIN_INTERVAL"] = "1"
    env.update(extra)
    return env


def api_get(home: Path, path: str, project: str = "default") -> Any:
    """GET ``/api/v1/projects/PROJECT{path}`` as the admin of the server running on ``home``
    (found from its server.json each time, so a restarted server is found again): what a test
    polls, which through `cli` would start a process a try."""
    info = json.loads((home / "server.json").read_text())
    token = (home / "admin.token").read_text().strip()
    with httpx.Client(timeout=30, headers={"authorization": f"Bearer {token}"}) as http:
        answer = http.get(f"{info['url']}/api/v1/projects/{project}{path}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def cli(
    home: Path,
    *args: str,
    timeout: float = 120,
    input: str | None = None,
    cwd: Path | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``lockstep ARGS`` as a user would; returns the finished process."""
    return subprocess.run(
        [str(BIN), *args],
        env=env_for(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        cwd=cwd,
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


class Server:
    """A `lockstep server` process on its own home, reached over HTTP."""

    def __init__(
        self,
        home: Path,
        *,
        worker: bool = True,
        heartbeat_timeout: float = 5,
        port: int = 0,
        args: tuple[str, ...] = (),
        **env: str,
    ) -> None:
        self.home = home
        self.worker = worker
        self.port = port
        #: more options of `lockstep server` (e.g. --temporal ADDR --namespace NS)
        self.args = args
        self.env = {"LOCKSTEP_HEARTBEAT_TIMEOUT": str(heartbeat_timeout), **env}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 60) -> None:
        info = self.home / "server.json"
        info.unlink(missing_ok=True)
        args = [str(BIN), "server", "--port", str(self.port)]
        args += [*([] if self.worker else ["--no-worker"]), *self.args]
        self.log = open(self.home / "server.out", "a")
        self.proc = subprocess.Popen(
            args,
            env=env_for(self.home, **self.env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"server exited: {(self.home / 'server.out').read_text()}")
            return info.exists()

        wait_for(ready, timeout=timeout, what="server start")
        self.url = json.loads(info.read_text())["url"]
        self.token = (self.home / "admin.token").read_text().strip()
        auth = {"authorization": f"Bearer {self.token}"}
        #: the admin's view of project "default"; ``api`` is the root of /api/v1
        self.http = httpx.Client(
            base_url=self.url + "/api/v1/projects/default", timeout=30, headers=auth
        )
        self.api = httpx.Client(base_url=self.url + "/api/v1", timeout=30, headers=auth)

    @property
    def temporal_pid(self) -> int | None:
        out = subprocess.run(
            ["pgrep", "-f", f"db-filename {self.home}/temporal.db"], capture_output=True, text=True
        )
        pids = [int(p) for p in out.stdout.split()]
        return pids[0] if pids else None

    def kill9(self) -> None:
        """SIGKILL the server and its embedded Temporal, as a crash would."""
        assert self.proc is not None
        temporal = self.temporal_pid
        self.proc.kill()
        self.proc.wait()
        if temporal:
            os.kill(temporal, signal.SIGKILL)
            wait_for(lambda: not pid_alive(temporal), what="temporal to die")
        self.http.close()
        self.api.close()
        self.log.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            # leave evidence of what hung (py-spy is a debugging aid, present or not)
            if shutil.which("py-spy"):
                dump = subprocess.run(
                    ["py-spy", "dump", "--pid", str(self.proc.pid)], capture_output=True, text=True
                )
                (self.home / "hang.txt").write_text(dump.stdout + dump.stderr)
            self.proc.kill()
            self.proc.wait()
        self.http.close()
        self.api.close()
        self.log.close()

    # -- API helpers -----------------------------------------------------------------------

    def submit(
        self,
        spec: str,
        params: dict[str, Any] | None = None,
        *,
        workdir: Path | None = None,
        expect: int = 201,
        **extra: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"spec": spec, "params": params or {}, **extra}
        if workdir is not None:
            body["snapshot"] = self.upload(workdir)
        resp = self.http.post("/runs", json=body)
        assert resp.status_code == expect, resp.text
        data: dict[str, Any] = resp.json()
        return data

    def upload(self, workdir: Path) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "s.tar.gz"
            snapshot_directory(workdir, archive)
            resp = self.http.post("/snapshots", content=archive.read_bytes())
        assert resp.status_code == 201, resp.text
        return str(resp.json()["snapshot"])

    def run(self, run_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/runs/{run_id}")
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()
        return data

    def wait(
        self,
        run_id: str,
        *,
        timeout: float = 60,
        until: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        check = until or (lambda r: r["status"] in TERMINAL)
        return wait_for(
            lambda: (r := self.run(run_id)) and check(r) and r,
            timeout=timeout,
            what=f"run {run_id}",
        )

    def run_and_wait(
        self, spec: str, params: dict[str, Any] | None = None, *, timeout: float = 60, **kwargs: Any
    ) -> dict[str, Any]:
        return self.wait(self.submit(spec, params, **kwargs)["id"], timeout=timeout)

    def pause_schedules(self) -> None:
        """Pause every schedule still firing, so a test's ticking trigger does not go on adding
        runs to the shared server for the rest of the session."""
        for trigger in self.http.get("/triggers").json():
            if trigger["kind"] == "schedule" and trigger["paused_by"] is None:
                url = f"/triggers/{trigger['definition']}/{trigger['trigger']}/pause"
                assert self.http.post(url).status_code == 200, url

    def logs(self, run_id: str, step: str | None = None) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {k: v for k, v in {"step": step, "cursor": cursor}.items() if v}
            page = self.http.get(f"/runs/{run_id}/logs", params=params).json()
            lines += page["lines"]
            cursor = page["cursor"]
            if not page["lines"]:
                return lines
