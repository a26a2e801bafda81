"""Placement: the worker pool an instance (and each run) sends its steps to by default.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMNs: a batch rebuild of `runs` would drop its immutability triggers
    op.add_column("instances", sa.Column("pool", sa.String(63)))
    op.add_column("runs", sa.Column("pool", sa.String(63)))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
