"""An attempt's lease, kept alive by heartbeats the engine acknowledged (see executors.lease)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.api.common.v1 import Payloads
from temporalio.api.workflowservice.v1 import RecordActivityTaskHeartbeatRequest
from temporalio.service import RPCError, RPCStatusCode

from lockstep.executors.lease import Lease, lease_ttl, renew_every

logger = logging.getLogger(__name__)

#: an attempt older than this when it reaches the activity (by the engine's start time) is
#: confirmed with the engine before its step starts: a frozen worker's open poll may have
#: taken it long ago, and the engine may have given up on it since
CONFIRM_AFTER_S = 1.0
_GONE = (
    "attempt abandoned: the engine gave up on it (no heartbeat in time) and may run the step "
    "again elsewhere; the step was stopped or never started"
)


class _Renewer:
    """Heartbeats sent straight to the engine, each awaiting its answer.

    The SDK's ``activity.heartbeat`` only queues a beat (sent later, throttled) and never says
    whether one arrived, so it cannot tell a worker that is cut off.
    """

    def __init__(self, lease: Lease, identity: str, every_s: float) -> None:
        self._lease = lease
        self._every_s = every_s
        self._info = activity.info()
        self._client = activity.client()
        self._identity = identity
        self._request: RecordActivityTaskHeartbeatRequest | None = None

    async def once(self) -> None:
        if self._request is None:
            # the worker's name rides on each heartbeat, so a lost attempt still says where
            encoded = await self._client.data_converter.encode([self._identity])
            self._request = RecordActivityTaskHeartbeatRequest(
                task_token=self._info.task_token,
                details=Payloads(payloads=encoded),
                identity=self._identity,
                namespace=self._client.namespace,
            )
        sent = time.monotonic()
        try:
            await self._client.workflow_service.record_activity_task_heartbeat(
                self._request, timeout=timedelta(seconds=max(self._every_s, 1.0))
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:  # timed out, or finished elsewhere
                self._lease.lose(_GONE)
            else:
                logger.warning("step.heartbeat_unacknowledged", extra={"error": exc.message})
            return
        self._lease.renewed(sent)

    async def forever(self) -> None:
        while self._lease.lost is None:
            await asyncio.sleep(self._every_s)
            await self.once()


@contextlib.asynccontextmanager
async def leased(identity: str) -> AsyncIterator[Lease]:
    """The current activity's lease, renewed while the body runs. Unbounded without a
    heartbeat timeout: then nothing would start the step elsewhere."""
    info = activity.info()
    if info.heartbeat_timeout is None:
        yield Lease.unbounded()
        return
    seconds = info.heartbeat_timeout.total_seconds()
    lease = Lease(lease_ttl(seconds))
    renewer = _Renewer(lease, identity, renew_every(seconds))
    if (datetime.now(UTC) - info.started_time).total_seconds() > CONFIRM_AFTER_S:
        await renewer.once()  # a stale attempt must not start its step at all
    renewing = asyncio.create_task(renewer.forever())
    try:
        yield lease
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
