"""Approvals: each approval step that waited, what it asked, every decision, how it ended.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("step_id", sa.String(80), nullable=False),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ask_json", sa.Text, nullable=False),
        sa.Column("decisions_json", sa.Text, nullable=False),
        sa.Column("requested_at", sa.String(32), nullable=False),
        sa.Column("deadline", sa.String(32), nullable=True),
        sa.Column("closed_at", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "step_id"),
    )
    op.create_index("ix_approvals_project_status", "approvals", ["project_id", "status"])


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
