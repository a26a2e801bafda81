"""The replica activity a pool worker serves: one deployment replica, run as its own process
(``python -m lockstep.pipelines.replica``) until the activity is cancelled, its counters sent
on every heartbeat (``docs/deployments.md``, "The reconciler").

The process dies with the worker (``--pdeathsig``): a worker killed outright leaves no replica
behind, its heartbeats stop, and the controller's replica is started on another worker.

The nodes' secrets are resolved here, as a step's are (``worker.activities``): only their names
cross Temporal; their values go to the replica process on its stdin, never to a file, a
heartbeat or a log (the replica masks them in what it keeps of its programs' logs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lockstep.deployments.replica_workflow import REPLICA_ACTIVITY, ReplicaTask
from lockstep.engine.interpreter import WORKER_SHUTDOWN
from lockstep.errors import LockstepError
from lockstep.executors.container import worker_host_pid
from lockstep.executors.container_runtime import ContainerRuntime

if TYPE_CHECKING:
    from lockstep.worker.activities import SecretResolver

#: how often the replica's status file is read and sent as a heartbeat
BEAT_S = 1.0
#: the longest the first heartbeat waits for the replica's program to run
FIRST_BEAT_S = 10.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class ReplicaActivities:
    def __init__(
        self,
        identity: str,
        work_root: Path,
        kill_grace_s: float,
        *,
        secrets: SecretResolver | None = None,
        containers: ContainerRuntime | None = None,
    ) -> None:
        self.running = 0  # replicas in progress: each takes a slot of the worker
        self._identity = identity
        self._root = work_root
        self._grace = kill_grace_s
        self._secrets = secrets
        self._containers = containers

    @activity.defn(name=REPLICA_ACTIVITY)
    async def run_replica(self, task: ReplicaTask) -> None:
        self.running += 1
        unit = activity.info().workflow_id or f"{task.deployment}/{task.node}/{task.replica}"
        where = self._root / _UNSAFE.sub("_", unit)
        try:
            await self._run(task, where, unit)
        finally:
            self.running -= 1
            shutil.rmtree(where, ignore_errors=True)

    async def _resolve(self, task: ReplicaTask, unit: str) -> dict[str, str]:
        spec = json.loads(task.spec_json)
        names = sorted({s for n in [spec["node"], *spec.get("also", [])] for s in n["secrets"]})
        if not names:
            return {}
        if self._secrets is None:
            raise ApplicationError(
                f"replica {task.node}/{task.replica} uses secrets but worker "
                f"{self._identity} cannot read them",
                type="ReplicaSecrets",
            )
        try:
            # the replica's workflow id stands where a step gives its run id
            return await self._secrets(task.project, names, unit)
        except LockstepError as exc:
            raise ApplicationError(str(exc), type="ReplicaSecrets") from None

    def _container(self) -> dict[str, Any] | None:
        if self._containers is None:
            return None
        host, pid = worker_host_pid()
        # the labels the worker's reaper looks for: a later life of it removes leftovers
        labels = {"worker": self._identity, "host": host, "pid": pid}
        runtime = self._containers
        return {"url": runtime.url, "user": runtime.default_user, "labels": labels}

    async def _run(self, task: ReplicaTask, where: Path, unit: str) -> None:
        values = await self._resolve(task, unit)
        status = _prepare(task, where, self._container())
        args = [sys.executable, "-m", "lockstep.pipelines.replica", str(where / "spec.json")]
        setpriv = shutil.which("setpriv")
        if setpriv is not None:  # the replica must not outlive this worker
            args = [setpriv, "--pdeathsig", "KILL", "--", *args]
        with (where / "replica.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.PIPE, stdout=log, stderr=log, cwd=where
            )
        assert proc.stdin is not None
        with contextlib.suppress(OSError):  # it died at once: said below, by its exit
            proc.stdin.write(json.dumps(values).encode())
            await proc.stdin.drain()
        proc.stdin.close()
        del values
        try:
            # the first heartbeat goes out at once (later ones are throttled): hold it until
            # the program runs, so the controller's next round sees it running — but never
            # past half the heartbeat timeout (a slow start on a loaded host was taken for a
            # lost replica, again and again)
            timeout = activity.info().heartbeat_timeout
            await _first_state(proc, status, timeout.total_seconds() / 2 if timeout else None)
            while True:
                seen = _read(status)
                activity.heartbeat({**seen, "worker": self._identity})
                if proc.returncode is not None and seen.get("state") == "degraded":
                    await _degraded(seen | {"worker": self._identity})
                if proc.returncode is not None:
                    reason = seen.get("last_exit") or f"exit code {proc.returncode}"
                    raise ApplicationError(
                        f"replica {task.node}/{task.replica} stopped: {reason}",
                        type="ReplicaExited",
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), timeout=BEAT_S)
        except asyncio.CancelledError:
            await _stop(proc, self._grace)
            if activity.is_worker_shutdown():
                # not the controller's stop: the replica is started again on a worker
                raise ApplicationError("worker shut down", type=WORKER_SHUTDOWN) from None
            raise
        finally:
            if proc.returncode is None:  # an error of ours: never leave it running
                await _stop(proc, 0)


async def _first_state(
    proc: asyncio.subprocess.Process, status: Path, at_most_s: float | None
) -> None:
    """Until the replica reports a state past ``starting``, exits, or ``FIRST_BEAT_S`` (or
    ``at_most_s``, when less) pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(FIRST_BEAT_S, at_most_s or FIRST_BEAT_S)
    while loop.time() < deadline and proc.returncode is None:
        if _read(status).get("state", "starting") != "starting":
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=0.05)


async def _degraded(seen: dict[str, Any]) -> None:
    """A crash loop: the program is not started again (no busy loop, not even through the
    activity's retries); the replica stays ``degraded``, said on every heartbeat, until the
    controller stops it (a deploy that changes the node, or a delete)."""
    while True:
        activity.heartbeat(seen)
        await asyncio.sleep(BEAT_S)


async def _stop(proc: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM (the replica stops its program gracefully), then SIGKILL after the grace."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout=grace_s + 5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _prepare(task: ReplicaTask, where: Path, container: dict[str, Any] | None) -> Path:
    """The replica's spec file in its own directory; the path its status will be written to."""
    where.mkdir(parents=True, exist_ok=True)
    status = where / "status.json"
    spec = {
        **json.loads(task.spec_json),
        "status": str(status),
        "replica": task.replica,
        "container": container,
    }
    (where / "spec.json").write_text(json.dumps(spec))
    return status


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
