"""A deployment's drift policy: what the reconciler does with a change made outside lockstep
(a replica stopped or started by hand): ``reconcile`` it back, or ``report`` it only.

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deployments",
        sa.Column("drift_policy", sa.String(16), nullable=False, server_default="reconcile"),
    )


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
