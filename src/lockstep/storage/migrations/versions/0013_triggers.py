"""Triggers: each registered trigger of a definition (the version $LIVE named when it was
registered, its spec as JSON, the Temporal Schedule made for it, who paused it).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "triggers",
        sa.Column("definition_id", sa.String(64), sa.ForeignKey("definitions.id"), nullable=False),
        sa.Column("trigger_id", sa.String(63), nullable=False),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("schedule_id", sa.String(255), nullable=False),
        sa.Column("registered_at", sa.String(32), nullable=False),
        sa.Column("paused_by", sa.String(255), nullable=True),
        sa.Column("paused_at", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("definition_id", "trigger_id"),
    )
    op.create_index("ix_triggers_project_id", "triggers", ["project_id"])


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
