"""Request dependencies: the services, the caller, and the one policy check.

Every project-scoped route declares ``Depends(require("<permission>"))``; nothing else in
the API decides who may do what. A caller who is not a member of a project gets 404 for it,
exactly as for a project that does not exist, so membership never leaks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request

from lockstep.api import session
from lockstep.auth.principal import LOCAL, Principal
from lockstep.auth.roles import PERMISSIONS
from lockstep.errors import NotFound, PermissionDenied, Unauthenticated
from lockstep.services.approvals import ApprovalService
from lockstep.services.audit import AuditService
from lockstep.services.blobs import Blobs
from lockstep.services.deployments import DeploymentService
from lockstep.services.doctor import Doctor
from lockstep.services.instances import InstanceService
from lockstep.services.metrics import MetricsService
from lockstep.services.notifications import NotificationService
from lockstep.services.projects import ProjectService
from lockstep.services.registry import Poller, RegistryService
from lockstep.services.resources import ResourceService
from lockstep.services.runs import RunService
from lockstep.services.secrets import SecretService
from lockstep.services.tokens import TokenService
from lockstep.services.triggers import TriggerService
from lockstep.services.versions import VersionService
from lockstep.services.workers import WorkerService
from lockstep.settings import Settings

if TYPE_CHECKING:
    # built by the server's runtime; a process that only reads records never loads them
    from lockstep.triggers.dispatch import Dispatcher
    from lockstep.triggers.webhooks import Webhooks

PROJECT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


@dataclass(frozen=True)
class Services:
    """What the API calls: one service per noun (the only callers of the stores)."""

    settings: Settings
    runs: RunService
    blobs: Blobs
    registry: RegistryService
    poller: Poller
    instances: InstanceService
    versions: VersionService
    projects: ProjectService
    tokens: TokenService
    secrets: SecretService
    workers: WorkerService
    audit: AuditService
    triggers: TriggerService
    #: hands events (webhooks, pushes, upstream runs, tag moves, a person's fire) to triggers
    dispatcher: Dispatcher
    #: signed deliveries to webhook triggers (``POST /api/v1/hooks/...``)
    webhooks: Webhooks
    #: channels, subscriptions, the delivery log; ``emit`` for events (``Notifier``)
    notifications: NotificationService
    approvals: ApprovalService
    #: named, versioned configuration that runs read and steps write
    resources: ResourceService
    #: ``/metrics`` (Prometheus)
    metrics: MetricsService
    #: ``lockstep doctor``
    doctor: Doctor
    #: pipelines' deployments: plans, deploys, rollbacks (``docs/deployments.md``)
    deployments: DeploymentService
    auth: bool = True
    engine_address: str = ""  # host:port of Temporal, for workers on other hosts


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def principal(request: Request) -> Principal:
    svc: Services = request.app.state.services
    if not svc.auth:
        request.state.principal = LOCAL
        return LOCAL
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header and (cookie := session.cookie_token(request)) is not None:
        # the web UI's session (api/session.py): a change needs its CSRF token too
        session.check_csrf(request, cookie)
        who = await svc.tokens.authenticate(cookie)
        request.state.principal = who
        return who
    if not header:
        raise Unauthenticated(
            "missing token: send 'Authorization: Bearer <token>' (lockstep login)"
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("malformed Authorization header; expected 'Bearer <token>'")
    who = await svc.tokens.authenticate(token.strip())
    request.state.principal = who
    return who


Caller = Annotated[Principal, Depends(principal)]


@dataclass(frozen=True)
class Access:
    """A caller allowed to act in one project."""

    principal: Principal
    project: str


def require(permission: str) -> Callable[..., Awaitable[Access]]:
    needed = PERMISSIONS[permission]

    async def check(
        request: Request,
        caller: Caller,
        project: Annotated[str, Path(pattern=PROJECT_PATTERN)],
    ) -> Access:
        svc: Services = request.app.state.services
        role = caller.role_in(project)
        exists = role is not None and await svc.projects.exists(project)
        if role is None or not exists:
            raise NotFound(f"project '{project}' not found")
        if role < needed:
            raise PermissionDenied(
                f"{permission} needs the {needed.name} role; you are {role.name} in '{project}'"
            )
        return Access(principal=caller, project=project)

    return check


async def worker(caller: Caller) -> Principal:
    """A worker's token, or an administrator's (the worker API)."""
    if not (caller.superuser or caller.worker):
        raise PermissionDenied(
            "the worker API needs a worker token (`lockstep workers token NAME`) "
            "or an administrator's"
        )
    return caller


async def superuser(caller: Caller) -> Principal:
    if not caller.superuser:
        raise PermissionDenied("only a server administrator may do this")
    return caller
