"""When a run's row last changed, for the runs list's stream of changes (``GET
/projects/{p}/runs/events``): a column and an index by project and change time.

Existing rows are not backfilled: finished rows are frozen (a trigger refuses updates), and
the stream only needs changes from now on; an unfinished run gets the column at its next
change.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN: a batch rebuild would drop the finished-run triggers
    op.add_column("runs", sa.Column("changed_at", sa.String(32)))
    op.create_index("ix_runs_project_changed", "runs", ["project_id", "changed_at", "id"])


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
