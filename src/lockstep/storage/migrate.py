"""Bring the metadata database to the newest schema (Alembic), once per process start.

A database already at the newest revision, the common case, costs one query and no import
of Alembic: the newest revision is known here as ``HEAD_REVISION`` (a unit test checks it
against the migration scripts). An in-memory database, which dies with the process, has no
history to migrate: its schema is made from the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, column, inspect, select, table

from lockstep.storage.rows import Base, in_memory

if TYPE_CHECKING:
    from alembic.config import Config

#: the revision of the newest script in ``migrations/versions``; a new migration sets it
#: (tests/unit/test_migrate.py fails until it does)
HEAD_REVISION = "0031"
_SCRIPTS = Path(__file__).parent / "migrations"
_VERSION_TABLE = "alembic_version"


def current_revisions(conn: Connection) -> set[str]:
    """The revisions the database is stamped with (none for an empty database)."""
    if not inspect(conn).has_table(_VERSION_TABLE):
        return set()
    version = table(_VERSION_TABLE, column("version_num"))
    return set(conn.scalars(select(version.c.version_num)))


def upgrade(engine: Engine) -> None:
    if in_memory(engine.url):
        Base.metadata.create_all(engine)
        return
    with engine.begin() as conn:
        if current_revisions(conn) == {HEAD_REVISION}:
            return
    _alembic_upgrade(engine)


def _alembic_upgrade(engine: Engine) -> None:
    # imported here: Alembic costs half a second to import, and is needed only when the
    # schema is behind (a new home, or a lockstep upgrade)
    from alembic import command

    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def alembic_config() -> Config:
    """Alembic's configuration for lockstep's scripts (run on a connection handed over in
    ``attributes["connection"]``)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    return cfg
