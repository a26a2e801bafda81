"""Notifications: channels, subscriptions, and the deliveries (outbox and log).

Revision ID: 0019
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
# 0015-0018 are other branches' numbers; whoever merges them links this one after the last
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("settings_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.UniqueConstraint("project_id", "name"),
    )
    op.create_table(
        "notification_subscriptions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column(
            "channel_id", sa.String(64), sa.ForeignKey("notification_channels.id"), nullable=False
        ),
        sa.Column("events_json", sa.Text, nullable=False),
        sa.Column("definition", sa.String(255), nullable=True),
        sa.Column("instance", sa.String(255), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
    )
    op.create_index(
        "ix_notification_subscriptions_project_id", "notification_subscriptions", ["project_id"]
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("channel", sa.String(63), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("subject_json", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.String(32), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("delivered_at", sa.String(32), nullable=True),
    )
    op.create_index(
        "ix_notification_deliveries_due", "notification_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index(
        "ix_notification_deliveries_project",
        "notification_deliveries",
        ["project_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("notification_deliveries")
    op.drop_index("ix_notification_subscriptions_project_id", "notification_subscriptions")
    op.drop_table("notification_subscriptions")
    op.drop_table("notification_channels")
