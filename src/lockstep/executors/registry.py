"""Every executor, registered under the name of the step kind it runs (``spec.step_kinds``).

A new executor is one module plus one line here; the worker dispatches through ``executor_for``
alone.
"""

from __future__ import annotations

from lockstep.engine.types import StepTask
from lockstep.errors import ExecutionError
from lockstep.executors.base import Executor
from lockstep.executors.container import ContainerExecutor
from lockstep.executors.http import HttpExecutor, NoopExecutor
from lockstep.executors.local import ProcessExecutor
from lockstep.spec.step_kinds import task_kind

EXECUTORS: dict[str, Executor] = {
    "shell": ProcessExecutor(),
    "container": ContainerExecutor(),
    "http": HttpExecutor(),
    "noop": NoopExecutor(),
}


def executor_for(task: StepTask) -> Executor:
    """The executor that runs ``task``; an ``ExecutionError`` for a name this worker does not
    know (a plan from a newer server)."""
    name = task_kind(task.executor, task.container is not None)
    try:
        return EXECUTORS[name]
    except KeyError:
        raise ExecutionError(
            f"step '{task.step_id}' needs the '{name}' executor, which this worker does not "
            "have; upgrade the worker"
        ) from None
