"""Notifications: a project's channels and subscriptions, the delivery log, and ``emit`` (the
``Notifier`` API the rest of lockstep calls for events that are not run state changes; those
the recorder writes itself, in its own transaction). Delivering is ``notification_sender``'s."""

from __future__ import annotations

import builtins
from typing import Any, Protocol

from sqlalchemy.orm import Session

from lockstep.errors import InvalidRequest
from lockstep.net.addresses import OutboundPolicy
from lockstep.spec.notify_events import event_problem
from lockstep.storage import notifications as store
from lockstep.storage import secrets as secret_store
from lockstep.storage.database import Database
from lockstep.storage.notifications import ChannelInfo, DeliveryInfo, SubscriptionInfo

__all__ = [
    "ChannelInfo",
    "DeliveryInfo",
    "NotificationService",
    "Notifier",
    "SubscriptionInfo",
]
STATUSES = (store.PENDING, store.DELIVERED, store.FAILED)


class Notifier(Protocol):
    """What code that causes an event calls: ``await notifier.emit(project, event, subject)``
    (``subject``: ``run_id``, ``definition``, ``instance``, ``status``, ``step``… as the event
    has them). Inside a transaction of one's own, ``storage.notifications.enqueue`` writes the
    same rows in it."""

    async def emit(self, project: str, event: str, subject: dict[str, Any]) -> int: ...


class NotificationService:
    def __init__(self, db: Database, policy: OutboundPolicy) -> None:
        self._db = db
        self._policy = policy

    # -- channels

    async def add_channel(
        self, project: str, name: str, kind: str, settings: dict[str, Any], *, by: str | None
    ) -> ChannelInfo:
        """Save a channel; its settings are checked (URLs, secrets named, not given)."""
        from lockstep.notify import channel_for  # HTTP and SMTP clients: not for reads

        channel = channel_for(kind)
        checked = channel.check(settings, self._policy)
        needed = channel.secret_names(checked)

        def add(s: Session) -> ChannelInfo:
            known = {i.name for i in secret_store.list_secrets(s, project)}
            missing = [n for n in needed if n not in known]
            if missing:
                raise InvalidRequest(
                    f"{kind} channel '{name}' names secret {', '.join(missing)}, which is not set "
                    "in this project; set it with `lockstep secrets set NAME` first"
                )
            return store.add_channel(s, project, name, kind, checked, by)

        return await self._db.call(add)

    async def channels(self, project: str) -> builtins.list[ChannelInfo]:
        return await self._db.call(lambda s: store.list_channels(s, project))

    async def remove_channel(self, project: str, name: str) -> int:
        return await self._db.call(lambda s: store.remove_channel(s, project, name))

    # -- subscriptions

    async def subscribe(
        self,
        project: str,
        channel: str,
        events: builtins.list[str],
        *,
        definition: str | None = None,
        instance: str | None = None,
        status: str | None = None,
        by: str | None = None,
    ) -> SubscriptionInfo:
        if not events:
            raise InvalidRequest("name at least one event to subscribe to")
        for event in events:
            problem = event_problem(event)
            if problem is not None:
                raise InvalidRequest(problem)
        return await self._db.call(
            lambda s: store.subscribe(
                s,
                project,
                channel,
                sorted(set(events)),
                definition=definition,
                instance=instance,
                status=status,
                by=by,
            )
        )

    async def subscriptions(self, project: str) -> builtins.list[SubscriptionInfo]:
        return await self._db.call(lambda s: store.list_subscriptions(s, project))

    async def unsubscribe(self, project: str, subscription: str) -> None:
        await self._db.call(lambda s: store.unsubscribe(s, project, subscription))

    # -- events and the log

    async def emit(self, project: str, event: str, subject: dict[str, Any]) -> int:
        """Queue ``event`` about ``subject`` to every channel subscribed to it; returns how
        many deliveries were written. The sender delivers them; nothing here waits for it."""
        problem = event_problem(event)
        if problem is not None:
            raise ValueError(problem)  # a caller's bug, not a user's input
        return await self._db.call(lambda s: store.enqueue(s, project, event, subject))

    async def deliveries(
        self, project: str, *, limit: int = 50, status: str | None = None
    ) -> builtins.list[DeliveryInfo]:
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"unknown status '{status}'; statuses are {', '.join(STATUSES)}")
        return await self._db.call(
            lambda s: store.deliveries(s, project, limit=limit, status=status)
        )
