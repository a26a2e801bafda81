"""One deployment replica as a durable unit: a workflow that keeps one long-running,
heartbeating activity going on its pool's task queue (``docs/deployments.md``).

The controller starts one of these per desired replica and cancels it to stop the replica.
Being a workflow of its own (not an activity of the controller), a replica outlives the
controller's continue-as-new. When its worker dies, the heartbeat times out and Temporal hands
the activity to another worker of the pool (its retry, with backoff); the attempt number is the
replica's restart count. The data crossing Temporal lives here, imported by both sides.
"""

# No `from __future__ import annotations`: Temporal's converter reads these hints at runtime.
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

REPLICA_ACTIVITY = "lockstep.replica_run"


@dataclass(frozen=True)
class ReplicaTask:
    """What a pool worker needs to run one replica: the ``pipelines.replica`` spec (node,
    edges, broker, store; JSON text) and who it is."""

    project: str
    deployment: str
    node: str
    replica: str
    spec_json: str


@dataclass(frozen=True)
class ReplicaInput:
    task: ReplicaTask
    queue: str
    heartbeat_s: float


def replica_id(project: str, deployment: str, node: str, replica: str, digest: str) -> str:
    return f"deployment/{project}/{deployment}/{node}/{replica}/{digest}"


#: the replica workflow's type name, as the engine lists it
REPLICA_TYPE = "lockstep.DeploymentReplica"


@workflow.defn(name=REPLICA_TYPE)
class ReplicaWorkflow:
    @workflow.run
    async def run(self, args: ReplicaInput) -> None:
        await workflow.execute_activity(
            REPLICA_ACTIVITY,
            args.task,
            task_queue=args.queue,
            # a replica never finishes by itself: only a lost heartbeat or a cancel ends it
            start_to_close_timeout=timedelta(days=3650),
            heartbeat_timeout=timedelta(seconds=args.heartbeat_s),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                # a lost worker or engine: back within seconds once it can be (a program
                # that keeps crashing is the runner's crash loop, not retried here)
                maximum_interval=timedelta(seconds=10),
            ),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
