"""Deployments of pipelines: desired state and generation, plans, revisions (each deploy),
and events.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("definition", sa.String(100), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("desired_json", sa.Text, nullable=True),
        sa.Column("paused", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("deleted_at", sa.String(32), nullable=True),
        sa.Column("status_json", sa.Text, nullable=True),
        sa.Column("observed_at", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("project_id", "name"),
    )
    op.create_table(
        "deployment_plans",
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("deployment", sa.String(63), nullable=False),
        sa.Column("base_generation", sa.Integer, nullable=False),
        sa.Column("plan_json", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("applied_generation", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("project_id", "id"),
    )
    op.create_index(
        "ix_deployment_plans_deployment", "deployment_plans", ["project_id", "deployment"]
    )
    op.create_table(
        "deployment_revisions",
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("deployment", sa.String(63), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("plan_id", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("desired_json", sa.Text, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("project_id", "deployment", "generation"),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("deployment", sa.String(63), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("detail_json", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_deployment_events_deployment", "deployment_events", ["project_id", "deployment", "id"]
    )


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
