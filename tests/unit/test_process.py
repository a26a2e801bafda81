from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lockstep.errors import ExecutionError
from lockstep.executors.process import LINE_MAX_BYTES, ProcessOutcome, run_process
from lockstep.storage.logs import DirectoryLogStore, LogLine
from tests.harness import await_for

BASE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
HOSTILE = [
    '"; curl x|sh #',
    "$(id)",
    "`id`",
    "line one\nline two",
    "a=b=c",
    'it\'s "quoted"',
    "  leading and trailing  ",
    "ünïcödé ✓",
    "${HOME} %s \\n",
    "",
]


def _poll(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _live_in_group(pgid: int) -> list[int]:
    """Pids of group ``pgid`` that are running. Orphaned zombies are skipped: in this sandbox
    PID 1 never reaps them, so ``killpg(pgid, 0)`` would keep succeeding for dead processes."""
    live = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            live.append(int(entry.name))
    return live


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return not _live_in_group(pgid)


def _pid_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


class Log:
    def __init__(self, root: Path) -> None:
        self.store = DirectoryLogStore(root)
        self.writer = self.store.writer("run/step/1")

    def lines(self) -> list[LogLine]:
        return self.store.read("run/step/1", limit=100_000, max_bytes=10**9).lines

    def texts(self, stream: str = "out") -> list[str]:
        return [line.text for line in self.lines() if line.stream == stream]


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log(tmp_path / "logs")


_spawner = ["zygote"]


@pytest.fixture(autouse=True, params=["zygote", "direct"])
def spawner(request: pytest.FixtureRequest) -> str:
    """Every guarantee holds whether a supervisor is forked by the worker's zygote or started
    as a new interpreter."""
    _spawner[0] = request.param
    return str(request.param)


async def _run(argv: list[str], cwd: Path, log: Log, **kw: object) -> ProcessOutcome:
    kw.setdefault("spawner", _spawner[0])
    kw.setdefault("env", BASE_ENV)
    kw.setdefault("timeout_s", 10.0)
    kw.setdefault("kill_grace_s", 0.5)
    return await run_process(argv, cwd=cwd, log=log.writer, **kw)  # type: ignore[arg-type]


# --- argv, environment, stdin ----------------------------------------------------------------

_DUMP = "import sys; open('argv','wb').write(open('/proc/self/cmdline','rb').read());" + (
    "open('env','wb').write(open('/proc/self/environ','rb').read())"
)


async def test_argv_and_env_arrive_as_exact_bytes(tmp_path: Path, log: Log) -> None:
    env = {"PATH": BASE_ENV["PATH"]} | {f"V{i}": value for i, value in enumerate(HOSTILE)}
    env["WEIRD"] = "=starts with equals\r\nand CRLF"
    argv = [sys.executable, "-c", _DUMP, *HOSTILE]
    outcome = await _run(argv, tmp_path, log, env=env)
    assert outcome.exit_code == 0, log.lines()
    cmdline = (tmp_path / "argv").read_bytes()
    assert cmdline.split(b"\0")[:-1] == [arg.encode() for arg in argv]
    environ = (tmp_path / "env").read_bytes()
    # Exactly the given variables, each one exactly once: newline and '=' stay inside values.
    assert environ.split(b"\0")[:-1] == [f"{k}={v}".encode() for k, v in env.items()]


@pytest.mark.parametrize("value", HOSTILE)
async def test_bash_reads_hostile_values_as_data(tmp_path: Path, log: Log, value: str) -> None:
    # How a `run:` string gets a templated value: by variable, never spliced into the script.
    script = 'printf %s "$VALUE" > out; printf %s "$1" > arg'
    argv = ["bash", "-c", script, "bash", value]
    outcome = await _run(argv, tmp_path, log, env=BASE_ENV | {"VALUE": value})
    assert outcome.exit_code == 0, log.lines()
    assert (tmp_path / "out").read_bytes() == value.encode()
    assert (tmp_path / "arg").read_bytes() == value.encode()


async def test_no_shell_is_added_and_cwd_is_used(tmp_path: Path, log: Log) -> None:
    outcome = await _run(["echo", "$HOME", "*", "a;b"], tmp_path, log)
    assert outcome.exit_code == 0
    assert log.texts() == ["$HOME * a;b"]
    await _run(["pwd"], tmp_path, log)
    assert log.texts()[-1] == str(tmp_path)


async def test_stdin_is_dev_null(tmp_path: Path, log: Log) -> None:
    outcome = await _run(["bash", "-c", "cat; readlink /proc/self/fd/0"], tmp_path, log)
    assert outcome.exit_code == 0
    assert log.texts() == ["/dev/null"]


async def test_child_leads_its_own_process_group(tmp_path: Path, log: Log) -> None:
    await _run(["bash", "-c", "ps -o pid=,pgid=,sid= -p $$"], tmp_path, log)
    pid, pgid, sid = log.texts()[0].split()
    assert pid == pgid == sid
    assert int(pgid) != os.getpgrp()


# --- output capture --------------------------------------------------------------------------


async def test_streams_lines_and_line_endings(tmp_path: Path, log: Log) -> None:
    script = r"printf 'one\ntwo\r\n\nthree'; printf 'err1\nerr2' >&2"
    outcome = await _run(["bash", "-c", script], tmp_path, log)
    assert outcome.exit_code == 0
    assert log.texts("out") == ["one", "two", "", "three"]
    assert log.texts("err") == ["err1", "err2"]
    assert outcome.log_bytes == len(b"one\ntwo\n\nthree\n" + b"err1\nerr2\n")
    assert (outcome.error, outcome.timed_out, outcome.truncated) == (None, False, False)


async def test_invalid_utf8_and_lone_cr_are_kept_visible(tmp_path: Path, log: Log) -> None:
    script = r"printf 'bad \xff\xfe bytes\nprogress 10%%\rprogress 100%%\n'"
    await _run(["bash", "-c", script], tmp_path, log)
    assert log.texts() == ["bad \ufffd\ufffd bytes", "progress 10%\\rprogress 100%"]


async def test_long_lines_are_split_without_breaking_characters(tmp_path: Path, log: Log) -> None:
    code = "import sys; sys.stdout.write('x' * 150000 + '\\n' + '\u00e9' * 40000 + '\\nend')"
    outcome = await _run(
        [sys.executable, "-c", code], tmp_path, log, env=BASE_ENV | {"LANG": "C.UTF-8"}
    )
    assert outcome.exit_code == 0
    texts = log.texts()
    assert [len(t.encode()) for t in texts[:3]] == [
        LINE_MAX_BYTES,
        LINE_MAX_BYTES,
        150000 - 2 * LINE_MAX_BYTES,
    ]
    assert "".join(texts[:3]) == "x" * 150000
    assert "".join(texts[3:-1]) == "\u00e9" * 40000  # no U+FFFD: no character was cut
    assert all(len(t.encode()) <= LINE_MAX_BYTES for t in texts)
    assert texts[-1] == "end"


async def test_log_cap_keeps_draining(tmp_path: Path, log: Log) -> None:
    # 2 MB after the cap: the child would block on a full pipe if we stopped reading.
    script = "for i in $(seq 1 20); do echo line$i; done; head -c 2000000 /dev/zero; echo done"
    outcome = await _run(["bash", "-c", script], tmp_path, log, max_log_bytes=50, timeout_s=10)
    assert outcome.exit_code == 0
    assert outcome.truncated
    assert log.texts() == [f"line{i}" for i in range(1, 9)]  # 8 x 6 bytes fit in 50
    assert outcome.log_bytes == 48
    assert log.texts("sys") == ["log truncated after 50 bytes; further output discarded"]


async def test_large_output_is_stored_fully_in_bounded_memory(tmp_path: Path, log: Log) -> None:
    size = 200_000_000
    line = b"0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijklmnop\n"  # 64 bytes
    script = f"yes {line[:-1].decode()} | head -c {size}"

    def rss_kb() -> int:
        for row in Path("/proc/self/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1])
        raise AssertionError("no VmRSS")

    baseline = rss_kb()
    samples = [baseline]
    started = time.monotonic()
    outcome = await _run(
        ["bash", "-c", script],
        tmp_path,
        log,
        timeout_s=60,
        heartbeat=lambda: samples.append(rss_kb()),
        heartbeat_every_s=0.05,
    )
    elapsed = time.monotonic() - started
    samples.append(rss_kb())
    assert outcome.exit_code == 0
    assert outcome.log_bytes == size
    path = log.store.root / "run/step/1.log"
    lines = 0
    body = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
    body = path.stat().st_size - lines * len("2024-01-01T00:00:00.000000Z o ")
    assert lines == size // len(line)
    assert body == size
    growth_mb = (max(samples) - baseline) / 1024
    print(
        f"200 MB logged in {elapsed:.2f}s ({size / 1e6 / elapsed:.0f} MB/s), "
        f"RSS +{growth_mb:.1f} MB"
    )
    assert growth_mb < 30


async def test_heartbeat_is_called_while_running(tmp_path: Path, log: Log) -> None:
    beats: list[float] = []

    def beat() -> None:
        beats.append(time.monotonic())
        if len(beats) == 2:
            raise RuntimeError("heartbeat failure must not fail the step")

    outcome = await _run(["sleep", "0.6"], tmp_path, log, heartbeat=beat, heartbeat_every_s=0.1)
    assert outcome.exit_code == 0
    assert len(beats) >= 3  # and the one that raised did not stop the later ones


# --- exit, signals, failure to start ---------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "exit_code", "sig", "error"),
    [
        ("exit 0", 0, None, None),
        ("exit 3", 3, None, "exited with code 3"),
        ("kill -KILL $$", 137, signal.SIGKILL, "killed by signal SIGKILL"),
        ("kill -SEGV $$", 139, signal.SIGSEGV, "killed by signal SIGSEGV"),
    ],
)
async def test_exit_codes_and_signals(
    tmp_path: Path, log: Log, script: str, exit_code: int, sig: int | None, error: str | None
) -> None:
    outcome = await _run(["bash", "-c", script], tmp_path, log)
    assert (outcome.exit_code, outcome.signal, outcome.error) == (exit_code, sig, error)
    assert not outcome.timed_out


async def test_commands_that_cannot_start(tmp_path: Path, log: Log) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("echo hi\n")
    (tmp_path / "a-dir").mkdir()
    cases = {
        "no-such-command-xyz": "cannot start 'no-such-command-xyz': No such file or directory",
        str(script): f"cannot start '{script}': Permission denied",
        str(tmp_path / "a-dir"): f"cannot start '{tmp_path / 'a-dir'}': Permission denied",
    }
    for command, error in cases.items():
        outcome = await _run([command], tmp_path, log)
        assert (outcome.exit_code, outcome.error, outcome.signal) == (None, error, None)
    outcome = await _run(["true"], tmp_path / "missing", log)
    assert outcome.error == (
        f"cannot start 'true': working directory {tmp_path / 'missing'}: No such file or directory"
    )
    outcome = await _run([], tmp_path, log)
    assert outcome.error == "cannot start: the command is empty"
    outcome = await _run(["echo", "nul\x00byte"], tmp_path, log)
    assert outcome.exit_code is None and outcome.error and "null byte" in outcome.error


# --- timeout, cancellation, leftovers --------------------------------------------------------

STUBBORN = "echo $$ > pgid; trap '' TERM; sleep 100 & sleep 100"


async def test_timeout_kills_a_group_that_ignores_sigterm(tmp_path: Path, log: Log) -> None:
    outcome = await _run(["bash", "-c", STUBBORN], tmp_path, log, timeout_s=1, kill_grace_s=0.5)
    assert outcome.timed_out
    assert outcome.error == "timed out after 1s"
    assert outcome.signal == signal.SIGKILL and outcome.exit_code == 137
    pgid = int((tmp_path / "pgid").read_text())
    assert _group_gone(pgid), _live_in_group(pgid)
    assert log.texts("sys") == [
        "timed out after 1s; sending SIGTERM to the step's processes",
        "still running 0.5s after SIGTERM; sending SIGKILL",
    ]


async def test_timeout_with_a_polite_process_skips_the_grace(tmp_path: Path, log: Log) -> None:
    outcome = await _run(["sleep", "100"], tmp_path, log, timeout_s=0.3, kill_grace_s=5)
    assert outcome.timed_out and outcome.signal == signal.SIGTERM
    assert outcome.error == "timed out after 0.3s"
    # it ended on SIGTERM: no wait for the grace, no SIGKILL
    assert log.texts("sys") == ["timed out after 0.3s; sending SIGTERM to the step's processes"]


async def test_cancellation_kills_the_group(tmp_path: Path, log: Log) -> None:
    task = asyncio.create_task(
        _run(["bash", "-c", STUBBORN], tmp_path, log, timeout_s=None, kill_grace_s=0.5)
    )
    await await_for(
        lambda: (tmp_path / "pgid").exists() and (tmp_path / "pgid").read_text() != "", timeout=5
    )
    pgid = int((tmp_path / "pgid").read_text())
    await await_for(lambda: len(_live_in_group(pgid)) >= 3, timeout=5)  # bash and both sleeps
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _group_gone(pgid), _live_in_group(pgid)


async def test_background_process_holding_stdout_does_not_hang(tmp_path: Path, log: Log) -> None:
    script = "sleep 1000 & echo $! > bg; echo done"
    outcome = await _run(["bash", "-c", script], tmp_path, log)  # returns: nothing waits 1000 s
    assert outcome.exit_code == 0 and outcome.error is None
    assert log.texts() == ["done"]
    assert not _pid_running(int((tmp_path / "bg").read_text()))


async def test_detached_daemon_is_killed_too(tmp_path: Path, log: Log) -> None:
    script = "nohup sleep 1000 >/dev/null 2>&1 & echo $! > bg"
    outcome = await _run(["bash", "-c", script], tmp_path, log)
    assert outcome.exit_code == 0
    assert not _pid_running(int((tmp_path / "bg").read_text()))


_WORKER = """
import asyncio, sys
from pathlib import Path
from lockstep.executors.process import run_process
from lockstep.storage.logs import DirectoryLogStore
cwd = Path(sys.argv[1])
log = DirectoryLogStore(cwd / "logs").writer("r/s/1")
asyncio.run(run_process(["bash", "-c", "echo $$ > child; exec sleep 100"], cwd=cwd,
    env={"PATH": "/usr/bin:/bin"}, timeout_s=None, log=log))
"""


def test_step_dies_with_a_sigkilled_worker(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(tmp_path)], env={"PYTHONPATH": str(src)}
    )
    child = tmp_path / "child"
    assert _poll(lambda: child.exists() and child.read_text().strip() != "")
    pid = int(child.read_text())
    assert _poll(lambda: _pid_running(pid))
    worker.kill()
    worker.wait()
    assert _poll(lambda: not _pid_running(pid)), "the step outlived its worker"


class _FullDisk:
    """A log writer on a disk that fills up after the first write."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, stream: str, text: str, ts: object = None) -> int:
        return self.write_text(stream, text)

    def write_many(self, lines: object, ts: object = None) -> int:
        return self.write_text("out", "")

    def write_text(self, stream: str, text: str, ts: object = None) -> int:
        self.writes += 1
        if self.writes > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(text)

    def close(self) -> None:
        pass


async def test_log_write_failure_is_reported_without_hanging_the_step(tmp_path: Path) -> None:
    writer = _FullDisk()
    with pytest.raises(
        ExecutionError, match=r"^cannot write the step log: No space left on device$"
    ):
        await run_process(
            ["bash", "-c", "head -c 3000000 /dev/zero | tr '\\0' 'x'; echo; echo end"],
            cwd=tmp_path,
            env=BASE_ENV,
            timeout_s=10,
            log=writer,
        )
