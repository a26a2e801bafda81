"""Trigger events: an outbox of what upstream and resource triggers listen for (a run of a
definition finished, a tag moved, a definition got a version), written in the transaction of
the change itself and deleted once handed to the listening triggers, so a crash between the
change and the fire loses nothing.

Revision ID: 0016
Revises: 0014 (on its own branch; the merge chains it after 0015)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trigger_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data_json", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
