"""Artifacts: what each successful step attempt stored, with size and SHA-256.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("step_id", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("paths_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
