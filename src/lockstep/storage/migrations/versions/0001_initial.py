"""Projects, runs, step states and attempts; finished runs are frozen by triggers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TERMINAL = "('succeeded', 'failed', 'cancelled')"
_FROZEN = "run is finished and immutable"


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("workflow", sa.String(63), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec_digest", sa.String(64), nullable=False),
        sa.Column("spec_text", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("workspace_json", sa.Text, nullable=False),
        sa.Column("params_json", sa.Text, nullable=False),
        sa.Column("outputs_json", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("triggered_by", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("retry_of", sa.String(64)),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(32)),
        sa.Column("finished_at", sa.String(32)),
        sa.UniqueConstraint("project_id", "idempotency_key", name="uq_runs_idempotency"),
    )
    op.create_index("ix_runs_project_created", "runs", ["project_id", "created_at", "id"])
    op.create_table(
        "step_states",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("step_id", sa.String(63), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("is_finally", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("outputs_json", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("reused_from", sa.String(64)),
        sa.Column("started_at", sa.String(32)),
        sa.Column("finished_at", sa.String(32)),
    )
    op.create_table(
        "step_attempts",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("step_id", sa.String(63), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scheduled_at", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(32)),
        sa.Column("finished_at", sa.String(32)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("worker", sa.String(200)),
        sa.Column("error", sa.Text),
        sa.Column("log_key", sa.String(250), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_freeze()
    elif dialect == "postgresql":
        _postgres_freeze()


def _sqlite_freeze() -> None:
    # A finished run is an immutable record: the database itself refuses any change, so no
    # code path (ours or a stray script) can rewrite history.
    op.execute(
        f"CREATE TRIGGER runs_frozen BEFORE UPDATE ON runs WHEN OLD.status IN {_TERMINAL} "
        f"BEGIN SELECT RAISE(ABORT, '{_FROZEN}'); END"
    )
    op.execute(
        f"CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs WHEN OLD.status IN {_TERMINAL} "
        f"BEGIN SELECT RAISE(ABORT, '{_FROZEN}'); END"
    )
    for table in ("step_states", "step_attempts"):
        for op_name, ref in (("UPDATE", "OLD"), ("DELETE", "OLD"), ("INSERT", "NEW")):
            op.execute(
                f"CREATE TRIGGER {table}_frozen_{op_name.lower()} BEFORE {op_name} ON {table} "
                f"WHEN (SELECT status FROM runs WHERE id = {ref}.run_id) IN {_TERMINAL} "
                f"BEGIN SELECT RAISE(ABORT, '{_FROZEN}'); END"
            )


def _postgres_freeze() -> None:
    op.execute(
        f"""
        CREATE FUNCTION lockstep_run_frozen() RETURNS trigger AS $$
        DECLARE st text;
        BEGIN
          IF TG_TABLE_NAME = 'runs' THEN
            st := OLD.status;
          ELSIF TG_OP = 'INSERT' THEN
            SELECT status INTO st FROM runs WHERE id = NEW.run_id;
          ELSE
            SELECT status INTO st FROM runs WHERE id = OLD.run_id;
          END IF;
          IF st IN {_TERMINAL} THEN
            RAISE EXCEPTION '{_FROZEN}';
          END IF;
          IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER runs_frozen BEFORE UPDATE OR DELETE ON runs "
        "FOR EACH ROW EXECUTE FUNCTION lockstep_run_frozen()"
    )
    for table in ("step_states", "step_attempts"):
        op.execute(
            f"CREATE TRIGGER {table}_frozen BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION lockstep_run_frozen()"
        )


def downgrade() -> None:
    raise NotImplementedError("lockstep does not downgrade its metadata database")
