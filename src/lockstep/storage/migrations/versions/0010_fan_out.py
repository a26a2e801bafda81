"""Fan-out: item steps (``STEP[i]``) know their step and index; step ids widen to hold the
``[index]`` suffix.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: tables with a step id: a 63-character id plus "[49999]"
_STEP_COLUMNS = ("step_states", "step_attempts", "artifacts", "cache_entries")


def upgrade() -> None:
    # plain ADD COLUMNs: a batch rebuild would drop the finished-run triggers
    op.add_column("step_states", sa.Column("parent", sa.String(63)))
    op.add_column("step_states", sa.Column("item", sa.Integer))
    op.create_index("ix_step_states_parent", "step_states", ["run_id", "parent"])
    if op.get_bind().dialect.name == "postgresql":  # SQLite does not enforce lengths
        for table in _STEP_COLUMNS:
            op.alter_column(table, "step_id", type_=sa.String(80), existing_type=sa.String(63))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
