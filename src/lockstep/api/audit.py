"""Append every mutating call to the audit log: who, with which token, what, from where,
and how it ended. Bodies are never recorded (they may hold secret values); a route may say
what its call decided with ``audit_detail`` (an approval's comment and input)."""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockstep.auth.principal import Principal
from lockstep.services.audit import AuditService

log = logging.getLogger(__name__)
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PROJECT = re.compile(r"^/api/v1/projects/([a-z0-9][a-z0-9-]{0,62})(?:/|$)")
#: a delivery to a project's webhook trigger (not ``/hooks/git``, which names no project)
_HOOK = re.compile(r"^/api/v1/hooks/([a-z0-9][a-z0-9-]{0,62})/")
#: the request state key a route sets to record what its call decided
DETAIL = "audit_detail"


def audit_detail(request: Request, **detail: object) -> None:
    """Record ``detail`` with this call's audit entry (never a secret value)."""
    request.state.audit_detail = detail


class AuditLog:
    def __init__(self, app: ASGIApp, *, audit: AuditService) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _MUTATING:
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            await self._append(scope, status)

    async def _append(self, scope: Scope, status: int) -> None:
        path: str = scope["path"]
        match = _PROJECT.match(path) or _HOOK.match(path)
        state = scope.get("state", {})
        who = state.get("principal")
        detail = state.get(DETAIL)
        client = scope.get("client")
        try:
            await self.audit.append(
                project=match.group(1) if match else None,
                principal=who if isinstance(who, Principal) else None,
                action=f"{scope['method']} {path}",
                address=client[0] if client else None,
                status=status,
                detail=detail if isinstance(detail, dict) else None,
            )
        except Exception:
            log.exception("audit.append_failed")
