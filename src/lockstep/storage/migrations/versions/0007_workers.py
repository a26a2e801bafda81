"""Workers: who serves which pool, with what labels and capacity, and when they were last seen;
and the pool each step attempt was placed on.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("identity", sa.String(200), primary_key=True),
        sa.Column("pool", sa.String(63), nullable=False, index=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("labels_json", sa.Text, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("running", sa.Integer, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("last_seen", sa.String(32), nullable=False),
        sa.Column("stopped_at", sa.String(32)),
    )
    # a plain ADD COLUMN: a batch rebuild would drop the finished-run triggers
    op.add_column("step_attempts", sa.Column("pool", sa.String(63)))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
