"""Steps the engine decides without a worker while the run waits: ``approval:`` (people approve
or reject, optionally with typed input) and ``wait:`` (a durable timer). Both hold no worker and
survive restarts: the wait is Temporal's (an update or a timer), not a process's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lockstep.spec.durations import Duration

#: ``alice`` (a user), ``role:maintainer`` (anyone holding that role or a higher one)
APPROVER_PATTERN = r"^(role:(viewer|operator|maintainer|admin)|[A-Za-z0-9][A-Za-z0-9._@-]{0,99})$"
Approver = Annotated[str, StringConstraints(pattern=APPROVER_PATTERN)]
ON_TIMEOUT = ("reject", "approve", "fail")


class ApprovalSpec(BaseModel):
    """Wait until ``required`` distinct allowed people approve (one rejection ends it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approvers: list[Approver] = Field(
        default_factory=list,
        max_length=100,
        description="users ('alice') or roles ('role:maintainer'); none: any operator or above",
    )
    required: int = Field(1, ge=1, le=20, description="how many distinct people must approve")
    allow_self: bool = Field(
        True, description="false: the person who started the run cannot approve it"
    )
    input: dict[str, Any] | None = Field(
        None, description="JSON Schema of what an approver gives; it becomes the step's outputs"
    )
    timeout: Duration | None = Field(None, description="how long to wait for a decision")
    on_timeout: Literal["reject", "approve", "fail"] = Field(
        "fail", description="when the timeout passes: reject, approve, or fail the step"
    )
    message: str | None = Field(
        None, max_length=4000, description="what approvers read; may hold ${{ }} expressions"
    )


class WaitUntil(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    until: str = Field(
        max_length=2000, description="an ISO 8601 instant, e.g. ${{ params.release_at }}"
    )


#: ``wait: 10m`` or ``wait: {until: ...}``
WaitSpec = Duration | WaitUntil
