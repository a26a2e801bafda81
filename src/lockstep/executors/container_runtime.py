"""The container runtime a worker talks to: one Docker Engine API endpoint (Docker, or Podman's
compatible socket, ``podman system service``), its errors in lockstep's words, images (checked,
looked up, pulled by policy) and the forced removal of a container.

Every blocking API call runs in a thread. No docker exception escapes: each becomes a one-line
``ExecutionError`` at the call that raised it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import socket
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import docker
import docker.errors
import requests
from docker.api import APIClient

from lockstep.errors import ExecutionError, LockstepError
from lockstep.executors.process import _Sink
from lockstep.settings import DEFAULT_CONTAINER_USER
from lockstep.spec.hints import one_line
from lockstep.spec.quantities import image_problem

T = TypeVar("T")

#: every container lockstep creates carries this label, so leftovers can be found by it
MANAGED_LABEL = "lockstep.managed"
#: each running step holds two connections (output stream, wait) outside the pool's reuse
_MAX_POOL = 64

_RUNC_REASON = re.compile(r"unable to start container process: (.+?)(?:: (?:OCI |unknown).*)?$")


class ContainerRuntimeUnreachable(ExecutionError):
    """The Docker API socket does not answer."""


class ContainerRuntimeError(ExecutionError):
    """The runtime answered with an error (or not in time)."""


class ImageUnavailable(ExecutionError):
    """The image is neither on the worker nor pullable."""


class InvalidImageReference(ExecutionError):
    """The image reference is not syntactically an image reference."""


def check_image_reference(image: str) -> None:
    """Raise ``InvalidImageReference`` unless ``image`` is ``[registry/]name[:tag][@digest]``
    or an image id; checked before the API sees it, so it is never taken for anything else."""
    problem = image_problem(image)
    if problem is not None:
        raise InvalidImageReference(f"invalid image reference {image[:100]!r}: {problem}")


def _reason(exc: BaseException) -> str:
    """An OSError's own words from anywhere in the chain (requests wraps them deeply)."""
    todo, seen = [exc], set()
    while todo:
        err = todo.pop(0)
        if isinstance(err, OSError) and err.strerror:
            return err.strerror
        seen.add(id(err))
        more = [*err.args, err.__cause__, err.__context__]
        todo += [e for e in more if isinstance(e, BaseException) and id(e) not in seen]
    return one_line(str(exc), 300) or type(exc).__name__


def explanation(exc: docker.errors.APIError) -> str:
    return one_line(str(exc.explanation or exc), 300)


#: the API version each endpoint answered, asked by this process's first client of it
_API_VERSIONS: dict[str, str] = {}


class ContainerRuntime:
    """One Docker Engine API endpoint, e.g. ``unix:///run/podman/podman.sock``.

    Creating it does not touch the runtime: the first call connects (docker's client asks for
    the API version as it is constructed), in a thread like every call.
    """

    def __init__(
        self, url: str, *, timeout_s: float = 60, default_user: str = DEFAULT_CONTAINER_USER
    ) -> None:
        self.url = url
        #: who a container runs as when neither its step nor its image names a user
        self.default_user = default_user
        self.timeout_s = timeout_s
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def _api(self) -> APIClient:
        with self._lock:
            if self._client is None:
                if self.url.startswith("unix://"):
                    # Our own probe first: docker's client leaks its socket when the connect
                    # fails, and the OSError says plainly why (translated as unreachable).
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                        probe.settimeout(self.timeout_s)
                        probe.connect(self.url.removeprefix("unix://"))
                self._client = docker.DockerClient(
                    base_url=self.url,
                    # None asks the runtime (GET /version: Podman answers it by querying its
                    # package manager, ~0.4 s of CPU), once a process for each endpoint
                    version=_API_VERSIONS.get(self.url),
                    timeout=math.ceil(self.timeout_s),
                    max_pool_size=_MAX_POOL,
                )
                _API_VERSIONS[self.url] = self._client.api.api_version
            return self._client.api

    def call_sync(self, what: str, fn: Callable[[APIClient], T]) -> T:
        """``fn(api)``, any failure of the runtime turned into an ``ExecutionError``."""
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
        reason = explanation(exc) if isinstance(exc, docker.errors.APIError) else _reason(exc)
        return ContainerRuntimeError(f"container runtime failed {what}: {reason}")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def in_daemon_thread(fn: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run ``fn`` in a daemon thread; its result or exception arrives in the returned future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    # Retrieved up front: a result nobody awaits any more (after a cancel) is not an error.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)

    def run() -> None:
        try:
            result: tuple[bool, Any] = (True, fn())
        except BaseException as exc:
            result = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(settle, *result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _image_id(api: APIClient, image: str) -> str | None:
    try:
        info: dict[str, Any] = api.inspect_image(image)  # type: ignore[no-untyped-call]
    except docker.errors.NotFound:
        return None
    return str(info["Id"])


def _pull(api: APIClient, image: str) -> str | None:
    """Pull ``image``; why not, if it failed (a failed pull can answer 200 with the error in
    the progress stream)."""
    for message in api.pull(image, stream=True, decode=True):
        if isinstance(message, dict) and message.get("error"):
            return one_line(str(message["error"]), 300)
    return None


async def ensure_image(
    runtime: ContainerRuntime, image: str, sink: _Sink, pull: str = "if-not-present"
) -> str:
    """The id of ``image`` by pull policy: ``if-not-present`` pulls once when missing,
    ``always`` pulls first, ``never`` only uses what the worker has."""
    image_id = None
    if pull != "always":
        image_id = await runtime.call("looking up the image", partial(_image_id, image=image))
    if image_id is not None:
        return image_id
    if pull == "never":
        raise ImageUnavailable(f"image not found: {image} (pull policy never)")
    sink.system(f"image {image} is not on this worker; pulling it")
    try:
        problem = await runtime.call("pulling the image", partial(_pull, image=image))
    except ContainerRuntimeError as exc:
        problem = str(exc)
    if problem is None:
        image_id = await runtime.call("looking up the image", partial(_image_id, image=image))
    if image_id is None:
        raise ImageUnavailable(
            f"image {image!r} not found locally and cannot be pulled: "
            f"{problem or 'the pull did not produce it'}; build or load it on the worker"
        )
    return image_id


def remove_container(api: APIClient, cid: str) -> None:
    # SIGKILL first: Podman's forced removal would send SIGTERM and wait out the stop timeout.
    with contextlib.suppress(docker.errors.APIError):
        api.kill(cid, "SIGKILL")
    try:
        api.remove_container(cid, v=True, force=True)
        api.inspect_container(cid)
    except docker.errors.NotFound:
        return
    raise ContainerRuntimeError(f"container {cid[:12]} is still there after a forced removal")


def refused(call: Callable[[], T]) -> tuple[T | None, str | None]:
    """``call()``, or the runtime's reason when it refuses (a missing container is an error)."""
    try:
        return call(), None
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            raise
        text = explanation(exc)
        # runc's own words without the layers of runtimes around them (Podman and Docker alike)
        found = _RUNC_REASON.search(text)
        return None, found.group(1) if found else text


def start_failure(command: str, problem: str) -> str:
    """Why a container did not start: the command's fault, or the host's runtime set-up."""
    if "rlimit" in problem:
        # Podman asks for more open files/processes than this host grants: no container can
        # start here, whatever the step runs
        return (
            f"the container runtime on this worker cannot start containers ({problem}): "
            "its default ulimits exceed what the host allows; set default_ulimits = "
            '["nofile=1024:1024", "nproc=1024:1024"] in /etc/containers/containers.conf '
            "(lockstep's scripts/podman-setup.sh does) and restart the Podman service"
        )
    return f"cannot start {command!r}: {problem}"
