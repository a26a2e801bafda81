"""The schema check that spares every process an Alembic run, and the in-memory database
that answers reads of a home not made yet."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from lockstep.storage import migrate
from lockstep.storage.database import Database
from lockstep.storage.rows import Base, ProjectRow
from tests.old_schemas import database_at


def test_head_revision_is_the_newest_migration_script() -> None:
    # a new migration must bump HEAD_REVISION, or homes would never be upgraded to it
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    assert scripts.get_current_head() == migrate.HEAD_REVISION


def test_a_new_database_is_migrated_to_the_head_and_then_left_alone(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'lockstep.db'}")
    db.open()
    with db.engine.begin() as conn:
        assert migrate.current_revisions(conn) == {migrate.HEAD_REVISION}
        assert set(Base.metadata.tables) <= set(inspect(conn).get_table_names())
    db.close()
    again = Database(f"sqlite:///{tmp_path / 'lockstep.db'}")
    again.open()  # at the head: nothing to do, and the default project is still there
    assert again.project_ids() == ["default"]
    again.close()


def test_a_database_of_an_older_lockstep_is_upgraded(tmp_path: Path) -> None:
    db = Database(database_at(tmp_path / "lockstep.db", "0010"))  # users without worker flag
    db.open()
    with db.engine.begin() as conn:
        assert migrate.current_revisions(conn) == {migrate.HEAD_REVISION}
        assert "worker" in {c["name"] for c in inspect(conn).get_columns("users")}
    db.close()


async def test_an_in_memory_database_is_made_from_the_models() -> None:
    db = Database("sqlite://")
    db.open()
    # the DB thread sees what the opening thread made: one connection, shared
    ids = await db.call(lambda s: [p.id for p in s.query(ProjectRow)])
    assert ids == ["default"]
    with db.engine.begin() as conn:
        assert set(Base.metadata.tables) <= set(inspect(conn).get_table_names())
        assert migrate.current_revisions(conn) == set()  # made from the models, not migrated
    db.close()
