"""The durable controller of one deployment: a Temporal workflow that, round after round,
observes desired against actual and records it (``docs/deployments.md``, "The reconciler").

One per deployment (workflow id ``deployment/<project>/<name>``), on the control plane's
deployments queue. A deploy, rollback, pause, resume or delete signals it to look again at
once; otherwise it looks every ``ROUND`` (``QUICK_ROUND`` for a while after a change). It
continues as new after ``ROUNDS`` rounds, so its history stays bounded, and ends when the
deployment is deleted. Each round's local activity converges the replicas (started, stopped,
drift judged: ``services/replica_control``) and records what it saw.
"""

# No `from __future__ import annotations`: Temporal's converter reads these hints at runtime.
import contextlib
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

OBSERVE_ACTIVITY = "lockstep.deployment_observe"
SIGNAL = "desired_changed"
#: how often the controller looks without being told
ROUND = timedelta(seconds=5)
#: after a change (and when it starts) it looks this often for ``SETTLE_ROUNDS`` rounds, so
#: replicas starting or stopping are seen running or gone within a second, not a round
QUICK_ROUND = timedelta(seconds=1)
SETTLE_ROUNDS = 20
#: rounds per workflow run before continue-as-new
ROUNDS = 500


@dataclass(frozen=True)
class ControllerInput:
    project: str
    name: str


def controller_id(project: str, name: str) -> str:
    return f"deployment/{project}/{name}"


@workflow.defn(name="lockstep.Deployment")
class DeploymentController:
    def __init__(self) -> None:
        self._told = False
        self._settling = SETTLE_ROUNDS

    @workflow.signal(name=SIGNAL)
    def desired_changed(self) -> None:
        self._told = True
        self._settling = SETTLE_ROUNDS

    @workflow.run
    async def run(self, args: ControllerInput) -> None:
        for _ in range(ROUNDS):
            self._told = False  # a signal during the observation makes the next round at once
            there: bool = await workflow.execute_local_activity(
                OBSERVE_ACTIVITY,
                args,
                result_type=bool,
                start_to_close_timeout=timedelta(seconds=30),
            )
            if not there:
                return  # deleted
            pause = QUICK_ROUND if self._settling > 0 else ROUND
            self._settling -= 1
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._told, timeout=pause)
        workflow.continue_as_new(args)
