"""The triggers' tables as ORM rows: each definition's registered triggers, and every fire of
one (a schedule's time, a webhook delivery, a push's commit, an upstream run, a tag move) with
what became of it. Kept apart from ``rows.py`` (the run and registry tables) to keep both short.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lockstep.storage.rows import Base


class TriggerRow(Base):
    """A registered trigger: the one of ``trigger_id`` of a definition's version that $LIVE
    named last, and the Temporal Schedule made for it (a schedule's only: '' for the others)."""

    __tablename__ = "triggers"

    definition_id: Mapped[str] = mapped_column(ForeignKey("definitions.id"), primary_key=True)
    #: the id in the file, or ``<instance>/<id>`` for an instance's (no id or name has a '/')
    trigger_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    #: the instance whose ``triggers:`` registered it (None: the definition's file)
    instance: Mapped[str | None] = mapped_column(String(100), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    spec_json: Mapped[str] = mapped_column(Text)
    schedule_id: Mapped[str] = mapped_column(String(255))
    registered_at: Mapped[str] = mapped_column(String(32))
    #: a person's pause: it holds across versions until resumed (``enabled: false`` is the spec's)
    paused_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    paused_at: Mapped[str | None] = mapped_column(String(32), nullable=True)


class TriggerFireRow(Base):
    """One event a trigger received, once per ``fire_key`` (the delivery id, the commit, the
    upstream run…): the unique key is what makes a repeated delivery one run. Written before
    the event is acknowledged, then finished with the run it made or why it made none."""

    __tablename__ = "trigger_fires"
    __table_args__ = (
        UniqueConstraint("definition_id", "trigger_id", "fire_key"),
        Index(
            "ix_trigger_fires_trigger", "project_id", "definition_id", "trigger_id", "created_at"
        ),
        Index("ix_trigger_fires_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    definition_id: Mapped[str] = mapped_column(ForeignKey("definitions.id"))
    trigger_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    fire_key: Mapped[str] = mapped_column(String(255))
    #: accepted (not yet handled), fired, filtered, skipped (paused), failed
    status: Mapped[str] = mapped_column(String(16))
    #: the event as JSON (bounded): a webhook's body and headers, a push's commit…
    event_json: Mapped[str] = mapped_column(Text)
    cause_json: Mapped[str] = mapped_column(Text)
    payload_digest: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: what the fire runs when not the registered version (a push: the instance at its commit)
    selector: Mapped[str | None] = mapped_column(String(255), nullable=True)
    instance: Mapped[str | None] = mapped_column(String(100), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[str] = mapped_column(String(32))
    finished_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
