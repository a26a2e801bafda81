"""The metadata tables as ORM rows (SQLAlchemy 2) and the engine factory.

Rows stay below ``services``: the stores (and migrations) read and write them, services hold
them only within a use case, and the API and CLI see records (``lockstep.records``) or plain
dataclasses. ``storage/database.py`` is the door to the database itself (engine, migrations,
the one writer thread).

Timestamps are ISO-8601 UTC strings (sortable, identical on SQLite and PostgreSQL); JSON is
stored as text so the same code serves both databases.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool


class Base(DeclarativeBase):
    pass


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[str] = mapped_column(String(32))


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("project_id", "idempotency_key", name="uq_runs_idempotency"),
        Index("ix_runs_project_created", "project_id", "created_at", "id"),
        Index("ix_runs_project_trigger", "project_id", "cause_trigger"),
        Index("ix_runs_project_parent", "project_id", "parent_run_id"),
        Index("ix_runs_project_changed", "project_id", "changed_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    workflow: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))
    spec_digest: Mapped[str] = mapped_column(String(64))
    spec_text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, default="")
    workspace_json: Mapped[str] = mapped_column(Text, default="{}")
    params_json: Mapped[str] = mapped_column(Text, default="{}")
    outputs_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    triggered_by: Mapped[str] = mapped_column(String(200), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    retry_of: Mapped[str | None] = mapped_column(String(64), nullable=True)
    definition: Mapped[str | None] = mapped_column(String(255), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha: Mapped[str | None] = mapped_column(String(255), nullable=True)
    instance: Mapped[str | None] = mapped_column(String(255), nullable=True)
    selector: Mapped[str | None] = mapped_column(String(255), nullable=True)
    rerun_of: Mapped[str | None] = mapped_column(String(255), nullable=True)
    rerun_policy: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: why the run started (``records.Cause`` as JSON), written once; None on rows older than
    #: causes (``storage/run_causes`` reads those as manual, retry or rerun). Kind and trigger
    #: are also columns of their own, to filter by.
    cause_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    cause_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    cause_trigger: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: a child run's parent run and step (its ``workflow:`` step), from its cause
    parent_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_step: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pool: Mapped[str | None] = mapped_column(String(63), nullable=True)
    no_cache: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: a run of part of its graph: ``records.RunSelection`` as JSON; None for a whole run
    selection_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the resource versions the run reads, fixed at creation: alias -> {name, version}
    resources_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    finished_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: when the row last changed (created, started, finished), as the writing server's clock
    #: saw it: the runs list's stream of changes reads it. None on rows finished before it was.
    changed_at: Mapped[str | None] = mapped_column(String(32), nullable=True)


class StepRow(Base):
    """The current state of one step of one run (its latest attempt's outcome)."""

    __tablename__ = "step_states"
    __table_args__ = (Index("ix_step_states_parent", "run_id", "parent"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_finally: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outputs_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    reused_from: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cached_from: Mapped[str | None] = mapped_column(String(200), nullable=True)
    started_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    finished_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: a fan-out item (``STEP[i]``): its step and index
    parent: Mapped[str | None] = mapped_column(String(63), nullable=True)
    item: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AttemptRow(Base):
    __tablename__ = "step_attempts"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    scheduled_at: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    finished_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_key: Mapped[str] = mapped_column(String(250))
    image_digest: Mapped[str | None] = mapped_column(String(100), nullable=True)
    pool: Mapped[str | None] = mapped_column(String(63), nullable=True)


def in_memory(url: str | URL) -> bool:
    """Whether ``url`` names an in-memory SQLite database (it lives as long as its engine)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for lockstep's access pattern (one writer, many short reads)."""
    if url.startswith("sqlite"):
        # an in-memory database is one connection, which every thread shares
        pool: dict[str, Any] = {"poolclass": StaticPool} if in_memory(url) else {}
        connect_args = {"timeout": 30, "check_same_thread": False}
        engine = create_engine(url, connect_args=connect_args, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers in other processes proceed while the server writes; the busy
            # timeout turns a rare cross-process collision into a short wait, not an error.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        # SQLAlchemy's default PostgreSQL driver is psycopg2; lockstep's `postgres` extra
        # installs psycopg (3), so a plain postgresql:// URL is read as naming that one
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, **kwargs)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    superuser: Mapped[int] = mapped_column(Integer, default=0)
    #: a worker identity: its tokens may use the worker API, and nothing else
    worker: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[str] = mapped_column(String(32))


class MembershipRow(Base):
    __tablename__ = "memberships"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(32))


class TokenRow(Base):
    """An API token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    revoked_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_used_at: Mapped[str | None] = mapped_column(String(32), nullable=True)


class AuditRow(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    #: what the call decided, as JSON, when its route records it (an approval's comment, input)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class SecretRow(Base):
    """A project secret, encrypted at rest; its value never leaves the server in a response."""

    __tablename__ = "secrets"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RepositoryRow(Base):
    __tablename__ = "repositories"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)  # never holds credentials
    branches_json: Mapped[str] = mapped_column(Text)
    tags_json: Mapped[str] = mapped_column(Text)
    credentials: Mapped[str | None] = mapped_column(String(128), nullable=True)  # secret name
    poll_s: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[str] = mapped_column(String(32))
    archived_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    scanned_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    refs_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # encrypted


class DefinitionRow(Base):
    __tablename__ = "definitions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    repository_id: Mapped[str | None] = mapped_column(ForeignKey("repositories.id"), nullable=True)
    path: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[str] = mapped_column(String(32))
    archived_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)


class DefinitionRefRow(Base):
    """What a definition looks like on one watched ref: its commit and whether it is valid."""

    __tablename__ = "definition_refs"

    definition_id: Mapped[str] = mapped_column(ForeignKey("definitions.id"), primary_key=True)
    ref: Mapped[str] = mapped_column(String(255), primary_key=True)
    sha: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    errors_json: Mapped[str] = mapped_column(Text)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    scanned_at: Mapped[str] = mapped_column(String(32))


class VersionRow(Base):
    __tablename__ = "versions"

    definition_id: Mapped[str] = mapped_column(ForeignKey("definitions.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    spec_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))
    publisher: Mapped[str | None] = mapped_column(Text, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class VersionSourceRow(Base):
    """A commit at which a version's exact content was seen."""

    __tablename__ = "version_sources"

    definition_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[str] = mapped_column(String(32))


class InstanceRow(Base):
    """A saved configuration: a definition, a ref selector and default params."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(100))
    definition_id: Mapped[str] = mapped_column(ForeignKey("definitions.id"))
    ref: Mapped[str] = mapped_column(String(255))
    params_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))
    pool: Mapped[str | None] = mapped_column(String(63), nullable=True)
    #: its own ``triggers:`` as given (``triggers/instance_triggers`` says what they mean)
    triggers_json: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")


class DraftRow(Base):
    """The editable spec of an API-published definition; validated on every save."""

    __tablename__ = "drafts"

    definition_id: Mapped[str] = mapped_column(ForeignKey("definitions.id"), primary_key=True)
    spec_text: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    errors_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[str] = mapped_column(String(32))
    updated_by: Mapped[str] = mapped_column(String(255))


class VersionArchiveRow(Base):
    """A version hidden from listings (runs and selectors by number still reach it)."""

    __tablename__ = "version_archive"

    definition_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    archived_at: Mapped[str] = mapped_column(String(32))
    archived_by: Mapped[str] = mapped_column(String(255))


class TagRow(Base):
    """Where a tag points now; ``moves`` counts its moves (what `--expect` compares)."""

    __tablename__ = "tags"

    definition_id: Mapped[str] = mapped_column(ForeignKey("definitions.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    moves: Mapped[int] = mapped_column(Integer)
    moved_at: Mapped[str] = mapped_column(String(32))
    moved_by: Mapped[str] = mapped_column(String(255))


class TagMoveRow(Base):
    """One move of a tag, kept forever (append-only in the database)."""

    __tablename__ = "tag_moves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    definition_id: Mapped[str] = mapped_column(String(64), index=True)
    tag: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int] = mapped_column(Integer)
    moved_by: Mapped[str] = mapped_column(String(255))
    moved_at: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class WorkerRow(Base):
    """A worker process serving a pool; ``last_seen`` is its heartbeat."""

    __tablename__ = "workers"

    identity: Mapped[str] = mapped_column(String(200), primary_key=True)
    pool: Mapped[str] = mapped_column(String(63), index=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    labels_json: Mapped[str] = mapped_column(Text)
    capacity: Mapped[int] = mapped_column(Integer)
    running: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[str] = mapped_column(String(32))
    last_seen: Mapped[str] = mapped_column(String(32))
    stopped_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: the worker's clock minus the server's when its last report arrived (None: not said)
    clock_skew_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ArtifactRow(Base):
    """An artifact a step stored (from its successful attempt)."""

    __tablename__ = "artifacts"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    paths_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))


class CacheEntryRow(Base):
    """The latest successful attempt of a cacheable step with this key, in a project."""

    __tablename__ = "cache_entries"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    step_id: Mapped[str] = mapped_column(String(80))
    attempt: Mapped[int] = mapped_column(Integer)
    outputs_json: Mapped[str] = mapped_column(Text)
    artifacts_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))
