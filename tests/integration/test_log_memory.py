"""A step printing 100 MB while a client follows it live: every line is stored and streamed,
and neither the server nor the worker that runs the step holds the output in memory.

The session's ``server`` fixture runs its worker for pool ``default`` inside the server process
(``lockstep server`` without ``--no-worker``), so measuring it alone would mix the two. These
tests start a separate ``lockstep worker`` for a pool of their own and measure each process.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness import BIN, Server, env_for, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MIB = 1024 * 1024
#: "a few MB": what a process may grow by while 100 MB goes through it (measured over five
#: runs: the server grew by 0.1-2.4 MiB, a worker beside it by 0.3-1.8 MiB)
BOUND = 8 * MIB
#: a remote worker also holds up to 4 MiB of lines not yet shipped (``MAX_PENDING_BYTES`` in
#: server/remote.py) and the JSON of the batch in flight
REMOTE_WORKER_BOUND = 16 * MIB
#: bytes per line of output, newline included: long lines, so a remote worker's batches must
#: be cut by size to stay under the server's request limit (by line count they were refused,
#: and lines were lost)
LINE = 1000
SPEC = """\
name: flood
steps:
  flood:
    runs_on: {pool}
    run: yes "$(printf 'x%.0s' $(seq {width}))" | head -c {size}; echo "the end"
    timeout: 10m
"""


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


class _Peaks:
    """The peak resident memory of some processes from now on: the kernel's high-water mark
    (reset here) where it can be reset, and samples taken every 20 ms in any case."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.base = {name: _status(pid, "VmRSS") for name, pid in pids.items()}
        self.peak = dict(self.base)
        self._hwm_reset = all(self._reset_hwm(pid) for pid in pids.values())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def _reset_hwm(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as fh:
                fh.write("5")  # "reset the peak resident set size" (proc(5))
        except OSError:
            return False
        return True

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._take("VmRSS")

    def _take(self, field: str) -> None:
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], _status(pid, field))

    def stop(self) -> dict[str, int]:
        """Growth of each process's peak over its baseline, in bytes."""
        self._stop.set()
        self._thread.join()
        self._take("VmHWM" if self._hwm_reset else "VmRSS")
        return {name: self.peak[name] - self.base[name] for name in self.pids}


@dataclass
class _Follower:
    """Reads a step's Server-Sent Events in a thread: counts its stdout lines, keeps the last."""

    server: Server
    run_id: str
    step: str
    out_lines: int = 0
    end: str = ""
    _last_out: bytes = b""
    error: BaseException | None = None
    _thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._follow()
        except BaseException as exc:
            self.error = exc

    def _follow(self) -> None:
        params = {"follow": "true", "step": self.step}
        url = f"/runs/{self.run_id}/logs"
        with self.server.http.stream("GET", url, params=params, timeout=120) as resp:
            assert resp.status_code == 200, resp.read()
            pending = b""
            for chunk in resp.iter_bytes():
                *blocks, pending = (pending + chunk).split(b"\n\n")
                for block in blocks:
                    self._event(block)

    def _event(self, block: bytes) -> None:
        # byte checks instead of JSON: a million events must not make the client the bottleneck
        if block.startswith(b"event: end\n"):
            self.end = _data(block)["status"]
        elif b'"stream": "out"' in block:
            self.out_lines += 1
            self._last_out = block

    @property
    def last_out(self) -> str:
        return str(_data(self._last_out)["text"]) if self._last_out else ""

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the follower did not see the end of the stream"
        if self.error is not None:
            raise self.error


def _data(block: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(block.rpartition(b"\ndata: ")[2])
    return data


@dataclass(frozen=True)
class _Worker:
    pool: str
    pid: int
    bound: int  # what its resident memory may grow by


@pytest.fixture(params=["beside", "remote"])
def worker(request: pytest.FixtureRequest, server: Server, tmp_path: Path) -> Iterator[_Worker]:
    """A ``lockstep worker`` process for a pool of its own: ``beside`` the server (same home:
    it writes logs to the shared disk) or ``remote`` (its own home: logs travel through the
    server's API)."""
    kind = request.param
    pool = f"logmem-{kind}-{uuid.uuid4().hex[:6]}"
    if kind == "beside":
        env = env_for(server.home)
    else:
        env = env_for(
            tmp_path / "worker-home", LOCKSTEP_URL=server.url, LOCKSTEP_TOKEN=server.token
        )
        (tmp_path / "worker-home").mkdir()
    with open(tmp_path / "worker.out", "w") as log:
        proc = subprocess.Popen(
            [str(BIN), "worker", "--pool", pool],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: any(w["pool"] == pool for w in server.api.get("/workers").json()),
            timeout=60,
            what=f"worker for {pool}",
        )
        yield _Worker(pool, proc.pid, BOUND if kind == "beside" else REMOTE_WORKER_BOUND)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _flood(server: Server, worker: _Worker, size: int) -> tuple[dict[str, Any], _Follower]:
    """Run a step printing ``size`` bytes in lines of ``LINE``, then "the end", followed live."""
    spec = SPEC.format(pool=worker.pool, width=LINE - 1, size=size)
    run_id = server.submit(spec)["id"]
    follower = _Follower(server, run_id, "flood")
    run = server.wait(run_id, timeout=540)
    follower.join(timeout=540)
    return run, follower


def _stored_out_lines(server: Server, run_id: str) -> tuple[int, str]:
    """Lines of stdout in the stored log, and the text of the last one."""
    count, last = 0, b""
    with open(server.home / "logs" / run_id / "flood" / "1.log", "rb") as fh:
        for line in fh:
            if line[27:30] == b" o ":
                count += 1
                last = line
    return count, last[30:].rstrip(b"\n").decode()


def test_100_mb_of_output_followed_live_keeps_server_and_worker_memory_flat(
    server: Server, worker: _Worker
) -> None:
    assert server.proc is not None
    # the same paths once at a tenth of the size, so imports, pools and caches are warm
    warm, _ = _flood(server, worker, 10_000_000)
    assert warm["status"] == "succeeded", warm
    peaks = _Peaks({"server": server.proc.pid, "worker": worker.pid})
    try:
        run, follower = _flood(server, worker, 100_000_000)
    finally:
        growth = peaks.stop()
    print(f"rss base {peaks.base}, peak {peaks.peak}, growth {growth} ({worker.pool})")
    assert run["status"] == "succeeded", run
    lines = 100_000_000 // LINE + 1
    assert _stored_out_lines(server, str(run["id"])) == (lines, "the end")
    assert (follower.out_lines, follower.last_out, follower.end) == (lines, "the end", "succeeded")
    assert growth["server"] < BOUND, (peaks.base, peaks.peak)
    assert growth["worker"] < worker.bound, (peaks.base, peaks.peak)
