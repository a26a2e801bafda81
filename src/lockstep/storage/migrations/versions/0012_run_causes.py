"""Run causes: why each run started (``records.Cause`` as JSON), its kind and trigger id as
columns to filter by, and the database refusing to change a cause once written. Rows of older
runs keep no cause: they read as manual, retry or rerun (``storage/run_causes``).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_IMMUTABLE = "run causes are immutable"
_COLUMNS = ("cause_json", "cause_kind", "cause_trigger")


def upgrade() -> None:
    # plain ADD COLUMNs: a batch rebuild would drop the finished-run triggers
    op.add_column("runs", sa.Column("cause_json", sa.Text))
    op.add_column("runs", sa.Column("cause_kind", sa.String(16)))
    op.add_column("runs", sa.Column("cause_trigger", sa.String(255)))
    op.create_index("ix_runs_project_trigger", "runs", ["project_id", "cause_trigger"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _COLUMNS)
        op.execute(
            f"CREATE TRIGGER runs_cause_immutable BEFORE UPDATE OF {', '.join(_COLUMNS)} ON runs "
            f"WHEN {changed} BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END"
        )
    elif dialect == "postgresql":
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _COLUMNS)
        op.execute(
            "CREATE FUNCTION lockstep_run_cause_immutable() RETURNS trigger AS $$ BEGIN "
            f"IF {changed} THEN RAISE EXCEPTION '{_IMMUTABLE}'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER runs_cause_immutable BEFORE UPDATE ON runs "
            "FOR EACH ROW EXECUTE FUNCTION lockstep_run_cause_immutable()"
        )


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
