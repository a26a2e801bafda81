"""A metadata database as an older lockstep left it: migrated by the real scripts up to an
older revision, for tests of what a newer lockstep makes of it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from lockstep.storage import migrate


def database_at(path: Path, revision: str) -> str:
    """A SQLite database at ``path`` with the schema of ``revision``; returns its URL."""
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    with engine.begin() as conn:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()
    return url
