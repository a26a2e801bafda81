"""The server's sender of notifications: takes due deliveries from the outbox, sends each
through its channel, and records the outcome (delivered; pending again after a backoff that
doubles; failed once attempts are spent or the address is refused).

It never touches a run: a channel that is down or slow delays only its own deliveries. Each
row is claimed by a conditional UPDATE with a lease, so two servers on one database never
send a row at the same time; a server that dies mid-send leaves its claim to expire, and the
row is sent again then (at least once, as any outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from lockstep.clock import format_ts
from lockstep.errors import LockstepError, NotFound
from lockstep.net.addresses import OutboundPolicy
from lockstep.notify import DeliveryFailed, channel_for
from lockstep.notify.message import render
from lockstep.secrets.crypto import SecretBox
from lockstep.secrets.masking import Masker
from lockstep.settings import Settings
from lockstep.spec.hints import one_line, visible
from lockstep.storage import notifications as store
from lockstep.storage import secrets as secret_store
from lockstep.storage.database import Database, SQLAlchemyError
from lockstep.storage.logs import LogStore
from lockstep.storage.notifications import ChannelInfo, DeliveryInfo

log = logging.getLogger(__name__)
#: how long a claim holds: longer than any one send (HTTP 15 s, SMTP 30 s, plus resolving)
LEASE = timedelta(minutes=2)
#: deliveries taken per pass
BATCH = 20
#: a retry waits at most this long, however many attempts came before
MAX_BACKOFF_S = 3600.0
SEND_TIMEOUT_S = 90.0


class Sender:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        logs: LogStore,
        policy: OutboundPolicy,
        settings: Settings,
    ) -> None:
        self._db, self._box, self._logs, self._policy = db, box, logs, policy
        self._settings = settings
        self.me = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        #: the server's own URL: links go to its API when no LOCKSTEP_PUBLIC_URL is set
        self.api_url = ""

    async def run_forever(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except (LockstepError, SQLAlchemyError) as exc:  # the database away: next pass
                log.warning("notify.pass_failed", extra={"error": str(exc)})
            await asyncio.sleep(self._settings.notify_interval)

    async def deliver_due(self) -> int:
        """One pass: claim what is due and send it; returns how many were attempted."""
        now = datetime.now(UTC)
        claimed = await self._db.call(
            lambda s: store.claim(s, self.me, format_ts(now), format_ts(now + LEASE), BATCH)
        )
        for delivery in claimed:
            await self._deliver(delivery)
        return len(claimed)

    async def _deliver(self, d: DeliveryInfo) -> None:
        try:
            channel, values = await self._db.call(lambda s: self._load(s, d))
        except NotFound:
            await self._finish(d, f"channel '{d.channel}' does not exist (removed?)", retry=False)
            return
        masker = Masker(values.values())
        subject = dict(d.subject)
        key = subject.pop("_log_key", None)
        if key:
            with contextlib.suppress(LockstepError, OSError):
                tail = await asyncio.to_thread(self._logs.tail, str(key), "err", 1)
                if tail:
                    subject["stderr"] = tail[-1]
        message = render(d.event, subject, self._link(d), masker)
        try:
            kind = channel_for(channel.kind)
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await kind.send(channel.settings, message, values, self._policy)
        except DeliveryFailed as exc:
            await self._finish(d, visible(masker.mask(one_line(exc.reason, 500))), exc.retry)
        except TimeoutError:
            await self._finish(d, f"no answer within {SEND_TIMEOUT_S:g}s", retry=True)
        except LockstepError as exc:
            await self._finish(d, str(exc), retry=False)
        else:
            await self._finish(d, None, retry=False)

    def _load(self, s: Session, d: DeliveryInfo) -> tuple[ChannelInfo, dict[str, str]]:
        """The channel, and every secret value of the project: the channel's own to send
        with, all of them to mask (a message never carries one, whichever step printed it)."""
        channel = store.get_channel(s, d.project, d.channel)
        names = [i.name for i in secret_store.list_secrets(s, d.project)]
        return channel, secret_store.resolve(s, self._box, d.project, names)

    def _link(self, d: DeliveryInfo) -> str | None:
        run_id = d.subject.get("run_id")
        if not run_id:
            return None
        if self._settings.public_url:
            return f"{self._settings.public_url.rstrip('/')}/runs/{run_id}"
        if self.api_url:
            return f"{self.api_url}/api/v1/projects/{d.project}/runs/{run_id}"
        return None

    async def _finish(self, d: DeliveryInfo, error: str | None, retry: bool) -> None:
        retry_at = None
        if error is not None and retry and d.attempts + 1 < self._settings.notify_max_attempts:
            wait = min(self._settings.notify_backoff * 2**d.attempts, MAX_BACKOFF_S)
            retry_at = format_ts(datetime.now(UTC) + timedelta(seconds=wait))
        await self._db.call(
            lambda s: store.finish(s, d.id, self.me, error=error, retry_at=retry_at)
        )
        outcome = "delivered" if error is None else ("retry" if retry_at else "failed")
        log.info(
            "notify.delivery",
            extra={"delivery": d.id, "channel": d.channel, "event": d.event, "outcome": outcome},
        )


__all__ = ["Sender"]
