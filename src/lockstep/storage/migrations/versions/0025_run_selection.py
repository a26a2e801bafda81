"""Runs of part of a graph: the selection a run was asked for (``--only``/``--from``,
``--reuse``), kept so that its record shows it and a retry or rerun keeps it.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN: a batch rebuild would drop the finished-run triggers
    op.add_column("runs", sa.Column("selection_json", sa.Text))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
