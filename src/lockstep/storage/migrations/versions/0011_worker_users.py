"""Worker identities: users whose tokens may use the worker API and nothing else.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("worker", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
