"""Resources: named, versioned configuration per project (``storage/resources``), every
change a new immutable version; and the versions each run read, fixed at its creation.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("schema_json", sa.Text),
        sa.Column("latest", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.UniqueConstraint("project_id", "name", name="uq_resources_name"),
    )
    op.create_table(
        "resource_versions",
        sa.Column("resource_id", sa.Integer, sa.ForeignKey("resources.id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("data_json", sa.Text, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("author", sa.String(200)),
        sa.Column("run_id", sa.String(64)),
        sa.Column("step_id", sa.String(80)),
        sa.Column("attempt", sa.Integer),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.UniqueConstraint(
            "run_id", "step_id", "attempt", "resource_id", name="uq_resource_write"
        ),
    )
    op.create_index("ix_resource_versions_run", "resource_versions", ["run_id"])
    # a plain ADD COLUMN: a batch rebuild would drop the finished-run triggers
    op.add_column("runs", sa.Column("resources_json", sa.Text))


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
