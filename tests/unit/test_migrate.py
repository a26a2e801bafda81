"""The schema check that spares every process an Alembic run, and the in-memory database
that answers reads of a home not made yet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from lockstep.storage import migrate, registry, triggers
from lockstep.storage.database import Database
from lockstep.storage.rows import Base, DefinitionRow, ProjectRow, UserRow
from tests.postgres import Postgres


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


def test_a_new_database_is_migrated_on_each_dialect(db: Database) -> None:
    with db.engine.begin() as conn:
        assert migrate.current_revisions(conn) == {migrate.HEAD_REVISION}
        assert set(Base.metadata.tables) <= set(inspect(conn).get_table_names())
    assert db.project_ids() == ["default"]


def test_a_database_of_an_older_lockstep_is_upgraded(old_database: Callable[[str], str]) -> None:
    url = old_database("0010")  # users without the worker flag
    older = Database(url)
    with older.engine.begin() as conn:  # a user that lockstep made
        conn.execute(
            text(
                "INSERT INTO users (id, name, superuser, created_at)"
                " VALUES ('u1', 'ann', 1, '2026-01-01T00:00:00Z')"
            )
        )
    older.close()
    db = Database(url)
    db.open()
    with db.engine.begin() as conn:
        assert migrate.current_revisions(conn) == {migrate.HEAD_REVISION}
        assert "worker" in {c["name"] for c in inspect(conn).get_columns("users")}
    with db.session() as s:
        ann = s.get(UserRow, "u1")
        assert ann is not None and ann.name == "ann" and ann.superuser == 1 and ann.worker == 0
    assert db.project_ids() == ["default"]
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


def test_a_plain_postgresql_url_opens_with_the_postgres_extra(postgres: Postgres) -> None:
    # SQLAlchemy reads postgresql:// as psycopg2's, which nothing installs: a user with
    # `lockstep[postgres]` (psycopg 3) was told its driver was missing
    url = postgres.database()
    assert url.startswith("postgresql://")
    db = Database(url)
    db.open()
    assert db.project_ids() == ["default"]
    assert db.engine.dialect.driver == "psycopg"
    db.close()


def test_an_upgrade_from_0020_keeps_instances_and_triggers_and_takes_instance_triggers(
    old_database: Callable[[str], str],
) -> None:
    url = old_database("0020")  # instances without triggers, trigger ids of 63 characters
    older = Database(url)
    with older.engine.begin() as conn:
        for sql in (
            "INSERT INTO projects (id, name, created_at) VALUES ('p1', 'p1', '2026-01-01')",
            "INSERT INTO definitions (id, project_id, path, name, created_at)"
            " VALUES ('d1', 'p1', 'wf.yaml', 'wf', '2026-01-01')",
            "INSERT INTO instances (id, project_id, name, definition_id, ref, params_json,"
            " created_at, pool) VALUES ('i1', 'p1', 'nightly', 'd1', 'main', '[\"a=1\"]',"
            " '2026-01-01', 'gpu')",
            "INSERT INTO triggers (definition_id, trigger_id, project_id, kind, version,"
            " spec_json, schedule_id, registered_at)"
            " VALUES ('d1', 'tick', 'p1', 'schedule', 1, '{}', 's1', '2026-01-01')",
        ):
            conn.execute(text(sql))
    older.close()
    db = Database(url)
    db.open()
    with db.session() as s:
        [kept] = registry.list_instances(s, "p1")
        assert (kept["name"], kept["ref"], kept["params"], kept["pool"]) == (
            "nightly",
            "main",
            ["a=1"],
            "gpu",
        )
        assert kept["triggers"] == {}  # an instance of before has no triggers of its own
        definition = s.get(DefinitionRow, "d1")
        assert definition is not None
        [file_trigger] = triggers.listed(s, "p1", definition)
        assert (file_trigger.trigger, file_trigger.instance) == ("tick", None)
        # an instance's registered id is longer than a trigger id could be
        long_name = "n" * 100
        registry.set_instance_triggers(s, "p1", "nightly", {"t" * 63: {"every": "1h"}})
        wanted = [triggers.Wanted(f"{long_name}/{'t' * 63}", "schedule", {}, "")]
        triggers.replace(s, definition, 1, wanted, long_name)
    with db.session() as s:
        definition = s.get(DefinitionRow, "d1")
        assert definition is not None
        got = {t.trigger: t.instance for t in triggers.listed(s, "p1", definition)}
        assert got == {"tick": None, f"{long_name}/{'t' * 63}": long_name}
        assert registry.list_instances(s, "p1")[0]["triggers"] == {"t" * 63: {"every": "1h"}}
    db.close()
