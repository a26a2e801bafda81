"""The attempt lifecycle every executor shares: one step attempt from its log's first line to
its ``StepResult``.

For every executor: open the log, check the input contract, run the executor, check the output
contract, mask nothing twice (secret values are masked by the worker's log sink). For an
executor that needs a workspace, also: load input values stored by reference, prepare the
working copy and place upstream artifacts, keep the outputs file in a private directory, store
big outputs by reference and the step's artifacts, and always clean up.

It reports what happened as a ``StepResult`` and never raises for anything the step did; only
cancellation propagates (after the executor stopped what it started).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from lockstep.clock import format_ts
from lockstep.engine.types import StepResult, StepTask
from lockstep.errors import LockstepError
from lockstep.executors import confined
from lockstep.executors.artifacts import place_artifacts, store_artifacts
from lockstep.executors.base import Attempt, Executor, Outcome, Place, WorkerTools
from lockstep.executors.lease import AttemptLost, Lease
from lockstep.executors.outputs import check_input, check_outputs, read_outputs
from lockstep.executors.process import beat_forever
from lockstep.executors.stdout_result import StdoutCapture, stdout_result, with_result
from lockstep.outputs_by_reference import externalize, internalize
from lockstep.spec.contracts import OutputError
from lockstep.spec.hints import one_line
from lockstep.storage.logs import LogStream, LogWriter

logger = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """An unexpected exception in one line: its type and its first 300 characters."""
    text = one_line(str(exc), 300)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


async def run_attempt(
    task: StepTask,
    executor: Executor,
    tools: WorkerTools,
    *,
    heartbeat: Callable[[], None] | None = None,
    lease: Lease | None = None,
) -> StepResult:
    """Run one attempt of ``task`` with ``executor`` and report its result."""
    if executor.needs_workspace:
        return await _in_workspace(task, executor, tools, heartbeat, lease)
    return await _direct(task, executor, tools)


async def _direct(task: StepTask, executor: Executor, tools: WorkerTools) -> StepResult:
    """An attempt without a workspace: its few log lines are written at once at the end."""
    started_at = format_ts()
    log = _Buffered(tools.logs.writer(task.log_key))
    log.write("sys", f"attempt {task.attempt} on worker {tools.worker}")
    try:
        check_input(task.input, task.input_schema, step=task.step_id)
        outcome = await executor.run(Attempt(task=task, tools=tools, log=log))
        outputs = outcome.outputs or {}
        if outcome.ok:
            check_outputs(
                outputs, task.outputs_schema, step=task.step_id, handed_on=outcome.handed_on
            )
    except LockstepError as exc:
        log.write("sys", str(exc))
        return _failed(str(exc), tools.worker, started_at)
    finally:
        log.close()
    if not outcome.ok:
        return _failed(outcome.error or "failed", tools.worker, started_at)
    return StepResult(
        ok=True, outputs=outputs, worker=tools.worker, started_at=started_at,
        finished_at=format_ts(),
    )  # fmt: skip


async def _in_workspace(
    task: StepTask,
    executor: Executor,
    tools: WorkerTools,
    heartbeat: Callable[[], None] | None,
    lease: Lease | None,
) -> StepResult:
    started_at = format_ts()
    worker, workspaces = tools.worker, tools.workspaces
    log: LogWriter | None = None
    attempt_dir: Path | None = None
    private: Path | None = None
    try:
        log = tools.logs.writer(task.log_key)
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
        await asyncio.to_thread(_private_files, private, task.input)
        place = Place(
            workspace=attempt_dir,
            outputs_file=private / "outputs",
            input_file=private / "input.json" if task.input is not None else None,
        )
        stdout = StdoutCapture() if task.result is not None else None
        outcome = await executor.run(
            Attempt(task, tools, log, place=place, heartbeat=heartbeat, lease=lease, stdout=stdout)
        )
        if outcome.summary:
            log.write("sys", outcome.summary)
        if lease is not None and lease.expired():  # the engine has moved on: keep nothing
            raise AttemptLost(lease.reason())
        result = _result(task, outcome, place.outputs_file, log, worker, started_at, stdout)
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
        message = f"internal error: {describe(exc)}"
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


def _result(
    task: StepTask,
    outcome: Outcome,
    outputs_file: Path,
    log: LogWriter,
    worker: str,
    started_at: str,
    stdout: StdoutCapture | None = None,
) -> StepResult:
    ok, error = outcome.ok, outcome.error
    outputs: dict[str, Any] = {}
    if ok:
        try:
            if outcome.outputs is not None:
                outputs = outcome.outputs
            else:
                outputs = read_outputs(outputs_file, task.outputs_schema)
            if stdout is not None and task.result is not None:
                found = stdout_result(stdout, task.result, step=task.step_id)
                outputs = with_result(outputs, found, step=task.step_id)
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
        image_digest=outcome.image_digest,
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


class _Buffered:
    """A log writer that keeps its lines and writes them in one go when closed (a call to a
    service logs a few lines; one write each would cost more than the step)."""

    def __init__(self, inner: LogWriter) -> None:
        self._inner = inner
        self._lines: list[tuple[LogStream, str]] = []

    def write(self, stream: LogStream, text: str, ts: datetime | None = None) -> int:
        self._lines.append((stream, text))
        return len(text)

    def write_many(self, lines: Iterable[tuple[LogStream, str]], ts: datetime | None = None) -> int:
        more = list(lines)
        self._lines.extend(more)
        return sum(len(text) for _, text in more)

    def write_text(self, stream: LogStream, text: str, ts: datetime | None = None) -> int:
        return self.write_many((stream, line) for line in text.splitlines())

    def close(self) -> None:
        try:
            self._inner.write_many(self._lines)
        finally:
            self._inner.close()
