"""Keeps one replica's program running: an exit is followed by a restart after a growing
delay, and a program that keeps exiting soon after it starts is a crash loop: the replica is
then ``degraded`` and left stopped for the caller (the reconciler) to report. Never a busy
loop: every restart waits at least ``first_delay_s``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lockstep.pipelines.process import Exit
from lockstep.pipelines.runner import NodeRunner, ReplicaState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 60.0
    #: a run this long counts as healthy: the next failure starts the count and delay anew
    healthy_after_s: float = 30.0
    #: this many exits in a row, each sooner than ``healthy_after_s``, make a crash loop
    max_quick_exits: int = 5


async def keep_running(
    runner: NodeRunner,
    policy: RestartPolicy = RestartPolicy(),
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Exit:
    """Run ``runner``'s program until ``runner.stop()`` or a crash loop; the last exit."""
    quick, delay = 0, policy.first_delay_s
    while True:
        exit_ = await runner.run_once()
        if runner.stopping:
            runner.counters.state = ReplicaState.STOPPED
            return exit_
        if exit_.duration_s >= policy.healthy_after_s:
            quick, delay = 0, policy.first_delay_s
        quick += 1
        if quick >= policy.max_quick_exits:
            runner.counters.state = ReplicaState.DEGRADED
            logger.warning(
                "pipeline.replica.degraded",
                extra={"node": runner.node.name, "replica": runner.replica, "exit": exit_.reason},
            )
            return exit_
        runner.counters.state = ReplicaState.BACKOFF
        await sleep(delay)
        if runner.stopping:
            runner.counters.state = ReplicaState.STOPPED
            return exit_
        delay = min(delay * 2, policy.max_delay_s)
        runner.counters.restarts += 1
