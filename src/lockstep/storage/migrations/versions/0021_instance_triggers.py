"""Triggers on instances: an instance keeps its own ``triggers:`` mapping, and its registered
triggers sit in ``triggers`` beside the file's, keyed ``<instance>/<trigger id>`` and marked
with the instance (so their ids, and their fires' ids, grow past a trigger id's 63 characters).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

#: an instance name (100), '/', a trigger id (63), with room to spare
KEY = 200


def upgrade() -> None:
    op.add_column(
        "instances", sa.Column("triggers_json", sa.Text, nullable=False, server_default="{}")
    )
    op.add_column("triggers", sa.Column("instance", sa.String(100), nullable=True))
    if op.get_bind().dialect.name != "sqlite":
        # SQLite does not enforce a VARCHAR's length: only PostgreSQL's columns need widening
        for name in ("triggers", "trigger_fires"):
            op.alter_column(name, "trigger_id", type_=sa.String(KEY), existing_type=sa.String(63))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
