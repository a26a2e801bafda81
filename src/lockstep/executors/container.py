"""The ``container`` executor: one step in a container of its image, through the runtime's
Docker Engine API (``executors.container_runtime``).

The container runs exactly ``argv`` (it replaces the image's entrypoint; no shell is added) with
exactly the given environment, the step's working copy at ``/workspace`` (its working directory)
and the directory of its outputs file at ``/lockstep``. ``run_container`` reports a
``ContainerOutcome``, a ``ProcessOutcome`` with two more fields; like ``run_process`` it never
raises for a step that fails, and it always removes the container.

The two API calls that last as long as the step (the attached output stream and the wait for
its exit) get daemon threads of their own, so a runtime that never answers cannot hold up the
worker's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from docker.api import APIClient
from docker.types import Mount
from docker.utils.socket import STDERR, STDOUT, frames_iter_no_tty

from lockstep.errors import ExecutionError
from lockstep.executors.base import Attempt, Outcome
from lockstep.executors.container_runtime import (
    MANAGED_LABEL,
    ContainerRuntime,
    ContainerRuntimeError,
    check_image_reference,
    ensure_image,
    in_daemon_thread,
    refused,
    remove_container,
    start_failure,
)
from lockstep.executors.container_user import grant, image_user
from lockstep.executors.lease import AttemptLost, Lease
from lockstep.executors.local import lockstep_env, outcome_of
from lockstep.executors.process import DRAIN_S, ProcessOutcome, _Pipe, _Sink, beat_forever
from lockstep.executors.spawner import ContainerWatchdog, Spawner
from lockstep.executors.stdout_result import StdoutCapture
from lockstep.storage.logs import LogWriter

logger = logging.getLogger(__name__)


#: where the step's working copy and its outputs directory appear inside the container
WORKSPACE_DIR = "/workspace"
OUTPUTS_DIR = "/lockstep"
HEARTBEAT_EVERY_S = 1.0
#: how long a SIGKILLed container gets to be reported gone before we stop waiting for it
_REAP_S = 5.0


@dataclass(frozen=True)
class ContainerOutcome(ProcessOutcome):
    image_digest: str | None = None  # the id (sha256:...) of the image the container ran
    oom_killed: bool = False


class _Output:
    """stdout and stderr from the attach socket, read in a daemon thread and logged on the
    event loop (as ``run_process`` does), so the log and its byte cap have a single writer."""

    def __init__(self, sock: Any, sink: _Sink, capture: StdoutCapture | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._pipes = {
            STDOUT: _Pipe("out", sink, loop.create_future(), capture),
            STDERR: _Pipe("err", sink, loop.create_future()),
        }
        self.done = in_daemon_thread(partial(self._pump, loop, sock), "container-output")

    def _pump(self, loop: asyncio.AbstractEventLoop, sock: Any) -> None:
        try:
            for stream, data in frames_iter_no_tty(sock):
                if stream in self._pipes and isinstance(data, bytes):
                    loop.call_soon_threadsafe(self._pipes[stream].data_received, data)
        except (OSError, ValueError, RuntimeError):
            pass  # the stream broke off (container removed) or the loop is gone
        finally:
            if (response := getattr(sock, "_response", None)) is not None:
                response.close()
            with contextlib.suppress(OSError):
                sock.close()

    def finish(self) -> None:
        """Log each stream's unterminated last line; anything arriving later is dropped."""
        for pipe in self._pipes.values():
            pipe.finish()


def _create(api: APIClient, *, image_id: str, argv: list[str], config: dict[str, Any]) -> str:
    # Entrypoint and Cmd both set: the container runs argv, not the image's entrypoint with
    # argv as its arguments (and an empty Cmd does not bring in the image's CMD).
    config = {**config, "host_config": api.create_host_config(**config["host_config"])}
    return str(api.create_container(image_id, argv[1:], entrypoint=argv[:1], **config)["Id"])


def _attach_and_start(api: APIClient, cid: str) -> tuple[Any, str | None]:
    """The output socket (attached before the start, so no output is missed), or why the
    command cannot start. Podman creates the process when attaching: a missing executable
    fails there."""
    params = {"stdout": 1, "stderr": 1, "stream": 1, "logs": 1}
    sock, problem = refused(lambda: api.attach_socket(cid, params))
    if problem is None:
        _, problem = refused(lambda: api.start(cid))
    return sock, problem


async def _stop(
    runtime: ContainerRuntime, cid: str, exited: asyncio.Future[int], grace_s: float, sink: _Sink
) -> int | None:
    """SIGTERM the container, SIGKILL it after ``grace_s``; its exit code once it is down."""
    for sig, wait_s in (("SIGTERM", grace_s), ("SIGKILL", _REAP_S)):
        if sig == "SIGKILL":
            sink.system(f"still running {grace_s:g}s after SIGTERM; sending SIGKILL")
        with contextlib.suppress(ContainerRuntimeError):  # it may have exited already
            await runtime.call(f"sending {sig}", partial(APIClient.kill, container=cid, signal=sig))
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(exited), wait_s)
    return None


async def _despite_cancels(work: Awaitable[None]) -> None:
    """Await ``work`` to its end even when cancelled (again and again) meanwhile; then the
    cancel goes on."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


async def _release(
    runtime: ContainerRuntime,
    created: asyncio.Future[str] | None,
    watchdog: ContainerWatchdog | None,
    sink: _Sink,
) -> None:
    try:
        if watchdog is not None:
            await watchdog.stop()
    finally:
        if created is not None:
            await _cleanup(runtime, created, sink)


async def _cleanup(runtime: ContainerRuntime, created: asyncio.Future[str], sink: _Sink) -> None:
    try:
        cid = await created  # a create still in flight must finish, or its container leaks
    except Exception:
        return
    try:
        await runtime.call("removing the container", partial(remove_container, cid=cid))
    except ExecutionError as exc:
        logger.warning("container.remove_failed", extra={"container": cid, "error": str(exc)})
        sink.system(f"could not remove container {cid[:12]}: {exc}")


def _container_config(
    workspace: Path,
    outputs: Path,
    env: dict[str, str],
    cpu: float | None,
    memory_bytes: int | None,
    labels: dict[str, str] | None,
    network: str = "default",
) -> dict[str, Any]:
    if not workspace.is_dir():
        raise ExecutionError(f"workspace {workspace} is not a directory")
    env = {
        **env,
        "LOCKSTEP_WORKSPACE": WORKSPACE_DIR,
        "LOCKSTEP_OUTPUTS": f"{OUTPUTS_DIR}/{outputs.name}",
    }
    for name, value in env.items():
        # "K=V" strings carry any value exactly, but a name with '=' would split elsewhere.
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise ExecutionError(f"invalid environment variable {name[:100]!r} for a container")
    names = {
        k if k.startswith("lockstep.") else f"lockstep.{k}": v for k, v in (labels or {}).items()
    }
    return {
        "environment": [f"{k}={v}" for k, v in env.items()],
        "working_dir": WORKSPACE_DIR,
        "labels": {**names, MANAGED_LABEL: "1"},
        "name": f"lockstep-{uuid.uuid4().hex[:16]}",
        "host_config": {
            # Mounts, not "src:dst" binds: a ':' in a host path cannot be misread.
            "mounts": [
                Mount(WORKSPACE_DIR, str(workspace.resolve()), type="bind"),
                Mount(OUTPUTS_DIR, str(outputs.resolve().parent), type="bind"),
            ],
            "nano_cpus": round(cpu * 1e9) if cpu is not None else None,
            "mem_limit": memory_bytes,
            "memswap_limit": memory_bytes,  # the same as the limit: no swap on top of it
            **({"network_mode": "none"} if network == "none" else {}),
        },
    }


async def run_container(
    argv: list[str],
    *,
    runtime: ContainerRuntime,
    image: str,
    workspace: Path,
    outputs: Path,
    env: dict[str, str],
    timeout_s: float | None,
    log: LogWriter,
    heartbeat: Callable[[], None] | None = None,
    kill_grace_s: float = 5.0,
    max_log_bytes: int | None = None,
    cpu: float | None = None,
    memory_bytes: int | None = None,
    labels: dict[str, str] | None = None,
    pull: str = "if-not-present",
    network: str = "default",
    user: str | None = None,
    lease: Lease | None = None,
    capture: StdoutCapture | None = None,
    spawner: Spawner = "zygote",
) -> ContainerOutcome:
    """Run ``argv`` in a container of ``image`` and return how it ended.

    Raises ``ExecutionError`` when the step cannot run at all (bad image reference, image not
    available, runtime unreachable or failing), and ``CancelledError`` when cancelled, after
    the container is killed and removed. Never leaves the container behind.
    """
    check_image_reference(image)
    if not argv:
        return ContainerOutcome(
            None, False, None, 0.0, "cannot start: the command is empty", 0, False
        )
    config = _container_config(workspace, outputs, env, cpu, memory_bytes, labels, network=network)
    sink = _Sink(log, max_log_bytes)
    beat = asyncio.create_task(beat_forever(heartbeat, HEARTBEAT_EVERY_S)) if heartbeat else None
    created: asyncio.Future[str] | None = None
    output: _Output | None = None
    watchdog: ContainerWatchdog | None = None
    try:
        image_id = await ensure_image(runtime, image, sink, pull)
        sink.system(f"container image {image} ({image_id})")
        run_as = user or await runtime.call(
            "inspecting the image", partial(image_user, image_id=image_id)
        )
        run_as = run_as or runtime.default_user
        await asyncio.to_thread(grant, [workspace, outputs.parent], run_as)
        config = {**config, "user": run_as}
        if lease is not None:  # stops it even while this worker cannot (frozen, killed)
            watchdog = await ContainerWatchdog.start(runtime.url, config["name"], lease, spawner)
        create = partial(_create, image_id=image_id, argv=argv, config=config)
        created = asyncio.ensure_future(runtime.call("creating the container", create))
        cid = await asyncio.shield(created)
        start = time.monotonic()
        sock, problem = await runtime.call(
            "starting the container", partial(_attach_and_start, cid=cid)
        )
        if sock is not None:
            output = _Output(sock, sink, capture)
        if problem is not None or output is None:
            failed = start_failure(argv[0], str(problem))
            duration = time.monotonic() - start
            return ContainerOutcome(None, False, None, duration, failed, 0, False, image_id)
        wait = partial(APIClient.wait, container=cid)  # no request timeout: steps run for hours
        exited = in_daemon_thread(
            lambda: int(runtime.call_sync("waiting for the container", wait)["StatusCode"]),
            "container-wait",
        )
        timed_out = False
        code: int | None = None
        expiry = asyncio.ensure_future((lease or Lease.unbounded()).wait_expired())
        watched: list[asyncio.Future[Any]] = [exited, expiry]
        try:
            await asyncio.wait(watched, timeout=timeout_s, return_when="FIRST_COMPLETED")
        finally:
            expiry.cancel()
        if lease is not None and lease.expired():
            # the engine has moved on: the container goes (removed below), nothing is kept
            sink.system(lease.reason())
            raise AttemptLost(lease.reason())
        if exited.done():
            code = exited.result()
        else:
            timed_out = True
            sink.system(f"timed out after {timeout_s:g}s; sending SIGTERM to the container")
            code = await _stop(runtime, cid, exited, kill_grace_s, sink)
        duration = time.monotonic() - start
        await asyncio.wait([output.done], timeout=DRAIN_S)
        output.finish()
        state: dict[str, Any] = {}
        if memory_bytes is not None:  # only an OOM kill needs the container's final state
            inspect = partial(APIClient.inspect_container, container=cid)
            state = (await runtime.call("inspecting the container", inspect))["State"]
        if code is None:  # never seen to exit: the forced removal below ends it
            code = 128 + signal.SIGKILL
        error, sig, oom = exit_verdict(code, timed_out, timeout_s, state, memory_bytes)
        outcome = ContainerOutcome(
            code, timed_out, sig, duration, error, sink.bytes, sink.truncated, image_id, oom
        )
    finally:
        # The container is removed before this returns or CancelledError goes on, whatever
        # cancels arrive meanwhile (each runtime call is bounded by its own timeout), and the
        # attempt keeps beating while it is: on a loaded host a silent clean-up outlived the
        # heartbeat timeout, the engine gave the attempt up, and the run ended with its
        # container still there.
        try:
            await _despite_cancels(_release(runtime, created, watchdog, sink))
        finally:
            if beat is not None:
                beat.cancel()
            if output is not None:
                output.finish()
    if sink.error is not None:
        reason = getattr(sink.error, "strerror", None) or sink.error
        raise ExecutionError(f"cannot write the step log: {reason}")
    return outcome


def exit_verdict(
    code: int,
    timed_out: bool,
    timeout_s: float | None,
    state: dict[str, Any],
    memory_bytes: int | None,
) -> tuple[str | None, int | None, bool]:
    """The outcome's error, signal and oom_killed for a container that exited with ``code``."""
    killed = signal.SIGKILL if code == 128 + signal.SIGKILL else None
    if timed_out:
        return f"timed out after {timeout_s:g}s", (code - 128 if code > 128 else None), False
    reported = bool(state.get("OOMKilled"))
    # Podman does not report OOMKilled on cgroup v1: a SIGKILL we did not send, under a memory
    # limit, is then the kernel's OOM killer in all likelihood.
    if memory_bytes is not None and (reported or killed):
        limit = f"{memory_bytes / (1 << 20):.4g}Mi"
        # cgroup v1 leaves the flag unset: a SIGKILL we did not send is the kernel's OOM killer
        # in all likelihood, and the message says so
        likely = "" if reported else ", most likely"
        return (
            f"killed: out of memory (limit {limit}{likely}); raise resources.memory",
            killed,
            True,
        )
    return (f"exited with code {code}" if code else None), None, False


def worker_host_pid() -> tuple[str, str]:
    """Where this worker process lives: its containers carry it, so a restarted worker can
    find and remove what an earlier life of it left behind."""
    return socket.gethostname(), str(os.getpid())


class ContainerExecutor:
    """Runs the task's argv in a container of its image, on the worker's container runtime."""

    needs_workspace = True

    async def run(self, attempt: Attempt) -> Outcome:
        task, place, tools = attempt.task, attempt.place, attempt.tools
        assert place is not None and task.container is not None  # needs_workspace; its kind
        if tools.containers is None:
            raise ExecutionError(
                f"step '{task.step_id}' needs a container runtime and worker {tools.worker} "
                "has none; set LOCKSTEP_CONTAINER_HOST (or DOCKER_HOST) on the worker"
            )
        box = task.container
        # the image's own PATH and HOME stay: only the task's variables and lockstep's go in
        env = {**task.env, **lockstep_env(task)}
        if place.input_file is not None:
            env["LOCKSTEP_INPUT"] = f"{OUTPUTS_DIR}/{place.input_file.name}"
        host, pid = worker_host_pid()
        ended = await run_container(
            task.argv,
            runtime=tools.containers,
            image=box.image,
            workspace=place.workspace,
            outputs=place.outputs_file,
            env=env,
            timeout_s=task.timeout_s,
            log=attempt.log,
            heartbeat=attempt.heartbeat,
            kill_grace_s=tools.kill_grace_s,
            max_log_bytes=tools.max_log_bytes,
            cpu=box.cpu,
            memory_bytes=box.memory_bytes,
            labels={
                "run": task.run_id,
                "step": task.step_id,
                "attempt": str(task.attempt),
                "worker": tools.worker,
                "host": host,
                "pid": pid,
            },
            pull=box.pull,
            network=box.network,
            user=box.user,
            lease=attempt.lease,
            capture=attempt.stdout,
            spawner=tools.spawner,
        )
        return outcome_of(ended, ended.image_digest)
