"""How far a worker's clock is from the server's that heard its last report (milliseconds,
worker minus server), for `lockstep doctor`.

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workers", sa.Column("clock_skew_ms", sa.Integer, nullable=True))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
