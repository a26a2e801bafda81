"""How the server reaches the deployments' controllers: start one (or tell the running one to
look again) with a signal-with-start, and the local activity each round runs."""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from lockstep.deployments.controller import (
    OBSERVE_ACTIVITY,
    SIGNAL,
    ControllerInput,
    DeploymentController,
    controller_id,
)
from lockstep.services.deployments import DeploymentService
from lockstep.services.replica_control import ReplicaControl

log = logging.getLogger(__name__)


def deployments_queue(control_queue: str) -> str:
    """The controllers' task queue (a pool name cannot hold a '.', so no pool's queue)."""
    return f"{control_queue}.deployments"


class DeploymentControl:
    def __init__(
        self,
        client: Client,
        queue: str,
        service: DeploymentService,
        replicas: ReplicaControl | None = None,
    ) -> None:
        self._client = client
        self._queue = queue
        self._service = service
        self._replicas = replicas

    async def poke(self, project: str, name: str) -> None:
        """Start the deployment's controller, or signal the running one to look now."""
        await self._client.start_workflow(
            DeploymentController.run,
            ControllerInput(project, name),
            id=controller_id(project, name),
            task_queue=self._queue,
            start_signal=SIGNAL,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )

    async def reconcile(self) -> None:
        """At the server's start: every deployment has its controller (a deploy recorded while
        no server ran, or a controller lost with the engine's data, is taken up now)."""
        for project, name in await self._service.live_names():
            try:
                await self.poke(project, name)
            except Exception:
                log.exception("deployment.controller_start_failed", extra={"deployment": name})

    @activity.defn(name=OBSERVE_ACTIVITY)
    async def observe(self, args: ControllerInput) -> bool:
        return await self._service.observe(args.project, args.name, self._replicas)
