"""A generic webhook: the event as a JSON body, POSTed and signed with HMAC-SHA256 of the
exact body under a project secret (``X-Lockstep-Signature: sha256=<hex>``)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from lockstep.net.addresses import OutboundPolicy
from lockstep.notify.base import Message, checked_url, parsed, secret_ref
from lockstep.notify.http import post

SIGNATURE_HEADER = "x-lockstep-signature"
EVENT_HEADER = "x-lockstep-event"


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    #: the project secret whose value keys the signature
    secret: str


def signature(key: str, body: bytes) -> str:
    """The ``X-Lockstep-Signature`` value of ``body``: a receiver computes it and compares."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    kind = "webhook"

    def check(self, settings: Mapping[str, Any], policy: OutboundPolicy) -> dict[str, Any]:
        got = parsed(self.kind, WebhookSettings, settings)
        checked_url(self.kind, "url", got.url, policy)
        secret_ref(self.kind, "secret", got.secret)
        return got.model_dump()

    def secret_names(self, settings: Mapping[str, Any]) -> list[str]:
        return [str(settings["secret"])]

    async def send(
        self,
        settings: Mapping[str, Any],
        message: Message,
        secrets: Mapping[str, str],
        policy: OutboundPolicy,
    ) -> None:
        body = json.dumps(
            {
                "event": message.event,
                "title": message.title,
                "text": message.text(),
                "link": message.link,
                "subject": message.subject,
            },
            sort_keys=True,
        ).encode()
        headers = {
            "content-type": "application/json",
            EVENT_HEADER: message.event,
            SIGNATURE_HEADER: signature(secrets[settings["secret"]], body),
        }
        await post(str(settings["url"]), body, headers, policy)
