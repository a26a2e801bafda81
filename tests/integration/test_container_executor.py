"""The container executor primitive against a real Podman (Docker API on its own socket)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import pytest

from lockstep.executors.container import ContainerOutcome, run_container
from lockstep.executors.container_runtime import (
    MANAGED_LABEL,
    ContainerRuntime,
    ContainerRuntimeUnreachable,
    ImageUnavailable,
    InvalidImageReference,
)
from lockstep.executors.process import ProcessOutcome
from lockstep.storage.logs import LogStream
from tests.harness import await_for, wait_for
from tests.podman import Podman, podman_service

MiB = 1024 * 1024


class MemoryLog:
    """A LogWriter that keeps (stream, line) pairs in memory."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def write(self, stream: LogStream, text: str, ts: datetime | None = None) -> int:
        self.lines.append((stream, text))
        return len(text)

    def write_many(self, lines: Iterable[tuple[LogStream, str]], ts: datetime | None = None) -> int:
        return sum(self.write(stream, text) for stream, text in lines)

    def write_text(self, stream: LogStream, text: str, ts: datetime | None = None) -> int:
        return self.write_many(((stream, line) for line in text.split("\n")), ts)

    def close(self) -> None:
        pass

    def of(self, stream: str) -> list[str]:
        return [text for s, text in self.lines if s == stream]


@pytest.fixture
async def runtime(podman: Podman) -> AsyncIterator[ContainerRuntime]:
    rt = ContainerRuntime(podman.socket)
    yield rt
    rt.close()


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    private = tmp_path / "private"
    private.mkdir()
    outputs = private / "outputs"
    outputs.touch(mode=0o600)
    return workspace, outputs


async def run(
    argv: list[str],
    runtime: ContainerRuntime,
    podman: Podman,
    dirs: tuple[Path, Path],
    log: MemoryLog | None = None,
    **kwargs: Any,
) -> ContainerOutcome:
    workspace, outputs = dirs
    kwargs.setdefault("image", podman.image)
    kwargs.setdefault("env", {})
    kwargs.setdefault("timeout_s", 60)
    return await run_container(
        argv,
        runtime=runtime,
        workspace=workspace,
        outputs=outputs,
        log=log if log is not None else MemoryLog(),
        **kwargs,
    )


def leftovers(podman: Podman, step: str) -> list[Any]:
    """The containers, running or not, of ``step`` (by the labels every run gets)."""
    client = docker.DockerClient(base_url=podman.socket)
    labels = [f"lockstep.step={step}", MANAGED_LABEL]
    try:
        return client.api.containers(all=True, filters={"label": labels})
    finally:
        client.close()


async def test_hello_world_keeps_stdout_and_stderr_apart(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    log = MemoryLog()
    step = f"hello-{uuid.uuid4().hex[:8]}"
    script = "echo hello; echo oops >&2; echo world; printf 'no newline'"
    outcome = await run(["sh", "-c", script], runtime, podman, dirs, log, labels={"step": step})

    assert isinstance(outcome, ProcessOutcome)
    assert (outcome.exit_code, outcome.error, outcome.timed_out) == (0, None, False)
    assert (outcome.signal, outcome.oom_killed, outcome.truncated) == (None, False, False)
    assert log.of("out") == ["hello", "world", "no newline"]
    assert log.of("err") == ["oops"]
    assert outcome.log_bytes == len("hello\nworld\nno newline\noops\n")
    client = docker.DockerClient(base_url=podman.socket)
    try:
        assert outcome.image_digest == client.images.get(podman.image).id
    finally:
        client.close()
    assert outcome.image_digest is not None and outcome.image_digest.startswith("sha256:")
    assert leftovers(podman, step) == []


async def test_argv_is_the_command_exactly(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    # No shell is added and the image's ENTRYPOINT does not run: argv is all there is.
    log = MemoryLog()
    argv = ["echo", "two  spaces", "$HOME", "; id", "*"]
    outcome = await run(argv, runtime, podman, dirs, log, image=podman.entrypoint_image)
    assert outcome.exit_code == 0
    assert log.of("out") == ["two  spaces $HOME ; id *"]


async def test_workspace_is_mounted_read_write_as_the_working_directory(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    workspace, _ = dirs
    (workspace / "input.txt").write_text("from the host\n")
    log = MemoryLog()
    script = 'pwd; echo "$LOCKSTEP_WORKSPACE"; cat input.txt; mkdir -p sub; echo made > sub/new.txt'
    env = {"LOCKSTEP_WORKSPACE": "/elsewhere"}  # lockstep's own value wins
    outcome = await run(["sh", "-c", script], runtime, podman, dirs, log, env=env)
    assert outcome.exit_code == 0, log.lines
    assert log.of("out") == ["/workspace", "/workspace", "from the host"]
    assert (workspace / "sub" / "new.txt").read_text() == "made\n"


async def test_outputs_written_in_the_container_are_read_on_the_host(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    _, outputs = dirs
    log = MemoryLog()
    script = 'echo "$LOCKSTEP_OUTPUTS"; echo \'{"answer": 42}\' > "$LOCKSTEP_OUTPUTS"'
    env = {"LOCKSTEP_OUTPUTS": "/tmp/not-this"}
    outcome = await run(["sh", "-c", script], runtime, podman, dirs, log, env=env)
    assert outcome.exit_code == 0, log.lines
    assert log.of("out") == ["/lockstep/outputs"]
    assert outputs.read_text() == '{"answer": 42}\n'


@pytest.mark.parametrize(
    ("image", "user", "default", "expected"),
    [
        ("image", None, None, "65534 65534"),  # neither the step nor the image names one
        ("image", None, "2000:2001", "2000 2001"),  # the worker's configured default
        ("user_image", None, None, "4321 4321"),  # the image's USER
        ("user_image", "1234:1234", None, "1234 1234"),  # the step's user: wins
        ("image", "0", None, "0 0"),  # root only when the step asks for it
    ],
)
async def test_a_container_runs_as_a_non_root_user_unless_told_otherwise(
    podman: Podman,
    dirs: tuple[Path, Path],
    image: str,
    user: str | None,
    default: str | None,
    expected: str,
) -> None:
    workspace, outputs = dirs
    (workspace / "sub").mkdir()
    (workspace / "sub" / "from-host.txt").write_text("checked out\n")
    log = MemoryLog()
    script = (
        'echo "$(id -u) $(id -g)"; cat sub/from-host.txt; echo more >> sub/from-host.txt; '
        'mkdir made; echo "who=$(id -u)" > "$LOCKSTEP_OUTPUTS"'
    )
    rt = ContainerRuntime(podman.socket, **({"default_user": default} if default else {}))
    try:
        outcome = await run(
            ["sh", "-c", script], rt, podman, dirs, log, image=getattr(podman, image), user=user
        )
    finally:
        rt.close()
    assert outcome.exit_code == 0, log.lines
    assert log.of("out") == [expected, "checked out"]
    # the workspace and the outputs stay writable for whoever the container runs as
    assert (workspace / "sub" / "from-host.txt").read_text() == "checked out\nmore\n"
    assert (workspace / "made").is_dir()
    assert outputs.read_text() == f"who={expected.split()[0]}\n"


async def test_env_values_arrive_byte_for_byte(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    workspace, _ = dirs
    values = {
        "V_SHELL": '"; curl x|sh #',
        "V_SUBST": "$(id) `id` ${HOME}",
        "V_NEWLINE": "line one\nline two\n",
        "V_EQUALS": "a=b==c",
        "V_QUOTES": "'single' \"double\" \\back",
        "V_UNICODE": "grüße ✓",
        "V_EMPTY": "",
        "V_SPACES": "  padded  ",
    }
    script = "for n in " + " ".join(values) + '; do eval "printf %s \\"\\$$n\\"" > "$n"; done'
    outcome = await run(["sh", "-c", script], runtime, podman, dirs, env=values)
    assert outcome.exit_code == 0
    for name, value in values.items():
        assert (workspace / name).read_bytes() == value.encode(), name


@pytest.mark.parametrize(
    ("argv", "code", "error"),
    [
        (["sh", "-c", "exit 3"], 3, "exited with code 3"),
        (["false"], 1, "exited with code 1"),
        (["no-such-command"], None, "cannot start 'no-such-command': exec: \"no-such-command\": "),
    ],
)
async def test_failures_are_reported_as_outcomes(
    argv: list[str],
    code: int | None,
    error: str,
    runtime: ContainerRuntime,
    podman: Podman,
    dirs: tuple[Path, Path],
) -> None:
    outcome = await run(argv, runtime, podman, dirs)
    assert outcome.exit_code == code
    assert outcome.error is not None and outcome.error.startswith(error)
    assert "\n" not in outcome.error
    assert not outcome.timed_out and not outcome.oom_killed


async def test_timeout_kills_a_container_that_ignores_sigterm(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    log = MemoryLog()
    step = f"timeout-{uuid.uuid4().hex[:8]}"
    beats: list[float] = []
    outcome = await run(
        ["sh", "-c", "trap '' TERM; echo started; sleep 100"],
        runtime, podman, dirs, log,
        timeout_s=1, kill_grace_s=1, labels={"step": step},
        heartbeat=lambda: beats.append(time.monotonic()),
    )  # fmt: skip

    assert outcome.timed_out
    assert outcome.error == "timed out after 1s"
    assert outcome.exit_code == 137 and outcome.signal == 9
    assert not outcome.oom_killed
    assert log.of("out") == ["started"]
    assert [line for line in log.of("sys") if "SIG" in line] == [
        "timed out after 1s; sending SIGTERM to the container",
        "still running 1s after SIGTERM; sending SIGKILL",
    ]
    assert len(beats) >= 2  # the worker kept heartbeating while the container ran
    assert leftovers(podman, step) == []


async def test_cancellation_kills_and_removes_the_container(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    log = MemoryLog()
    step = f"cancel-{uuid.uuid4().hex[:8]}"
    task = asyncio.create_task(
        run(["sh", "-c", "echo started; sleep 100"], runtime, podman, dirs, log,
            labels={"step": step}, kill_grace_s=30)
    )  # fmt: skip
    await await_for(lambda: log.of("out") == ["started"] or task.done(), timeout=30)
    assert not task.done(), log.lines
    assert len(leftovers(podman, step)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # SIGKILL at once: no SIGTERM that would wait out the 30 s grace
    assert not any("SIGTERM" in line for line in log.of("sys")), log.lines
    assert leftovers(podman, step) == []


async def test_out_of_memory_is_reported_clearly(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    # `tail` keeps the current line in memory, and /dev/zero has no newline.
    outcome = await run(
        ["sh", "-c", "tail /dev/zero"], runtime, podman, dirs, memory_bytes=32 * MiB
    )
    assert outcome.oom_killed
    assert outcome.exit_code == 137 and not outcome.timed_out
    assert outcome.error is not None and outcome.error.startswith("killed: out of memory (limit ")
    assert "(limit 32Mi" in outcome.error and "raise resources.memory" in outcome.error


async def test_cpu_and_memory_limits_reach_the_container(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    log = MemoryLog()
    # cgroup v2 shows both in one directory; v1 in one directory per controller
    script = (
        "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us;"
        "cat /sys/fs/cgroup/memory.max 2>/dev/null"
        " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    )
    outcome = await run(
        ["sh", "-c", script], runtime, podman, dirs, log, cpu=0.5, memory_bytes=64 * MiB
    )
    assert outcome.exit_code == 0, log.lines
    cpu, memory = log.of("out")
    assert cpu.split()[0] == "50000"
    assert memory == str(64 * MiB)


async def test_log_is_capped_at_max_log_bytes(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    log = MemoryLog()
    script = "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done; echo done >&2"
    outcome = await run(["sh", "-c", script], runtime, podman, dirs, log, max_log_bytes=100)
    assert outcome.exit_code == 0
    assert outcome.truncated and outcome.log_bytes <= 100
    assert log.of("out")[:2] == ["line-0", "line-1"]
    assert "line-199" not in log.of("out")
    assert any("log truncated after 100 bytes" in line for line in log.of("sys"))


async def test_missing_image_is_a_clear_error(
    runtime: ContainerRuntime, podman: Podman, dirs: tuple[Path, Path]
) -> None:
    image = f"localhost/lockstep-test/missing-{uuid.uuid4().hex[:8]}:1"
    with pytest.raises(ImageUnavailable) as caught:
        await run(["true"], runtime, podman, dirs, image=image)
    message = str(caught.value)
    assert message.startswith(f"image '{image}' not found locally and cannot be pulled: ")
    assert message.endswith("; build or load it on the worker")
    assert "\n" not in message


@pytest.mark.parametrize(
    "image",
    ["", "-rm", "busy box", "busybox\n", "a\x00b", "x" * 256, "Upper/Case", "name:tag:more"],
)
async def test_bad_image_reference_is_refused_before_the_runtime(
    image: str, tmp_path: Path, dirs: tuple[Path, Path]
) -> None:
    # The runtime does not exist: the reference is refused without a single API call.
    runtime = ContainerRuntime(f"unix://{tmp_path}/no.sock")
    workspace, outputs = dirs
    with pytest.raises(InvalidImageReference, match=r"^invalid image reference .*: \S"):
        await run_container(
            ["true"], runtime=runtime, image=image, workspace=workspace, outputs=outputs,
            env={}, timeout_s=None, log=MemoryLog(),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("stale", "reason"), [(False, "No such file or directory"), (True, "Connection refused")]
)
async def test_unreachable_runtime_is_a_clear_error(
    stale: bool, reason: str, tmp_path: Path, dirs: tuple[Path, Path]
) -> None:
    path = tmp_path / "runtime.sock"
    if stale:  # the socket file of a runtime that is gone
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(str(path))
    url = f"unix://{path}"
    workspace, outputs = dirs
    with pytest.raises(ContainerRuntimeUnreachable) as caught:
        await run_container(
            ["true"], runtime=ContainerRuntime(url), image="busybox", workspace=workspace,
            outputs=outputs, env={}, timeout_s=None, log=MemoryLog(),
        )  # fmt: skip
    assert str(caught.value) == (
        f"container runtime at {url} is unreachable: {reason}; start podman/docker on this worker"
    )


async def test_concurrent_runs_share_one_runtime(
    runtime: ContainerRuntime, podman: Podman, tmp_path: Path
) -> None:
    async def one(n: int) -> tuple[ContainerOutcome, MemoryLog]:
        workspace, private = tmp_path / f"ws{n}", tmp_path / f"private{n}"
        workspace.mkdir()
        private.mkdir()
        log = MemoryLog()
        script = f"sleep 0.5; echo run-{n}; echo {n} > /workspace/n"
        outcome = await run(["sh", "-c", script], runtime, podman, (workspace, private / "o"), log)
        return outcome, log

    results = await asyncio.gather(*(one(n) for n in range(4)))
    for n, (outcome, log) in enumerate(results):
        assert outcome.exit_code == 0
        assert log.of("out") == [f"run-{n}"]
        assert (tmp_path / f"ws{n}" / "n").read_text() == f"{n}\n"


async def test_a_host_whose_runtime_limits_are_not_set_says_so_not_that_the_command_failed(
    tmp_path: Path, dirs: tuple[Path, Path]
) -> None:
    # Podman with its stock settings (no default_ulimits): on this kind of host every
    # container fails to start, and the step's error must name the host's set-up
    conf = tmp_path / "stock-containers.conf"
    conf.write_text('[containers]\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n')
    (tmp_path / "stock").mkdir()
    with podman_service(tmp_path / "stock", env={"CONTAINERS_CONF": str(conf)}) as stock:
        rt = ContainerRuntime(stock.socket)
        try:
            outcome = await run(["sh", "-c", "echo hi"], rt, stock, dirs)
        finally:
            rt.close()
    assert outcome.exit_code is None and outcome.error is not None
    if "rlimit" not in outcome.error:  # a host that grants Podman's defaults starts it fine
        pytest.fail(f"the stock runtime settings did not fail here: {outcome.error!r}")
    assert outcome.error.startswith("the container runtime on this worker cannot start containers")
    assert "default_ulimits" in outcome.error and "podman-setup.sh" in outcome.error
    assert "cannot start 'sh'" not in outcome.error, outcome.error


_FROZEN_WORKER = """
import asyncio, os, signal, sys
from pathlib import Path
from lockstep.executors.container import run_container
from lockstep.executors.container_runtime import ContainerRuntime
from lockstep.executors.lease import Lease
from lockstep.storage.logs import DirectoryLogStore

url, image, step, workspace, outputs, mode = sys.argv[1:]

async def main() -> None:
    lease = Lease(4.0)  # never renewed: as if no heartbeat reached the engine
    log = DirectoryLogStore(Path(workspace).parent / "logs").writer("r/s/1")
    async def freeze_when_started() -> None:
        while not (Path(workspace) / "started").exists():
            await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGSTOP if mode == "freeze" else signal.SIGKILL)
    asyncio.create_task(freeze_when_started())
    await run_container(["sh", "-c", "echo > started; sleep 1000"], runtime=ContainerRuntime(url),
        image=image, workspace=Path(workspace), outputs=Path(outputs), env={}, timeout_s=None,
        log=log, labels={"step": step}, lease=lease)

asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["freeze", "kill"])
def test_a_frozen_or_killed_worker_still_stops_its_container(
    podman: Podman, dirs: tuple[Path, Path], mode: str
) -> None:
    workspace, outputs = dirs
    step = f"frozen-{uuid.uuid4().hex[:8]}"
    src = Path(__file__).resolve().parents[2] / "src"
    argv = [podman.socket, podman.image, step, str(workspace), str(outputs), mode]
    worker = subprocess.Popen(
        [sys.executable, "-c", _FROZEN_WORKER, *argv], env={"PYTHONPATH": str(src)}
    )
    client = docker.DockerClient(base_url=podman.socket)
    try:

        def running() -> list[Any]:
            return [c for c in leftovers(podman, step) if c["State"] == "running"]

        wait_for(
            lambda: (workspace / "started").exists() or worker.poll() is not None,
            timeout=60,
            what="the step to start",
        )
        assert (workspace / "started").exists(), "the worker died before its step started"
        # the worker is stopped (or dead) from now on: only its watchdog can act
        wait_for(lambda: not running(), timeout=30, what="the watchdog to kill the container")
        if mode == "freeze":
            assert Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    finally:
        worker.send_signal(signal.SIGCONT)
        worker.kill()
        worker.wait()
        for container in leftovers(podman, step):
            client.api.remove_container(container["Id"], force=True)
        client.close()
