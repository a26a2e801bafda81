"""Webhook triggers: an HTTP delivery to ``POST /api/v1/hooks/{project}/{definition}/{trigger}``
(or ``/{project}/{trigger}`` when that id is one webhook trigger of the project) becomes one
fire of the trigger, once per delivery id.

A delivery proves itself with the trigger's project secret — an HMAC-SHA256 of the raw body
(GitHub's ``sha256=<hex>``) or a bearer token — compared in constant time; from outside, an
unknown project or trigger and a bad signature look the same. The fire is recorded before the
answer, so a delivery answered 202 has its run even if the server dies right after: the
server's start-up sweep handles what was left ``accepted``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lockstep.errors import (
    Conflict,
    InvalidRequest,
    LockstepError,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from lockstep.records import Cause, CauseKind
from lockstep.services.secrets import SecretService
from lockstep.services.triggers import FireRecord, Registered, TriggerService
from lockstep.services.triggers import fire_status as status
from lockstep.triggers.dispatch import Dispatcher, Event

if TYPE_CHECKING:
    # CEL and the spec's models load with the first delivery, not with every process that
    # builds the services (a `runs list` does)
    from lockstep.spec.triggers import WebhookTrigger

log = logging.getLogger(__name__)

#: the one answer to every delivery that does not prove itself (unknown trigger, bad signature)
REJECTED = "webhook not accepted: unknown trigger or invalid signature"
#: where a delivery id is looked for when the trigger does not say (the first one present)
DELIVERY_HEADERS = ("x-github-delivery", "x-gitea-delivery", "x-request-id")
#: headers never kept with the event (they carry credentials)
HIDDEN_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
#: the most of a body that is not JSON kept as ``event.raw`` (characters)
MAX_RAW = 64 * 1024
#: a delivery id longer than this (or with control characters) is kept as its digest
MAX_DELIVERY_ID = 190
#: a fire whose handling finds the engine or database away is tried again this many times
#: (then the sweep at the next start takes it)
RETRIES = 8


@dataclass(frozen=True)
class Delivery:
    """What arrived: the raw body and the headers (names lower-cased)."""

    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Received:
    """A delivery recorded as a fire (``new`` False: the delivery id was seen before)."""

    delivery: str
    fire: FireRecord
    new: bool


class Webhooks:
    def __init__(
        self, triggers: TriggerService, secrets: SecretService, dispatcher: Dispatcher
    ) -> None:
        self._triggers = triggers
        self._secrets = secrets
        self._dispatcher = dispatcher
        #: fires being handled after their answer (a task nobody references may be collected)
        self._pending: set[asyncio.Task[None]] = set()

    async def receive(
        self, project: str, definition: str | None, trigger_id: str, delivery: Delivery
    ) -> Received:
        """Authenticate ``delivery`` for the trigger, record it as a fire (once per delivery
        id), and start handling a new one in the background."""
        trigger, spec = await self._authentic(project, definition, trigger_id, delivery)
        event = event_of(spec, delivery)
        digest = "sha256:" + hashlib.sha256(delivery.body).hexdigest()
        problem: str | None = None
        try:
            key = delivery_id(spec, event, delivery)
        except LockstepError as exc:
            key, problem = digest, f"delivery id: {exc}"
        if problem is None and event["body"] is None and reads_body(spec):
            problem = (
                f"the delivery's body is not JSON, and trigger '{trigger_id}' reads event.body; "
                "send a JSON body (or read event.raw)"
            )
        fire, new = await self._dispatcher.accept(
            trigger,
            Event(
                key=key,
                data=event,
                cause=Cause(
                    kind=CauseKind.WEBHOOK, trigger=trigger_id, delivery=key, payload_digest=digest
                ),
                payload_digest=digest,
            ),
        )
        if new and problem is not None:
            fire = await self._triggers.finish_fire(fire.id, status.FAILED, error=problem)
            log.info("webhook.failed", extra={"trigger": trigger_id, "fire": fire.id})
        elif new:
            self._later(fire)
        return Received(delivery=key, fire=fire, new=new)

    async def close(self) -> None:
        """Stop handling (a fire cut short stays accepted: the next start's sweep takes it)."""
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)

    async def _authentic(
        self, project: str, definition: str | None, trigger_id: str, delivery: Delivery
    ) -> tuple[Registered, WebhookTrigger]:
        candidates = await self._listening(project, definition, trigger_id)
        proven = [c for c in candidates if await self._proves(c, delivery)]
        if not proven:
            raise Unauthenticated(REJECTED)
        if len(candidates) > 1:
            # said only to a caller holding one of their secrets: the names are not public
            names = ", ".join(sorted(c[0].definition for c in candidates))
            raise Conflict(
                f"trigger '{trigger_id}' is a webhook trigger of several definitions in "
                f"project '{project}' ({names}); post to "
                f"/api/v1/hooks/{project}/<definition>/{trigger_id}"
            )
        return proven[0]

    async def _listening(
        self, project: str, definition: str | None, trigger_id: str
    ) -> list[tuple[Registered, WebhookTrigger]]:
        from lockstep.spec.triggers import WebhookTrigger

        if definition is None:
            listed = await self._triggers.of_kind(project, "webhook")
            rows = [r for r in listed if r.trigger == trigger_id]
        else:
            try:
                rows = [await self._triggers.registered(project, definition, trigger_id)]
            except NotFound:
                return []
        return [(r, WebhookTrigger.model_validate(r.spec)) for r in rows if r.kind == "webhook"]

    async def _proves(self, candidate: tuple[Registered, WebhookTrigger], d: Delivery) -> bool:
        trigger, spec = candidate
        secret = await self._secrets.verifier(trigger.project, spec.secret)
        if secret is None:
            log.warning(
                "webhook.secret_missing",
                extra={
                    "project": trigger.project,
                    "trigger": trigger.trigger,
                    "secret": spec.secret,
                },
            )
            return False
        return authentic(spec, secret, d)

    def _later(self, fire: FireRecord) -> None:
        task = asyncio.create_task(self._handle(fire))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _handle(self, fire: FireRecord) -> None:
        for attempt in range(RETRIES):
            try:
                await self._dispatcher.handle(fire)
                return
            except Unavailable as exc:
                log.warning("webhook.deferred", extra={"fire": fire.id, "reason": str(exc)})
                await asyncio.sleep(min(2.0**attempt, 60.0))
            except Exception:
                log.exception("webhook.handle_failed", extra={"fire": fire.id})
                return


def authentic(spec: WebhookTrigger, secret: str, delivery: Delivery) -> bool:
    """Whether ``delivery`` carries the trigger's proof: the body's HMAC-SHA256 keyed with
    ``secret`` in ``signature_header`` (hmac), or ``Bearer <secret>`` (token)."""
    if spec.auth == "token":
        scheme, _, token = delivery.headers.get("authorization", "").partition(" ")
        given, wanted = token.strip(), secret
        if scheme.lower() != "bearer":
            given = ""
    else:
        given = delivery.headers.get(spec.signature_header.lower(), "").strip()
        wanted = "sha256=" + hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    return bool(given) and hmac.compare_digest(given.encode(), wanted.encode())


def event_of(spec: WebhookTrigger, delivery: Delivery) -> dict[str, Any]:
    """What the trigger's params and filter read as ``event``: the body parsed as JSON (None
    when it is not JSON, its text then in ``raw``) and the headers, credentials left out."""
    body: Any = None
    raw: str | None = None
    try:
        body = json.loads(delivery.body)
    except (ValueError, RecursionError):
        raw = delivery.body[: MAX_RAW * 4].decode("utf-8", errors="replace")[:MAX_RAW]
    hidden = HIDDEN_HEADERS | {spec.signature_header.lower()}
    headers = {k.lower(): v for k, v in delivery.headers.items() if k.lower() not in hidden}
    return {"body": body, "headers": headers, "raw": raw}


def delivery_id(spec: WebhookTrigger, event: dict[str, Any], delivery: Delivery) -> str:
    """The id that makes a delivery sent twice one fire: the trigger's ``delivery`` (a header,
    or a ``${{ }}`` over ``event``), else a usual delivery header, else the body's digest."""
    if spec.delivery is None:
        for name in DELIVERY_HEADERS:
            if value := delivery.headers.get(name, "").strip():
                return _bounded(value)
        return "sha256:" + hashlib.sha256(delivery.body).hexdigest()
    if "${{" in spec.delivery:
        from lockstep.spec.expressions import render, to_text

        value = to_text(render(spec.delivery, {"event": event})).strip()
        if not value:
            raise InvalidRequest(f"'{spec.delivery}' gave an empty delivery id")
        return _bounded(value)
    given = delivery.headers.get(spec.delivery.lower(), "").strip()
    if not given:
        raise InvalidRequest(f"the delivery has no '{spec.delivery}' header (its delivery id)")
    return _bounded(given)


def reads_body(spec: WebhookTrigger) -> bool:
    """Whether the trigger's params or filter read ``event.body``."""
    from lockstep.spec.expressions import condition_source, find_templates, references

    sources = [
        t.source for v in spec.params.values() if isinstance(v, str) for t in find_templates(v)
    ]
    if spec.filter is not None:
        sources.append(condition_source(spec.filter) or "true")
    return any(chain[:2] == ("event", "body") for src in sources for chain in references(src))


def _bounded(value: str) -> str:
    if len(value) <= MAX_DELIVERY_ID and value.isprintable():
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
