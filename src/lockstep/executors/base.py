"""The executor seam: what one step attempt needs from whatever runs it.

An executor runs a step attempt that the shared lifecycle (``executors.attempt``) has prepared
and reports how it ended; the lifecycle does everything every executor shares (the log, the
input and output contracts, the working copy, secrets' masking, outputs by reference,
artifacts, clean-up). A new executor is one module with a class satisfying ``Executor`` plus
one line in ``executors.registry`` under the name ``spec.step_kinds`` declares for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lockstep.engine.types import StepTask
from lockstep.executors.lease import Lease
from lockstep.executors.spawner import Spawner
from lockstep.net import OutboundPolicy
from lockstep.storage.logs import LogSink, LogWriter

if TYPE_CHECKING:
    from lockstep.executors.container_runtime import ContainerRuntime
    from lockstep.executors.stdout_result import StdoutCapture
    from lockstep.executors.workspace import WorkspaceManager


@dataclass(frozen=True)
class WorkerTools:
    """What the worker lends every attempt it runs."""

    worker: str  # the worker's identity, written into logs and results
    logs: LogSink
    workspaces: WorkspaceManager
    kill_grace_s: float = 5.0
    max_log_bytes: int | None = None
    containers: ContainerRuntime | None = None  # None: this worker runs no container
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)  # what http steps reach
    spawner: Spawner = "zygote"  # how each attempt's supervisor is started


@dataclass(frozen=True)
class Place:
    """Where an attempt of a workspace executor runs: its working copy, and the outputs file
    (and input file) in a private directory outside it."""

    workspace: Path
    outputs_file: Path
    input_file: Path | None  # None when the step takes no input


@dataclass(frozen=True)
class Attempt:
    """One attempt, prepared: the task (input already loaded and checked), its log, where it
    runs (None for an executor that needs no workspace), and its liveness signals."""

    task: StepTask
    tools: WorkerTools
    log: LogWriter
    place: Place | None = None
    #: called while the step runs, so the engine knows the worker is alive
    heartbeat: Callable[[], None] | None = None
    #: expires when the engine gave up on this attempt: the step must stop (None: unbounded)
    lease: Lease | None = None
    #: gets what the step prints on stdout, for a step whose result it is (None: not wanted)
    stdout: StdoutCapture | None = None


@dataclass(frozen=True)
class Outcome:
    """How an executor's run ended; never a decision about the run (the engine decides)."""

    ok: bool
    error: str | None = None  # one line for a user; None when ok
    exit_code: int | None = None
    timed_out: bool = False
    #: the step's outputs; None: the lifecycle reads them from the place's outputs file
    outputs: dict[str, Any] | None = None
    #: the outputs are the input handed on unchanged (their contract check says so)
    handed_on: bool = False
    image_digest: str | None = None  # the exact image a container ran
    summary: str | None = None  # one line for the log once it ended, e.g. "exit code 0 in 1.2s"


class Executor(Protocol):
    """Runs one prepared attempt. Never raises for what the step did (a failing step is an
    ``Outcome`` with ``ok=False``); raises ``LockstepError`` when the step cannot run at all,
    and ``CancelledError`` after it stopped whatever it started."""

    #: True: the attempt gets a working copy, an outputs file and artifacts (a process, a
    #: container); False: the input is its only material (a call to a service, noop)
    needs_workspace: bool

    async def run(self, attempt: Attempt) -> Outcome: ...
