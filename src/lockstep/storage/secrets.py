"""Project secrets in the metadata DB. The only module that reads or writes secret rows.

Values go in encrypted by a ``SecretBox`` and come out only through ``resolve``, which a
worker calls when a step starts; listing never touches a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.errors import Conflict, InvalidRequest, NotFound
from lockstep.secrets.crypto import SecretBox
from lockstep.spec.names import SECRET_NAME_PATTERN
from lockstep.storage.rows import ProjectRow, SecretRow

NAME_PATTERN = SECRET_NAME_PATTERN
_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
MAX_NAME_CHARS = 128
MAX_VALUE_BYTES = 64 * 1024
_SET_HINT = "set them with `lockstep secrets set NAME`"


@dataclass(frozen=True)
class SecretInfo:
    """What anyone allowed to see a project may know about a secret: never its value."""

    name: str
    created_at: str
    updated_at: str
    updated_by: str | None


class MissingSecrets(NotFound):
    """Secrets a workflow refers to that are not set; ``names`` lists all of them."""

    def __init__(self, project: str, names: list[str]) -> None:
        listed = ", ".join(names)
        super().__init__(f"missing secrets in project '{project}': {listed}; {_SET_HINT}")
        self.project = project
        self.names = names


def validate_name(name: str) -> None:
    if len(name) > MAX_NAME_CHARS or not _NAME.fullmatch(name):
        shown = name if len(name) <= 60 else name[:60] + "..."
        raise InvalidRequest(
            f"invalid secret name {shown!r}: secret names must match {NAME_PATTERN} "
            f"and be at most {MAX_NAME_CHARS} characters"
        )


def _validate_value(name: str, value: str) -> None:
    # Messages give sizes only: the value itself must never reach an error.
    if not value:
        raise InvalidRequest(f"secret '{name}' is empty; give it a value, or delete it")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequest(f"secret '{name}' is not valid Unicode text; send UTF-8") from None
    if size > MAX_VALUE_BYTES:
        raise InvalidRequest(
            f"secret '{name}' is {size} bytes; values can be at most {MAX_VALUE_BYTES} bytes"
        )


def set_secret(
    s: Session, box: SecretBox, project: str, name: str, value: str, *, by: str | None
) -> bool:
    """Create or replace a secret; True when it was created."""
    validate_name(name)
    _validate_value(name, value)
    if s.get(ProjectRow, project) is None:
        raise NotFound(
            f"project '{project}' not found; list projects with `lockstep projects list`"
        )
    ciphertext = box.encrypt(project, name, value)
    now = utcnow()
    who = by[:64] if by else by
    row = s.get(SecretRow, (project, name))
    if row is not None:
        row.ciphertext = ciphertext
        row.updated_at = now
        row.updated_by = who
        s.flush()
        return False
    s.add(
        SecretRow(
            project_id=project,
            name=name,
            ciphertext=ciphertext,
            created_at=now,
            updated_at=now,
            updated_by=who,
        )
    )
    try:
        s.flush()
    except IntegrityError:
        raise Conflict(
            f"secret '{name}' was set by another request at the same time; try again"
        ) from None
    return True


def list_secrets(s: Session, project: str) -> list[SecretInfo]:
    rows = s.execute(
        select(SecretRow.name, SecretRow.created_at, SecretRow.updated_at, SecretRow.updated_by)
        .where(SecretRow.project_id == project)
        .order_by(SecretRow.name)
    )
    return [SecretInfo(*row) for row in rows]


def delete_secret(s: Session, project: str, name: str) -> None:
    row = s.get(SecretRow, (project, name))
    if row is None:
        raise NotFound(
            f"secret '{name}' not found in project '{project}'; "
            "list secrets with `lockstep secrets list`"
        )
    s.delete(row)
    s.flush()


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def missing(s: Session, project: str, names: Iterable[str]) -> list[str]:
    """The names not set in ``project``, in the order given; for rejecting a run up front."""
    wanted = _unique(names)
    if not wanted:
        return []
    present = set(
        s.scalars(
            select(SecretRow.name).where(
                SecretRow.project_id == project, SecretRow.name.in_(wanted)
            )
        )
    )
    return [n for n in wanted if n not in present]


def resolve(s: Session, box: SecretBox, project: str, names: Iterable[str]) -> dict[str, str]:
    """The decrypted values of ``names``; every missing name is reported in one error."""
    wanted = _unique(names)
    if not wanted:
        return {}
    rows = {
        row.name: row.ciphertext
        for row in s.execute(
            select(SecretRow.name, SecretRow.ciphertext).where(
                SecretRow.project_id == project, SecretRow.name.in_(wanted)
            )
        )
    }
    absent = [n for n in wanted if n not in rows]
    if absent:
        raise MissingSecrets(project, absent)
    return {n: box.decrypt(project, n, rows[n]) for n in wanted}
