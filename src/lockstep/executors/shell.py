"""The shell executor: one step attempt as a local process in a private working copy.

It reports what happened as a ``StepResult`` and never raises for anything the step did; only
cancellation propagates (after the step's process group has been killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lockstep.clock import format_ts
from lockstep.engine.types import StepResult, StepTask
from lockstep.errors import ExecutionError, LockstepError
from lockstep.executors import confined
from lockstep.executors.artifacts import place_artifacts, store_artifacts
from lockstep.executors.container import (
    OUTPUTS_DIR,
    ContainerOutcome,
    ContainerRuntime,
    run_container,
)
from lockstep.executors.lease import AttemptLost, Lease
from lockstep.executors.outputs import check_input, check_outputs, read_outputs
from lockstep.executors.process import ProcessOutcome, beat_forever, run_process
from lockstep.executors.workspace import WorkspaceManager
from lockstep.outputs_by_reference import externalize, internalize
from lockstep.spec.contracts import OutputError
from lockstep.storage.logs import LogSink, LogWriter

logger = logging.getLogger(__name__)

#: the only variables a step inherits from the worker; everything else comes from the task
INHERITED_ENV = ("PATH", "HOME", "LANG")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def step_env(task: StepTask, *, workspace: Path, outputs: Path) -> dict[str, str]:
    """The step's complete environment: a few worker basics, the task's, then lockstep's own
    (last, so a task cannot point ``LOCKSTEP_OUTPUTS`` somewhere else)."""
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", _DEFAULT_PATH)
    env.update(task.env)
    env.update(_lockstep_env(task))
    env.update({"LOCKSTEP_OUTPUTS": str(outputs), "LOCKSTEP_WORKSPACE": str(workspace)})
    return env


def _lockstep_env(task: StepTask) -> dict[str, str]:
    return {
        "LOCKSTEP_RUN_ID": task.run_id,
        "LOCKSTEP_STEP_ID": task.step_id,
        "LOCKSTEP_ATTEMPT": str(task.attempt),
    }


def worker_host_pid() -> tuple[str, str]:
    """Where this worker process lives: its containers carry it, so a restarted worker can
    find and remove what an earlier life of it left behind."""
    return socket.gethostname(), str(os.getpid())


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _summary(outcome: ProcessOutcome) -> str:
    if outcome.error is None:
        return f"exit code 0 in {outcome.duration_s:.1f}s"
    if outcome.exit_code is not None and not outcome.timed_out and outcome.signal is None:
        return f"exit code {outcome.exit_code} in {outcome.duration_s:.1f}s"
    return f"{outcome.error} ({outcome.duration_s:.1f}s)"


@contextlib.asynccontextmanager
async def _beating(heartbeat: Callable[[], None] | None) -> AsyncIterator[None]:
    """Heartbeat while the body runs: checking out a repository or storing a gigabyte of
    artifacts may take longer than the heartbeat timeout, and the worker is not lost."""
    if heartbeat is None:
        yield
        return

    beats = asyncio.create_task(beat_forever(heartbeat, 1.0))
    try:
        yield
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats


async def execute_step(
    task: StepTask,
    *,
    workspaces: WorkspaceManager,
    logs: LogSink,
    worker: str,
    heartbeat: Callable[[], None] | None = None,
    kill_grace_s: float = 5.0,
    max_log_bytes: int | None = None,
    containers: ContainerRuntime | None = None,
    lease: Lease | None = None,
) -> StepResult:
    """Run one attempt of ``task`` (a local process, or a container when it has an image)
    and report its result."""
    started_at = format_ts()
    log: LogWriter | None = None
    attempt_dir: Path | None = None
    private: Path | None = None
    try:
        log = logs.writer(task.log_key)
        log.write("sys", f"attempt {task.attempt} on worker {worker}")
        if task.input is not None:  # values handed on by reference, in full
            task = replace(
                task,
                input=await asyncio.to_thread(
                    internalize, task.input, workspaces.blobs, task.project
                ),
            )
        check_input(task.input, task.input_schema, step=task.step_id)
        async with _beating(heartbeat):
            attempt_dir = await workspaces.prepare(
                task.workspace,
                f"{task.step_id}-{task.attempt}",
                project=task.project,
                run_id=task.run_id,
            )
            await place_artifacts(workspaces.blobs, attempt_dir, task.artifact_inputs)
        # Outputs live outside the workspace so the step's own files can never collide with
        # them and a snapshot of the workspace never captures them.
        private = Path(tempfile.mkdtemp(prefix=".outputs-", dir=attempt_dir.parent))
        outputs_file = private / "outputs"
        await asyncio.to_thread(_private_files, private, task.input)
        outcome: ProcessOutcome
        if task.container is not None:
            outcome = await _in_container(
                task, containers, attempt_dir, outputs_file, log, worker, heartbeat,
                kill_grace_s, max_log_bytes, lease,
            )  # fmt: skip
        else:
            env = step_env(task, workspace=attempt_dir, outputs=outputs_file)
            if task.input is not None:
                env["LOCKSTEP_INPUT"] = str(private / "input.json")
            outcome = await run_process(
                task.argv,
                cwd=attempt_dir,
                env=env,
                timeout_s=task.timeout_s,
                log=log,
                heartbeat=heartbeat,
                kill_grace_s=kill_grace_s,
                max_log_bytes=max_log_bytes,
                lease=lease,
            )
        log.write("sys", _summary(outcome))
        if lease is not None and lease.expired():  # the engine has moved on: keep nothing
            raise AttemptLost(lease.reason())
        result = _result(task, outcome, outputs_file, log, worker, started_at)
        if result.ok and result.outputs:
            where = f"outputs/{task.project}/{task.run_id}/{task.step_id}/{task.attempt}"
            outputs = await asyncio.to_thread(
                externalize, result.outputs, workspaces.blobs, where, scratch=private
            )
            result = replace(result, outputs=outputs)
        if result.ok and task.artifacts:
            prefix = f"artifacts/{task.project}/{task.run_id}/{task.step_id}/{task.attempt}"
            async with _beating(heartbeat):
                refs = await store_artifacts(
                    workspaces.blobs, attempt_dir, step=task.step_id, patterns=task.artifacts,
                    prefix=prefix,
                )  # fmt: skip
            log.write("sys", f"stored {len(refs)} artifact(s): {', '.join(r.name for r in refs)}")
            result = replace(result, artifacts=refs)
        return result
    except asyncio.CancelledError:
        # a worker woken from a freeze may hear the engine's "gone" before its own clock
        _note(log, lease.reason() if lease is not None and lease.expired() else "cancelled")
        raise
    except LockstepError as exc:
        _note(log, str(exc))
        return _failed(str(exc), worker, started_at)
    except Exception as exc:
        # Our bug or the machine's (disk full, permissions): report it in one line and keep
        # the traceback for the worker's own log, never in the result.
        logger.exception("step.internal_error", extra={"run_id": task.run_id, "step": task.step_id})
        message = f"internal error: {_one_line(exc)}"
        _note(log, message)
        return _failed(message, worker, started_at)
    finally:
        if log is not None:
            log.close()
        if private is not None:
            await asyncio.to_thread(shutil.rmtree, private, ignore_errors=True)
        if attempt_dir is not None:
            await workspaces.cleanup(attempt_dir)


def _private_files(private: Path, data: Any) -> None:
    """The empty outputs file and the input file, created (never opened through a link) in
    the attempt's private directory, which the step may write to as well."""
    root = os.open(private, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.close(confined.create_file(root, "outputs", 0o600))
        if data is not None:
            with os.fdopen(confined.create_file(root, "input.json", 0o644), "w") as f:
                f.write(json.dumps(data, ensure_ascii=False))
    finally:
        os.close(root)


async def _in_container(
    task: StepTask,
    containers: ContainerRuntime | None,
    workspace: Path,
    outputs_file: Path,
    log: LogWriter,
    worker: str,
    heartbeat: Callable[[], None] | None,
    kill_grace_s: float,
    max_log_bytes: int | None,
    lease: Lease | None,
) -> ContainerOutcome:
    if containers is None:
        raise ExecutionError(
            f"step '{task.step_id}' needs a container runtime and worker {worker} has none; "
            "set LOCKSTEP_CONTAINER_HOST (or DOCKER_HOST) on the worker"
        )
    box = task.container
    assert box is not None
    # the image's own PATH and HOME stay: only the task's variables and lockstep's go in
    env = {**task.env, **_lockstep_env(task)}
    if task.input is not None:
        env["LOCKSTEP_INPUT"] = f"{OUTPUTS_DIR}/input.json"
    host, pid = worker_host_pid()
    return await run_container(
        task.argv,
        runtime=containers,
        image=box.image,
        workspace=workspace,
        outputs=outputs_file,
        env=env,
        timeout_s=task.timeout_s,
        log=log,
        heartbeat=heartbeat,
        kill_grace_s=kill_grace_s,
        max_log_bytes=max_log_bytes,
        cpu=box.cpu,
        memory_bytes=box.memory_bytes,
        labels={
            "run": task.run_id,
            "step": task.step_id,
            "attempt": str(task.attempt),
            "worker": worker,
            "host": host,
            "pid": pid,
        },
        pull=box.pull,
        network=box.network,
        user=box.user,
        lease=lease,
    )


def _result(
    task: StepTask,
    outcome: ProcessOutcome,
    outputs_file: Path,
    log: LogWriter,
    worker: str,
    started_at: str,
) -> StepResult:
    ok = outcome.exit_code == 0 and not outcome.timed_out
    error = outcome.error
    outputs: dict[str, Any] = {}
    if ok:
        try:
            outputs = read_outputs(outputs_file, task.outputs_schema)
            check_outputs(outputs, task.outputs_schema, step=task.step_id)
        except OutputError as exc:
            log.write("sys", str(exc))
            ok, error, outputs = False, str(exc), {}
    return StepResult(
        ok=ok,
        exit_code=outcome.exit_code,
        error=error,
        outputs=outputs,
        worker=worker,
        started_at=started_at,
        finished_at=format_ts(),
        timed_out=outcome.timed_out,
        image_digest=getattr(outcome, "image_digest", None),
    )


def _failed(error: str, worker: str, started_at: str) -> StepResult:
    return StepResult(
        ok=False, error=error, worker=worker, started_at=started_at, finished_at=format_ts()
    )


def _note(log: LogWriter | None, text: str) -> None:
    if log is None:
        return
    # Best effort: the result carries the message even when the log cannot take it.
    with contextlib.suppress(OSError, RuntimeError):
        log.write("sys", text)
