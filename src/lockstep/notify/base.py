"""The one protocol every notification channel satisfies, and what the channels share:
settings checked when a channel is saved (URLs, secrets by reference only) and the message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from lockstep.errors import InvalidRequest
from lockstep.net.addresses import OutboundPolicy, literal_address
from lockstep.spec.names import SECRET_NAME_PATTERN

_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Message:
    """What a notification says, already masked and with control characters spelled out."""

    event: str
    title: str
    #: shown fields in order: run, definition, status, error…
    fields: dict[str, str]
    link: str | None = None
    #: the event's subject as JSON (a generic webhook's receiver reads this)
    subject: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        lines = [self.title, *(f"{k}: {v}" for k, v in self.fields.items())]
        if self.link:
            lines.append(self.link)
        return "\n".join(lines)


class DeliveryFailed(Exception):
    """A send that did not arrive; ``retry`` False when trying again cannot help (refused)."""

    def __init__(self, reason: str, *, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class Channel(Protocol):
    """A kind of notification channel (``webhook``, ``slack``, ``email``)."""

    kind: str

    def check(self, settings: Mapping[str, Any], policy: OutboundPolicy) -> dict[str, Any]:
        """The settings as stored; ``InvalidRequest`` (one line) for anything wrong."""
        ...

    def secret_names(self, settings: Mapping[str, Any]) -> list[str]:
        """The project secrets these settings name (checked to exist when saved)."""
        ...

    async def send(
        self,
        settings: Mapping[str, Any],
        message: Message,
        secrets: Mapping[str, str],
        policy: OutboundPolicy,
    ) -> None:
        """Deliver ``message``; ``DeliveryFailed`` when it did not arrive."""
        ...


def parsed(kind: str, model: type[M], settings: Mapping[str, Any]) -> M:
    """``settings`` as ``model``, or one line naming the first wrong field."""
    try:
        return model.model_validate(dict(settings))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        said = str(first["msg"])
        if first["type"] == "extra_forbidden":
            said = f"is not a setting of {kind} channels"
        elif first["type"] == "missing":
            said = "is required"
        raise InvalidRequest(f"{kind} channel: '{where}' {said}") from None


def secret_ref(kind: str, key: str, value: str) -> str:
    """``value`` when it names a project secret; a value given inline is refused."""
    if not _SECRET_NAME.fullmatch(value):
        raise InvalidRequest(
            f"{kind} channel: '{key}' must name a project secret (e.g. {key.upper()}_SECRET, "
            "set with `lockstep secrets set NAME`), not hold the value itself"
        )
    return value


def checked_url(kind: str, key: str, url: str, policy: OutboundPolicy) -> str:
    """An http(s) URL whose host, when written as an address, the server may reach (a name
    is judged after DNS resolution at every delivery)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise InvalidRequest(f"{kind} channel: '{key}' is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequest(
            f"{kind} channel: '{key}' must be an http:// or https:// URL with a host"
        )
    literal = literal_address(host)
    if literal is not None:
        refusal = policy.refusal(literal)
        if refusal is not None:
            raise InvalidRequest(
                f"{kind} channel: '{key}' points at {literal}, {refusal}; notifications reach "
                f"public addresses only (to allow it set {policy.suggestion(literal)})"
            )
    return url
