"""Roles per project and the one table of what each permission needs."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """Each role includes everything the roles below it may do."""

    viewer = 1
    operator = 2
    maintainer = 3
    admin = 4


#: permission -> the least role that holds it
PERMISSIONS: dict[str, Role] = {
    "project:read": Role.viewer,
    "runs:read": Role.viewer,
    "runs:write": Role.operator,  # submit, cancel, retry, upload snapshots
    "repos:read": Role.viewer,
    "repos:write": Role.maintainer,
    "definitions:read": Role.viewer,
    "definitions:write": Role.maintainer,  # create, edit drafts, publish, archive versions
    "tags:write": Role.maintainer,  # promote and roll back ($LIVE, $STAGING, ...)
    "instances:read": Role.viewer,
    "triggers:read": Role.viewer,
    "approvals:read": Role.viewer,
    # anyone in the project may be named an approver; the step's approvers decide who may
    "approvals:write": Role.viewer,
    "triggers:write": Role.maintainer,  # pause and resume
    "instances:write": Role.maintainer,
    "notifications:read": Role.viewer,  # channels (secrets by name only), subscriptions, log
    "notifications:write": Role.maintainer,
    "resources:read": Role.viewer,
    "resources:write": Role.maintainer,  # create, write versions (runs write through steps)
    "secrets:read": Role.maintainer,  # names only: values are never readable
    "secrets:write": Role.maintainer,
    "members:read": Role.admin,
    "members:write": Role.admin,
    "audit:read": Role.admin,
    "deployments:read": Role.viewer,
    "deployments:write": Role.maintainer,  # plan, deploy, roll back, pause, resume, delete
}


def parse_role(value: str) -> Role:
    try:
        return Role[value]
    except KeyError:
        names = ", ".join(r.name for r in Role)
        raise ValueError(f"unknown role '{value}'; roles are {names}") from None
