"""The notifications' tables as ORM rows: a project's channels, who subscribes to which
events, and the delivery log that is also the outbox (a row is written in the transaction of
the change it tells of, then a sender delivers it). Kept apart from ``rows.py``."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lockstep.storage.rows import Base


class ChannelRow(Base):
    __tablename__ = "notification_channels"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    #: the kind's settings; secrets only by name, never a value
    settings_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)


class SubscriptionRow(Base):
    __tablename__ = "notification_subscriptions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey("notification_channels.id"))
    events_json: Mapped[str] = mapped_column(Text)
    #: filters: None matches anything
    definition: Mapped[str | None] = mapped_column(String(255), nullable=True)
    instance: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)


class DeliveryRow(Base):
    """One message to one channel: pending until delivered, or failed (attempts spent, or a
    refusal that waiting cannot change). A sender claims a due row by a conditional UPDATE
    (``claimed_until``), so two servers never send one row twice at once."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        Index("ix_notification_deliveries_project", "project_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    channel: Mapped[str] = mapped_column(String(63))
    event: Mapped[str] = mapped_column(String(32))
    #: why it was sent: "subscription:<id>" or "workflow" (the run's own notify:)
    source: Mapped[str] = mapped_column(String(100))
    subject_json: Mapped[str] = mapped_column(Text)
    #: pending, delivered, failed
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[str] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[str] = mapped_column(String(32))
    delivered_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
