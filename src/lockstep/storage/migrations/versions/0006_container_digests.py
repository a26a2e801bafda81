"""Container steps: the exact image each attempt ran.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN: a batch rebuild would drop the finished-run triggers
    op.add_column("step_attempts", sa.Column("image_digest", sa.String(100)))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
