"""Step caching: successful attempts by cache key, where a cached step took its result from,
and runs that asked not to use the cache.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(63), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("outputs_json", sa.Text, nullable=False),
        sa.Column("artifacts_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    # plain ADD COLUMNs: a batch rebuild would drop the finished-run triggers
    op.add_column("step_states", sa.Column("cached_from", sa.String(200)))
    op.add_column("runs", sa.Column("no_cache", sa.Integer))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
