"""Users, memberships, tokens and the audit log."""

from __future__ import annotations

import json
import secrets as _random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from lockstep.auth.principal import Principal
from lockstep.auth.roles import Role
from lockstep.auth.tokens import display_prefix, new_token, token_hash, well_formed
from lockstep.clock import format_ts, utcnow
from lockstep.errors import Conflict, NotFound, Unauthenticated
from lockstep.storage.rows import AuditRow, MembershipRow, ProjectRow, TokenRow, UserRow


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    user: str
    prefix: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


def _new_id(kind: str) -> str:
    return f"{kind}_{_random.token_hex(8)}"


def has_users(s: Session) -> bool:
    return s.scalar(select(UserRow.id).limit(1)) is not None


def ensure_user(s: Session, name: str, *, superuser: bool = False) -> UserRow:
    row = s.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        row = UserRow(id=_new_id("u"), name=name, superuser=int(superuser), created_at=utcnow())
        s.add(row)
        s.flush()
    return row


def ensure_worker(s: Session, name: str) -> UserRow:
    """The worker identity ``worker.NAME``, created on first use."""
    row = ensure_user(s, f"worker.{name}")
    if not row.worker:
        row.worker = 1
        s.flush()
    return row


def get_user(s: Session, name: str) -> UserRow:
    row = s.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        raise NotFound(f"user '{name}' not found")
    return row


def create_token(
    s: Session, user: UserRow, name: str, *, expires_in: timedelta | None = None
) -> tuple[str, TokenRow]:
    """Returns the token (shown once, never stored) and its row."""
    token = new_token()
    expires = None
    if expires_in is not None:
        expires = format_ts(datetime.now(UTC) + expires_in)
    row = TokenRow(
        id=_new_id("t"),
        user_id=user.id,
        name=name,
        hash=token_hash(token),
        prefix=display_prefix(token),
        created_at=utcnow(),
        expires_at=expires,
    )
    s.add(row)
    s.flush()
    return token, row


def authenticate(s: Session, token: str) -> Principal:
    """The principal a bearer token stands for; Unauthenticated for anything else."""
    if not well_formed(token):
        raise Unauthenticated("malformed token; tokens look like lst_… (see `lockstep login`)")
    row = s.scalar(select(TokenRow).where(TokenRow.hash == token_hash(token)))
    if row is None:
        raise Unauthenticated("unknown token")
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthenticated("token revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated("token expired")
    user = s.get(UserRow, row.user_id)
    if user is None:
        raise Unauthenticated("unknown token")
    row.last_used_at = now
    return principal_for(s, user, token_id=row.id)


def principal_for(s: Session, user: UserRow, *, token_id: str | None = None) -> Principal:
    roles = {
        m.project_id: Role[m.role]
        for m in s.scalars(select(MembershipRow).where(MembershipRow.user_id == user.id))
    }
    return Principal(
        user_id=user.id,
        name=user.name,
        superuser=bool(user.superuser),
        worker=bool(user.worker),
        token_id=token_id,
        roles=roles,
    )


def list_tokens(s: Session, principal: Principal) -> list[TokenInfo]:
    query = select(TokenRow, UserRow.name).join(UserRow, UserRow.id == TokenRow.user_id)
    if not principal.superuser:
        query = query.where(TokenRow.user_id == principal.user_id)
    return [
        TokenInfo(
            id=t.id,
            name=t.name,
            user=user,
            prefix=t.prefix,
            created_at=t.created_at,
            expires_at=t.expires_at,
            revoked_at=t.revoked_at,
            last_used_at=t.last_used_at,
        )
        for t, user in s.execute(query.order_by(TokenRow.created_at))
    ]


def revoke_token(s: Session, principal: Principal, token_id: str) -> None:
    row = s.get(TokenRow, token_id)
    if row is None or (row.user_id != principal.user_id and not principal.superuser):
        raise NotFound(f"token '{token_id}' not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()


# -- projects and members -----------------------------------------------------------------


def create_project(s: Session, name: str, owner: Principal) -> ProjectRow:
    if s.get(ProjectRow, name) is not None:
        raise Conflict(f"project '{name}' already exists")
    row = ProjectRow(id=name, name=name, created_at=utcnow())
    s.add(row)
    s.flush()
    if owner.user_id != "local":
        s.add(
            MembershipRow(
                project_id=name, user_id=owner.user_id, role=Role.admin.name, created_at=utcnow()
            )
        )
    return row


def visible_projects(s: Session, principal: Principal) -> list[tuple[str, str]]:
    """(project, role) for every project the principal may see."""
    rows = s.scalars(select(ProjectRow).order_by(ProjectRow.id))
    out = []
    for p in rows:
        role = principal.role_in(p.id)
        if role is not None:
            out.append((p.id, role.name))
    return out


def set_member(s: Session, project: str, user_name: str, role: Role) -> bool:
    user = ensure_user(s, user_name)
    row = s.get(MembershipRow, (project, user.id))
    if row is None:
        s.add(
            MembershipRow(project_id=project, user_id=user.id, role=role.name, created_at=utcnow())
        )
        return True
    row.role = role.name
    return False


def members(s: Session, project: str) -> list[tuple[str, str]]:
    query = (
        select(UserRow.name, MembershipRow.role)
        .join(UserRow, UserRow.id == MembershipRow.user_id)
        .where(MembershipRow.project_id == project)
        .order_by(UserRow.name)
    )
    return [(name, role) for name, role in s.execute(query)]


def remove_member(s: Session, project: str, user_name: str) -> None:
    user = s.scalar(select(UserRow).where(UserRow.name == user_name))
    row = None if user is None else s.get(MembershipRow, (project, user.id))
    if row is None:
        raise NotFound(f"'{user_name}' is not a member of project '{project}'")
    s.delete(row)


# -- audit --------------------------------------------------------------------------------


def append_audit(
    s: Session,
    *,
    project: str | None,
    principal: Principal | None,
    action: str,
    address: str | None,
    status: int,
    detail: dict[str, object] | None = None,
) -> None:
    s.add(
        AuditRow(
            at=utcnow(),
            project_id=project,
            user_name=principal.name if principal else None,
            token_id=principal.token_id if principal else None,
            action=action[:200],
            address=address,
            status=status,
            detail=json.dumps(detail, sort_keys=True) if detail else None,
        )
    )


def read_audit(
    s: Session, project: str | None, *, limit: int = 100, before: int | None = None
) -> list[dict[str, object]]:
    """Entries newest first (``before``: only those older than the entry with that id)."""
    query = select(AuditRow)
    if project is not None:
        query = query.where(AuditRow.project_id == project)
    if before is not None:
        query = query.where(AuditRow.id < before)
    rows = s.scalars(query.order_by(AuditRow.id.desc()).limit(limit))
    return [
        {
            "id": r.id,
            "at": r.at,
            "project": r.project_id,
            "user": r.user_name,
            "token": r.token_id,
            "action": r.action,
            "address": r.address,
            "status": r.status,
            "detail": json.loads(r.detail) if r.detail else None,
        }
        for r in rows
    ]
