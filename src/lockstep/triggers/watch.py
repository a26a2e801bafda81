"""The server's watch over its triggers, every round: fires a crash left accepted are handed
to the dispatcher again (a webhook answered 202, then the server died), and each schedule's
dropped fire times (the engine away longer than ``catchup_window``) are recorded and told
(``schedule.missed``). A round that cannot reach the engine or the database waits for the next.
"""

from __future__ import annotations

import asyncio
import logging
import time

from lockstep.errors import LockstepError
from lockstep.services.triggers import TriggerService
from lockstep.triggers.dispatch import Dispatcher

log = logging.getLogger(__name__)

#: a schedule's missed fire times cost the engine one describe per schedule: asked every round
#: while the server starts (when an outage's catch-up is decided), then at most this often
MISSED_EVERY = 60.0
STARTING_FOR = 120.0


class TriggerWatch:
    def __init__(self, triggers: TriggerService, dispatcher: Dispatcher) -> None:
        self._triggers = triggers
        self._dispatcher = dispatcher
        self._started = time.monotonic()
        self._missed_at: float | None = None

    def _missed_due(self) -> bool:
        now = time.monotonic()
        if now - self._started < STARTING_FOR or self._missed_at is None:
            return True
        return now - self._missed_at >= MISSED_EVERY

    async def once(self, *, starting: bool = False) -> int:
        """One round; returns how many fires it decided or recorded. The first round, as the
        server starts, takes every accepted fire: none of them is being handled by it yet."""
        done = await self._dispatcher.sweep(0.0 if starting else None)
        if not self._missed_due():
            return done
        self._missed_at = time.monotonic()
        for registered in await self._triggers.every():
            if registered.kind != "schedule":
                continue
            try:
                if await self._triggers.check_missed(registered):
                    done += 1
                    log.warning(
                        "trigger.schedule_missed",
                        extra={"trigger": registered.trigger, "definition": registered.definition},
                    )
            except LockstepError as exc:
                log.warning("trigger.missed_unknown", extra={"error": str(exc)})
        return done

    async def run_forever(self, every: float) -> None:
        starting = True
        while True:
            try:
                await self.once(starting=starting)
                starting = False
            except Exception:
                log.exception("trigger.watch_failed")
            await asyncio.sleep(every)
