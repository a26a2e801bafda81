"""Trigger fires: every event a trigger received, unique per (definition, trigger, fire key),
with the run it made or why none (a webhook delivery is recorded here before its 202).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trigger_fires",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("definition_id", sa.String(64), sa.ForeignKey("definitions.id"), nullable=False),
        sa.Column("trigger_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("fire_key", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("event_json", sa.Text, nullable=False),
        sa.Column("cause_json", sa.Text, nullable=False),
        sa.Column("payload_digest", sa.String(100), nullable=True),
        sa.Column("selector", sa.String(255), nullable=True),
        sa.Column("instance", sa.String(100), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32), nullable=True),
        sa.UniqueConstraint("definition_id", "trigger_id", "fire_key"),
    )
    op.create_index(
        "ix_trigger_fires_trigger",
        "trigger_fires",
        ["project_id", "definition_id", "trigger_id", "created_at"],
    )
    op.create_index("ix_trigger_fires_status", "trigger_fires", ["status"])


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
