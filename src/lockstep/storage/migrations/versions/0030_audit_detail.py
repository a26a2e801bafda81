"""An audit entry's detail: what a call decided, when its route says so (an approval's
comment and input); bodies in general are never recorded.

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit", sa.Column("detail", sa.Text, nullable=True))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
