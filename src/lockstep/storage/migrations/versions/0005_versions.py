"""Versions as a uniform record: API-published drafts, publisher and message, archiving,
tags and the append-only history of every tag move.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMNs: versions are immutable rows guarded by triggers a rebuild would drop
    for column in ("publisher", "message"):
        op.add_column("versions", sa.Column(column, sa.Text))
    op.add_column("definitions", sa.Column("description", sa.Text))
    op.create_table(
        "drafts",
        sa.Column(
            "definition_id", sa.String(64), sa.ForeignKey("definitions.id"), primary_key=True
        ),
        sa.Column("spec_text", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("errors_json", sa.Text, nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "version_archive",
        sa.Column("definition_id", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("archived_at", sa.String(32), nullable=False),
        sa.Column("archived_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "tags",
        sa.Column(
            "definition_id", sa.String(64), sa.ForeignKey("definitions.id"), primary_key=True
        ),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("moves", sa.Integer, nullable=False),
        sa.Column("moved_at", sa.String(32), nullable=False),
        sa.Column("moved_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "tag_moves",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("definition_id", sa.String(64), nullable=False, index=True),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("from_version", sa.Integer),
        sa.Column("to_version", sa.Integer, nullable=False),
        sa.Column("moved_by", sa.String(255), nullable=False),
        sa.Column("moved_at", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
    )
    # the history of tag moves is a record: the database refuses to change or remove one
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER tag_moves_append_only_{verb.lower()} BEFORE {verb} ON tag_moves "
                "BEGIN SELECT RAISE(ABORT, 'tag history is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION lockstep_tag_moves_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'tag history is append-only'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER tag_moves_append_only BEFORE UPDATE OR DELETE ON tag_moves "
            "FOR EACH ROW EXECUTE FUNCTION lockstep_tag_moves_append_only()"
        )


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
