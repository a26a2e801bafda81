"""Child runs: the run and step whose ``workflow:`` step started a run, as columns to list a
run's children by (its cause holds them too).

Revision ID: 0024
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMNs: a batch rebuild would drop the finished-run triggers
    op.add_column("runs", sa.Column("parent_run_id", sa.String(64)))
    op.add_column("runs", sa.Column("parent_step", sa.String(255)))
    op.create_index("ix_runs_project_parent", "runs", ["project_id", "parent_run_id"])


def downgrade() -> None:
    op.drop_index("ix_runs_project_parent", table_name="runs")
    op.drop_column("runs", "parent_step")
    op.drop_column("runs", "parent_run_id")
