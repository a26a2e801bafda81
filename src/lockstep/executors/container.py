"""Run one step in a container through the Docker Engine API: Docker, or Podman's compatible
socket (``podman system service``).

The container runs exactly ``argv`` (it replaces the image's entrypoint; no shell is added) with
exactly the given environment, the step's working copy at ``/workspace`` (its working directory)
and the directory of its outputs file at ``/lockstep``. It reports a ``ContainerOutcome``, a
``ProcessOutcome`` with two more fields, so the shell executor can run a step either way; like
``run_process`` it never raises for a step that fails, and it always removes the container.

Every blocking API call runs in a thread. The two that last as long as the step (the attached
output stream and the wait for its exit) get daemon threads of their own, so a runtime that never
answers cannot hold up the worker's shutdown. No docker exception escapes: each becomes a
one-line ``ExecutionError`` at the call that raised it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests
from docker.api import APIClient
from docker.types import Mount
from docker.utils.socket import STDERR, STDOUT, frames_iter_no_tty

from lockstep.errors import ExecutionError, LockstepError
from lockstep.executors.process import DRAIN_S, ProcessOutcome, _beat, _Pipe, _Sink
from lockstep.storage.logs import LogWriter

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: where the step's working copy and its outputs directory appear inside the container
WORKSPACE_DIR = "/workspace"
OUTPUTS_DIR = "/lockstep"
#: every container lockstep creates carries this label, so leftovers can be found by it
MANAGED_LABEL = "lockstep.managed"
HEARTBEAT_EVERY_S = 1.0
#: how long a SIGKILLed container gets to be reported gone before we stop waiting for it
_REAP_S = 5.0
_MAX_REFERENCE = 255

# The reference grammar of distribution/reference: [domain[:port]/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"\w[\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?"
)
_IMAGE_ID = re.compile(r"(?:sha256:)?[0-9a-f]{64}")


class ContainerRuntimeUnreachable(ExecutionError):
    """The Docker API socket does not answer."""


class ContainerRuntimeError(ExecutionError):
    """The runtime answered with an error (or not in time)."""


class ImageUnavailable(ExecutionError):
    """The image is neither on the worker nor pullable."""


class InvalidImageReference(ExecutionError):
    """The image reference is not syntactically an image reference."""


@dataclass(frozen=True)
class ContainerOutcome(ProcessOutcome):
    image_digest: str | None = None  # the id (sha256:...) of the image the container ran
    oom_killed: bool = False


def check_image_reference(image: str) -> None:
    """Raise ``InvalidImageReference`` unless ``image`` is ``[registry/]name[:tag][@digest]``
    or an image id. Checked before the API sees it, so no value is ever taken for an option."""
    problem = None
    if not image:
        problem = "it is empty"
    elif len(image) > _MAX_REFERENCE:
        problem = f"it is longer than {_MAX_REFERENCE} characters"
    elif any(ch.isspace() or not ch.isprintable() for ch in image):
        problem = "it contains whitespace or control characters"
    elif image.startswith("-"):
        problem = "it starts with '-'"
    elif not (_REFERENCE.fullmatch(image) or _IMAGE_ID.fullmatch(image)):
        problem = "expected [registry/]name[:tag][@digest] with a lowercase name"
    if problem is not None:
        raise InvalidImageReference(f"invalid image reference {image[:100]!r}: {problem}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _reason(exc: BaseException) -> str:
    """The most telling reason in an exception chain: an OSError's own words if there is one
    (requests buries 'No such file or directory' three wrappers deep)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        err = todo.pop(0)
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, OSError) and err.strerror:
            return err.strerror
        todo.extend(arg for arg in err.args if isinstance(arg, BaseException))
        todo.extend(e for e in (err.__cause__, err.__context__) if e is not None)
    return _one_line(str(exc)) or type(exc).__name__


def _explanation(exc: docker.errors.APIError) -> str:
    return _one_line(str(exc.explanation or exc))


class ContainerRuntime:
    """One Docker Engine API endpoint, e.g. ``unix:///run/podman/podman.sock``.

    Creating it does not touch the runtime: the first call connects (and asks for the API
    version, which docker's client does on construction), in a thread like every call.
    """

    def __init__(self, url: str, *, timeout_s: float = 60) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def _api(self) -> APIClient:
        with self._lock:
            if self._client is None:
                self._client = docker.DockerClient(
                    base_url=self.url, timeout=math.ceil(self.timeout_s)
                )
            return self._client.api

    def call_sync(self, what: str, fn: Callable[[APIClient], T]) -> T:
        """``fn(api)``, with any failure of the runtime as an ``ExecutionError``."""
        try:
            return fn(self._api())
        except LockstepError:
            raise
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise self._translate(exc, what) from exc

    async def call(self, what: str, fn: Callable[[APIClient], T]) -> T:
        return await asyncio.to_thread(self.call_sync, what, fn)

    def _translate(self, exc: Exception, what: str) -> ExecutionError:
        connecting = self._client is None and not isinstance(exc, docker.errors.APIError)
        if connecting or isinstance(exc, requests.ConnectionError | ConnectionError):
            return ContainerRuntimeUnreachable(
                f"container runtime at {self.url} is unreachable: {_reason(exc)}; "
                "start podman/docker on this worker"
            )
        if isinstance(exc, requests.Timeout | TimeoutError):
            return ContainerRuntimeError(
                f"container runtime at {self.url} did not answer within {self.timeout_s:g}s "
                f"while {what}"
            )
        reason = _explanation(exc) if isinstance(exc, docker.errors.APIError) else _reason(exc)
        return ContainerRuntimeError(f"container runtime failed {what}: {reason}")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _in_daemon_thread(fn: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run ``fn`` in a daemon thread; its result or exception arrives in the returned future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    # Retrieved here so an outcome nobody waits for any more (after a cancel) is not reported
    # as a "never retrieved" exception.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def run() -> None:
        try:
            result: tuple[bool, Any] = (True, fn())
        except BaseException as exc:
            result = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(settle, *result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


class _Output:
    """The container's stdout and stderr, read from the attach socket in a daemon thread and
    written to the log on the event loop, so the log (and the byte cap) has one writer."""

    def __init__(self, sock: Any, sink: _Sink) -> None:
        loop = asyncio.get_running_loop()
        self._pipes = {
            STDOUT: _Pipe("out", sink, loop.create_future()),
            STDERR: _Pipe("err", sink, loop.create_future()),
        }
        self.done = _in_daemon_thread(partial(self._pump, loop, sock), "container-output")

    def _pump(self, loop: asyncio.AbstractEventLoop, sock: Any) -> None:
        try:
            for stream, data in frames_iter_no_tty(sock):
                if stream in self._pipes and isinstance(data, bytes):
                    loop.call_soon_threadsafe(self._pipes[stream].data_received, data)
        except (OSError, ValueError, RuntimeError):
            pass  # the runtime dropped the stream (the container was removed) or the loop closed
        finally:
            response = getattr(sock, "_response", None)
            if response is not None:
                response.close()
            with contextlib.suppress(OSError):
                sock.close()

    def finish(self) -> None:
        """Log each stream's unterminated last line; anything arriving later is dropped."""
        for pipe in self._pipes.values():
            pipe.finish()


def _image_id(api: APIClient, image: str) -> str | None:
    try:
        info: dict[str, Any] = api.inspect_image(image)  # type: ignore[no-untyped-call]
        return str(info["Id"])
    except docker.errors.NotFound:
        return None


def _pull(api: APIClient, image: str) -> str | None:
    """Pull ``image``; the runtime's reason when it could not (pull errors arrive in the
    progress stream of a successful response, not as an HTTP error)."""
    for message in api.pull(image, stream=True, decode=True):
        if isinstance(message, dict) and message.get("error"):
            return _one_line(str(message["error"]))
    return None


async def _ensure_image(runtime: ContainerRuntime, image: str, sink: _Sink) -> str:
    """The id of ``image``, pulling it once if it is not on the worker."""
    image_id = await runtime.call("looking up the image", partial(_image_id, image=image))
    if image_id is not None:
        return image_id
    sink.system(f"image {image} is not on this worker; pulling it")
    try:
        problem = await runtime.call("pulling the image", partial(_pull, image=image))
    except ContainerRuntimeUnreachable:
        raise
    except ExecutionError as exc:
        problem = str(exc)
    if problem is None:
        image_id = await runtime.call("looking up the image", partial(_image_id, image=image))
    if image_id is None:
        raise ImageUnavailable(
            f"image {image!r} not found locally and cannot be pulled: "
            f"{problem or 'the pull did not produce it'}; build or load it on the worker"
        )
    return image_id


def _create(api: APIClient, *, image_id: str, argv: list[str], config: dict[str, Any]) -> str:
    # Entrypoint and Cmd both set: the container runs argv, never the image's entrypoint with
    # argv as its arguments (an empty Cmd does not pull in the image's CMD either).
    created = api.create_container(image_id, command=argv[1:], entrypoint=argv[:1], **config)
    return str(created["Id"])


def _attach(api: APIClient, cid: str) -> tuple[Any, str | None]:
    """The output socket, or the runtime's reason why the command cannot start (Podman
    creates the container's process when attaching, so a missing executable fails here)."""
    try:
        return api.attach_socket(cid, {"stdout": 1, "stderr": 1, "stream": 1, "logs": 1}), None
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            raise
        return None, _explanation(exc)


def _start(api: APIClient, cid: str) -> str | None:
    """Start the container; the runtime's reason when the command could not be started."""
    try:
        api.start(cid)
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            raise
        return _explanation(exc)
    return None


def _wait(api: APIClient, cid: str) -> int:
    return int(api.wait(cid)["StatusCode"])  # no request timeout: a step may run for hours


def _state(api: APIClient, cid: str) -> dict[str, Any]:
    state: dict[str, Any] = api.inspect_container(cid)["State"]
    return state


def _remove(api: APIClient, cid: str) -> None:
    # SIGKILL first: Podman's forced removal would send SIGTERM and wait out the stop timeout.
    with contextlib.suppress(docker.errors.APIError):
        api.kill(cid, "SIGKILL")
    try:
        api.remove_container(cid, v=True, force=True)
        api.inspect_container(cid)
    except docker.errors.NotFound:
        return
    raise ContainerRuntimeError(f"container {cid[:12]} is still there after a forced removal")


async def _kill(runtime: ContainerRuntime, cid: str, sig: str) -> None:
    with contextlib.suppress(ContainerRuntimeError):  # it may have exited already
        await runtime.call(f"sending {sig}", lambda api: api.kill(cid, sig))


async def _stop(
    runtime: ContainerRuntime, cid: str, exited: asyncio.Future[int], grace_s: float, sink: _Sink
) -> int | None:
    """SIGTERM the container, SIGKILL it after ``grace_s``; its exit code once it is down."""
    await _kill(runtime, cid, "SIGTERM")
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(asyncio.shield(exited), grace_s)
    sink.system(f"still running {grace_s:g}s after SIGTERM; sending SIGKILL")
    await _kill(runtime, cid, "SIGKILL")
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(asyncio.shield(exited), _REAP_S)
    return None


async def _cleanup(runtime: ContainerRuntime, created: asyncio.Future[str], sink: _Sink) -> None:
    try:
        cid = await created  # a create still in flight must finish, or its container leaks
    except Exception:
        return
    try:
        await runtime.call("removing the container", partial(_remove, cid=cid))
    except ExecutionError as exc:
        logger.warning("container.remove_failed", extra={"container": cid, "error": str(exc)})
        sink.system(f"could not remove container {cid[:12]}: {exc}")


def _size(n: int) -> str:
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= unit:
            return f"{n / unit:.4g} {name}"
    return f"{n} bytes"


def _container_config(
    *,
    workspace: Path,
    outputs: Path,
    env: dict[str, str],
    cpu: float | None,
    memory_bytes: int | None,
    labels: dict[str, str] | None,
    kill_grace_s: float,
) -> dict[str, Any]:
    if not workspace.is_dir():
        raise ExecutionError(f"workspace {workspace} is not a directory")
    workspace, outputs = workspace.resolve(), outputs.resolve()
    env = {
        **env,
        "LOCKSTEP_WORKSPACE": WORKSPACE_DIR,
        "LOCKSTEP_OUTPUTS": f"{OUTPUTS_DIR}/{outputs.name}",
    }
    for name, value in env.items():
        # "K=V" strings are exact for any value, but a name with '=' would split elsewhere.
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise ExecutionError(f"invalid environment variable {name[:100]!r} for a container")
    names = {
        key if key.startswith("lockstep.") else f"lockstep.{key}": value
        for key, value in (labels or {}).items()
    }
    host_config = {
        # Mounts, not "src:dst" binds: a ':' in a host path cannot be misread.
        "mounts": [
            Mount(WORKSPACE_DIR, str(workspace), type="bind"),
            Mount(OUTPUTS_DIR, str(outputs.parent), type="bind"),
        ],
        "nano_cpus": round(cpu * 1e9) if cpu is not None else None,
        "mem_limit": memory_bytes,
        "memswap_limit": memory_bytes,  # the same as the limit: no swap on top of it
    }
    return {
        "environment": [f"{k}={v}" for k, v in env.items()],
        "working_dir": WORKSPACE_DIR,
        "labels": {**names, MANAGED_LABEL: "1"},
        "name": f"lockstep-{uuid.uuid4().hex[:16]}",
        "stop_timeout": max(1, math.ceil(kill_grace_s)),
        "host_config": host_config,
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
) -> ContainerOutcome:
    """Run ``argv`` in a container of ``image`` and return how it ended.

    Raises ``ExecutionError`` when the step cannot run at all (bad image reference, image not
    available, runtime unreachable or failing); raises ``CancelledError`` after the container
    is killed and removed when cancelled. Never leaves the container behind.
    """
    check_image_reference(image)
    start = time.monotonic()
    sink = _Sink(log, max_log_bytes)
    if not argv:
        error = "cannot start: the command is empty"
        return ContainerOutcome(None, False, None, 0.0, error, 0, False)
    config = _container_config(
        workspace=workspace, outputs=outputs, env=env, cpu=cpu,
        memory_bytes=memory_bytes, labels=labels, kill_grace_s=kill_grace_s,
    )  # fmt: skip
    beat = asyncio.create_task(_beat(heartbeat, HEARTBEAT_EVERY_S)) if heartbeat else None
    created: asyncio.Future[str] | None = None
    output: _Output | None = None
    try:
        image_id = await _ensure_image(runtime, image, sink)
        sink.system(f"container image {image} ({image_id})")
        create = partial(_create, image_id=image_id, argv=argv, config=config)
        created = asyncio.ensure_future(runtime.call("creating the container", create))
        cid = await asyncio.shield(created)
        # Attached before the start, so not a byte of output is missed.
        start = time.monotonic()
        sock, problem = await runtime.call("attaching to the container", partial(_attach, cid=cid))
        if sock is not None:
            output = _Output(sock, sink)
            problem = await runtime.call("starting the container", partial(_start, cid=cid))
        if problem is not None:
            error = f"cannot start {argv[0]!r}: {problem}"
            duration = time.monotonic() - start
            return ContainerOutcome(None, False, None, duration, error, 0, False, image_id)
        wait = partial(_wait, cid=cid)
        exited = _in_daemon_thread(
            partial(runtime.call_sync, "waiting for the container", wait), "container-wait"
        )
        timed_out = False
        try:
            code: int | None = await asyncio.wait_for(asyncio.shield(exited), timeout_s)
        except TimeoutError:
            timed_out = True
            sink.system(f"timed out after {timeout_s:g}s; sending SIGTERM to the container")
            code = await _stop(runtime, cid, exited, kill_grace_s, sink)
        duration = time.monotonic() - start
        await asyncio.wait([output.done], timeout=DRAIN_S)
        output.finish()
        state = await runtime.call("inspecting the container", partial(_state, cid=cid))
        if code is None:
            code = int(state.get("ExitCode") or 128 + signal.SIGKILL)
        outcome = _outcome(code, timed_out, timeout_s, duration, sink, image_id)
        if (oom := _oom_error(state, code, timed_out, memory_bytes)) is not None:
            outcome = ContainerOutcome(
                code, False, signal.SIGKILL, duration, oom, sink.bytes, sink.truncated,
                image_id, oom_killed=True,
            )  # fmt: skip
    finally:
        if beat is not None:
            beat.cancel()
        if created is not None:
            # Shielded: even when cancelled, the container is removed before CancelledError
            # goes on (a second cancel stops the waiting, not the removal).
            await asyncio.shield(asyncio.ensure_future(_cleanup(runtime, created, sink)))
        if output is not None:
            output.finish()
    if sink.error is not None:
        reason = getattr(sink.error, "strerror", None) or sink.error
        raise ExecutionError(f"cannot write the step log: {reason}")
    return outcome


def _outcome(
    code: int, timed_out: bool, timeout_s: float | None, duration: float, sink: _Sink, image_id: str
) -> ContainerOutcome:
    sig: int | None = None
    error = f"exited with code {code}" if code != 0 else None
    if timed_out:
        error = f"timed out after {timeout_s:g}s"
        with contextlib.suppress(ValueError):
            sig = signal.Signals(code - 128) if code > 128 else None
    return ContainerOutcome(
        code, timed_out, sig, duration, error, sink.bytes, sink.truncated, image_id
    )


def _oom_error(
    state: dict[str, Any], code: int, timed_out: bool, memory_bytes: int | None
) -> str | None:
    if memory_bytes is None:
        return None
    limit = _size(memory_bytes)
    if state.get("OOMKilled"):
        return (
            f"out of memory: the step used more than {limit} (memory limit); raise resources.memory"
        )
    # Podman on cgroup v1 does not report OOMKilled; a SIGKILL we did not send, under a memory
    # limit, is then the kernel's OOM killer in all likelihood.
    if code == 128 + signal.SIGKILL and not timed_out:
        return (
            f"out of memory (most likely): the step was killed with SIGKILL under its {limit} "
            "memory limit; raise resources.memory"
        )
    return None
