"""Connected repositories, discovered definitions, their per-ref status, and versions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("branches_json", sa.Text, nullable=False),
        sa.Column("tags_json", sa.Text, nullable=False),
        sa.Column("credentials", sa.String(128)),
        sa.Column("poll_s", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("archived_at", sa.String(32)),
        sa.Column("scanned_at", sa.String(32)),
        sa.Column("error", sa.Text),
        sa.Column("refs_json", sa.Text),
        sa.Column("webhook_secret", sa.Text),
        sa.UniqueConstraint("project_id", "name", name="uq_repositories_name"),
    )
    op.create_table(
        "definitions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("repository_id", sa.String(64), sa.ForeignKey("repositories.id")),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("archived_at", sa.String(32)),
        sa.UniqueConstraint("project_id", "name", name="uq_definitions_name"),
    )
    op.create_table(
        "definition_refs",
        sa.Column(
            "definition_id", sa.String(64), sa.ForeignKey("definitions.id"), primary_key=True
        ),
        sa.Column("ref", sa.String(255), primary_key=True),
        sa.Column("sha", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("errors_json", sa.Text, nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("scanned_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column(
            "definition_id", sa.String(64), sa.ForeignKey("definitions.id"), primary_key=True
        ),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("spec_text", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("definition_id", "digest", name="uq_versions_digest"),
    )
    op.create_table(
        "version_sources",
        sa.Column("definition_id", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("sha", sa.String(64), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("seen_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("definition_id", sa.String(64), sa.ForeignKey("definitions.id"), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("params_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_instances_name"),
    )
    # what a run is locked to, for runs of a definition
    for column in ("definition", "sha", "instance", "selector", "rerun_of", "rerun_policy"):
        op.add_column("runs", sa.Column(column, sa.String(255)))
    op.add_column("runs", sa.Column("version", sa.Integer))
    # a version is an immutable record: the database refuses to change or remove one
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER versions_immutable_{verb.lower()} BEFORE {verb} ON versions "
                "BEGIN SELECT RAISE(ABORT, 'versions are immutable'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION lockstep_versions_immutable() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'versions are immutable'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER versions_immutable BEFORE UPDATE OR DELETE ON versions "
            "FOR EACH ROW EXECUTE FUNCTION lockstep_versions_immutable()"
        )


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
