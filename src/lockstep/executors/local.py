"""The ``shell`` executor: a step as a local process in its attempt's working copy."""

from __future__ import annotations

import os
from pathlib import Path

from lockstep.engine.types import StepTask
from lockstep.executors.base import Attempt, Outcome
from lockstep.executors.process import ProcessOutcome, run_process

#: the only variables a step inherits from the worker; everything else comes from the task
INHERITED_ENV = ("PATH", "HOME", "LANG")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def lockstep_env(task: StepTask) -> dict[str, str]:
    """What every step is told about its attempt, whatever runs it."""
    return {
        "LOCKSTEP_RUN_ID": task.run_id,
        "LOCKSTEP_STEP_ID": task.step_id,
        "LOCKSTEP_ATTEMPT": str(task.attempt),
    }


def step_env(task: StepTask, *, workspace: Path, outputs: Path) -> dict[str, str]:
    """The step's complete environment: a few worker basics, the task's, then lockstep's own
    (last, so a task cannot point ``LOCKSTEP_OUTPUTS`` somewhere else)."""
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", _DEFAULT_PATH)
    env.update(task.env)
    env.update(lockstep_env(task))
    env.update({"LOCKSTEP_OUTPUTS": str(outputs), "LOCKSTEP_WORKSPACE": str(workspace)})
    return env


def summary(outcome: ProcessOutcome) -> str:
    """How a process (or container) ended, in one line for the step's log."""
    if outcome.error is None:
        return f"exit code 0 in {outcome.duration_s:.1f}s"
    if outcome.exit_code is not None and not outcome.timed_out and outcome.signal is None:
        return f"exit code {outcome.exit_code} in {outcome.duration_s:.1f}s"
    return f"{outcome.error} ({outcome.duration_s:.1f}s)"


def outcome_of(ended: ProcessOutcome, image_digest: str | None = None) -> Outcome:
    """A process's (or container's) end as the seam's ``Outcome``; outputs are in its file."""
    return Outcome(
        ok=ended.exit_code == 0 and not ended.timed_out,
        error=ended.error,
        exit_code=ended.exit_code,
        timed_out=ended.timed_out,
        image_digest=image_digest,
        summary=summary(ended),
    )


class ProcessExecutor:
    """Runs the task's argv on the worker, in the working copy, with exactly its environment."""

    needs_workspace = True

    async def run(self, attempt: Attempt) -> Outcome:
        task, place, tools = attempt.task, attempt.place, attempt.tools
        assert place is not None  # needs_workspace
        env = step_env(task, workspace=place.workspace, outputs=place.outputs_file)
        if place.input_file is not None:
            env["LOCKSTEP_INPUT"] = str(place.input_file)
        ended = await run_process(
            task.argv,
            cwd=place.workspace,
            env=env,
            timeout_s=task.timeout_s,
            log=attempt.log,
            heartbeat=attempt.heartbeat,
            kill_grace_s=tools.kill_grace_s,
            max_log_bytes=tools.max_log_bytes,
            lease=attempt.lease,
            capture=attempt.stdout,
            spawner=tools.spawner,
        )
        return outcome_of(ended)
