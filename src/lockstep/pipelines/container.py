"""An ``image:`` node's program: a container of its image, through the worker's container
runtime (``executors.container_runtime``), its stdin/stdout attached for the node contract.

It offers what ``process.NodeProcess`` does (stdin, stdout, stderr, wait, stop), so the runner
does not tell them apart. The container runs exactly the node's argv (entrypoint replaced, no
shell added), with exactly the node's environment (``K=V`` entries of the API request, never a
command line), under its ``resources`` as limits, and carries the labels the worker's reaper
looks for. A watchdog (``supervisor.py --container``, the one container steps use) kills and
removes it when this process dies however it dies, so no container outlives its replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, cast

from docker.api import APIClient
from docker.utils.socket import STDERR, STDOUT, frames_iter_no_tty

from lockstep.errors import ExecutionError
from lockstep.executors.container import exit_verdict as verdict  # one OOM wording
from lockstep.executors.container_runtime import (
    MANAGED_LABEL,
    ContainerRuntime,
    check_image_reference,
    ensure_image,
    in_daemon_thread,
    refused,
    remove_container,
    start_failure,
)
from lockstep.executors.container_user import image_user
from lockstep.executors.spawner import Supervisor, start_watchdog
from lockstep.executors.supervision import Control, close_fds
from lockstep.pipelines.process import Exit, exit_of


@dataclass(frozen=True)
class Box:
    """Where and how: the runtime, and the labels that tie the container to this worker."""

    runtime: ContainerRuntime
    labels: Mapping[str, str]
    pull: str = "if-not-present"


class _Notes:
    """What ``ensure_image`` says while pulling, kept for the node's log."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def system(self, text: str) -> None:
        self.lines.append(text)


class AttachedStdin:
    """The container's stdin on the attach socket: written in order, drained in a thread."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._lock = asyncio.Lock()

    def write(self, data: bytes) -> None:
        self._buffer += data

    async def drain(self) -> None:
        async with self._lock:
            data, self._buffer = bytes(self._buffer), bytearray()
            if data:
                try:
                    await asyncio.to_thread(self._sock.sendall, data)
                except OSError as exc:
                    raise BrokenPipeError(str(exc)) from None

    def close(self) -> None:
        """End of file for the program (the socket stays open for its output)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)


class ContainerProcess:
    def __init__(self, box: Box, cid: str, sock: Any, watchdog: tuple[Supervisor, Control]):
        loop = asyncio.get_running_loop()
        self._box = box
        self._cid = cid
        self._started = time.monotonic()
        self._watchdog: tuple[Supervisor, Control] | None = watchdog
        self.stdout = asyncio.StreamReader()
        self.stderr = asyncio.StreamReader()
        raw = sock._sock if hasattr(sock, "_sock") else sock
        self.stdin: AttachedStdin | None = AttachedStdin(raw)
        self._output = in_daemon_thread(partial(self._pump, loop, sock), "node-container-output")
        wait = partial(APIClient.wait, container=cid)
        self._exited = in_daemon_thread(
            lambda: int(box.runtime.call_sync("waiting for the container", wait)["StatusCode"]),
            "node-container-wait",
        )
        self.stopping = False
        self.memory_bytes: int | None = None  # its limit: a SIGKILL under it is likely an OOM
        #: what the caller can see of it: its watchdog's pid
        self.pid: int = getattr(watchdog[0], "pid", 0)

    @classmethod
    async def start(
        cls,
        box: Box,
        image: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        with_stdin: bool,
        **limits: Any,
    ) -> ContainerProcess:
        """Raises ``ExecutionError`` (one line) when the container cannot be started: the
        image is not there nor pullable, the runtime is unreachable, the command fails."""
        check_image_reference(image)
        runtime = box.runtime
        image_id = await ensure_image(runtime, image, cast(Any, _Notes()), box.pull)
        user = await runtime.call("inspecting the image", partial(image_user, image_id=image_id))
        name = f"lockstep-node-{uuid.uuid4().hex[:16]}"
        config = _config(name, env, user or runtime.default_user, box.labels, **limits)
        ctl_r, ctl_w = os.pipe()  # our end stays open: its end of file means "replica gone"
        ctl = Control(ctl_w)
        try:
            watchdog = await start_watchdog(
                runtime.url, name, ctl=ctl_r, deadline=float("inf"), how="direct"
            )
        except BaseException:
            ctl.close()
            raise
        finally:
            close_fds(ctl_r)
        create = partial(_create, image_id=image_id, argv=list(argv), config=config)
        try:
            cid = await runtime.call("creating the container", create)
            sock, problem = await runtime.call("starting the container", partial(_attach, cid=cid))
        except BaseException:
            await _end_watchdog(watchdog, ctl, keep=False)
            raise
        if problem is not None or sock is None:
            # the watchdog, not told "done", kills and removes it as it leaves
            await _end_watchdog(watchdog, ctl, keep=False)
            raise ExecutionError(start_failure(" ".join(argv)[:100] or image, str(problem)))
        started = cls(box, cid, sock, (watchdog, ctl))
        started.memory_bytes = limits.get("memory_bytes")
        if not with_stdin and started.stdin is not None:  # a source: end of file at once
            started.stdin.close()
            started.stdin = None
        return started

    def _pump(self, loop: asyncio.AbstractEventLoop, sock: Any) -> None:
        readers = {STDOUT: self.stdout, STDERR: self.stderr}
        try:
            for stream, data in frames_iter_no_tty(sock):
                if stream in readers and isinstance(data, bytes):
                    loop.call_soon_threadsafe(readers[stream].feed_data, data)
        except (OSError, ValueError, RuntimeError):
            pass  # the stream broke off (container removed) or the loop is gone
        finally:
            for reader in readers.values():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(reader.feed_eof)
            if (response := getattr(sock, "_response", None)) is not None:
                response.close()
            for end in (sock, getattr(sock, "_sock", sock)):  # the wrapper, and its socket
                with contextlib.suppress(OSError):
                    end.close()

    async def wait(self) -> Exit:
        try:
            code = await asyncio.shield(self._exited)
        except ExecutionError:
            code = 137  # the runtime lost it: as if killed
        ended = exit_of(code, time.monotonic() - self._started, self.stopping)
        if self.memory_bytes is not None and not self.stopping and code == 128 + 9:
            inspect = partial(APIClient.inspect_container, container=self._cid)
            with contextlib.suppress(ExecutionError):
                state = (await self._box.runtime.call("inspecting the container", inspect))["State"]
                said, _, oom = verdict(code, False, None, state, self.memory_bytes)
                if oom and said:
                    ended = replace(ended, reason=said)
        await self._remove()
        return ended

    async def stop(self, grace_s: float) -> None:
        """SIGTERM to the container, SIGKILL after ``grace_s``; returns once it is removed."""
        self.stopping = True
        for sig, wait_s in (("SIGTERM", grace_s), ("SIGKILL", 5.0)):
            if self._exited.done():
                break
            kill = partial(APIClient.kill, container=self._cid, signal=sig)
            with contextlib.suppress(ExecutionError):  # it may have exited already
                await self._box.runtime.call(f"sending {sig}", kill)
            with contextlib.suppress(TimeoutError, ExecutionError):
                await asyncio.wait_for(asyncio.shield(self._exited), wait_s)
        await self._remove()

    async def _remove(self) -> None:
        if self._watchdog is None:
            return
        watchdog, ctl = self._watchdog
        self._watchdog = None
        removed = False
        try:
            await self._box.runtime.call(
                "removing the container", partial(remove_container, cid=self._cid)
            )
            removed = True
        except ExecutionError:
            pass  # the watchdog, not told "done", kills and removes it as it leaves
        finally:
            await _end_watchdog(watchdog, ctl, keep=removed)


async def _end_watchdog(proc: Supervisor, ctl: Control, *, keep: bool) -> None:
    """``keep``: the container is gone or is ours to remove; else the watchdog removes it."""
    if keep:
        ctl.send("done")
    ctl.close()
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


def _config(
    name: str,
    env: Mapping[str, str],
    user: str,
    labels: Mapping[str, str],
    *,
    cpu: float | None = None,
    memory_bytes: int | None = None,
) -> dict[str, Any]:
    for key, value in env.items():
        # "K=V" strings carry any value exactly, but a name with '=' would split elsewhere
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ExecutionError(f"invalid environment variable {key[:100]!r} for a container")
    return {
        "name": name,
        "environment": [f"{k}={v}" for k, v in env.items()],
        "user": user,
        "stdin_open": True,  # with stdin attached, the API closes it when we half-close
        "labels": {**{f"lockstep.{k}": v for k, v in labels.items()}, MANAGED_LABEL: "1"},
        "host_config": {
            "nano_cpus": round(cpu * 1e9) if cpu is not None else None,
            "mem_limit": memory_bytes,
            "memswap_limit": memory_bytes,
        },
    }


def _create(api: APIClient, *, image_id: str, argv: list[str], config: dict[str, Any]) -> str:
    config = {**config, "host_config": api.create_host_config(**config["host_config"])}
    if not argv:  # the image's own command
        return str(api.create_container(image_id, **config)["Id"])
    return str(api.create_container(image_id, argv[1:], entrypoint=argv[:1], **config)["Id"])


def _attach(api: APIClient, cid: str) -> tuple[Any, str | None]:
    """The stdin/stdout/stderr socket, attached before the start so nothing is missed; or
    why the command cannot start."""
    params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
    sock, problem = refused(lambda: api.attach_socket(cid, params))
    if problem is None:
        _, problem = refused(lambda: api.start(cid))
    return sock, problem
