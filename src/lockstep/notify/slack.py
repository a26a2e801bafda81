"""A Slack-compatible incoming webhook: ``text`` (the fallback every client shows) and
``blocks`` (a header, the fields, a link to the run), in Slack's mrkdwn with ``&<>`` escaped so
a step's text cannot make links or mentions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from lockstep.errors import InvalidRequest
from lockstep.net.addresses import OutboundPolicy
from lockstep.notify.base import DeliveryFailed, Message, checked_url, parsed, secret_ref
from lockstep.notify.http import post


class SlackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the incoming webhook's URL (https://hooks.slack.com/services/…, or a compatible one)
    url: str | None = None
    #: or the project secret holding it: Slack's URL is itself a credential (anyone holding
    #: it may post), so a channel that names a secret shows no one the URL
    url_secret: str | None = None


def escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(message: Message) -> dict[str, Any]:
    """The incoming-webhook JSON of ``message``."""
    title = escaped(message.title)
    details = "\n".join(f"*{escaped(k)}:* {escaped(v)}" for k, v in message.fields.items())
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": details or title}},
    ]
    if message.link:
        link = f"<{escaped(message.link)}|Open the run>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    text = escaped(message.title) + (f" {escaped(message.link)}" if message.link else "")
    return {"text": text, "blocks": blocks}


class SlackChannel:
    kind = "slack"

    def check(self, settings: Mapping[str, Any], policy: OutboundPolicy) -> dict[str, Any]:
        got = parsed(self.kind, SlackSettings, settings)
        if (got.url is None) == (got.url_secret is None):
            raise InvalidRequest(
                "slack channel: give 'url' or 'url_secret' (the project secret holding the "
                "webhook URL), one of them"
            )
        if got.url is not None:
            checked_url(self.kind, "url", got.url, policy)
            return {"url": got.url}
        return {"url_secret": secret_ref(self.kind, "url_secret", got.url_secret or "")}

    def secret_names(self, settings: Mapping[str, Any]) -> list[str]:
        name = settings.get("url_secret")
        return [str(name)] if name else []

    async def send(
        self,
        settings: Mapping[str, Any],
        message: Message,
        secrets: Mapping[str, str],
        policy: OutboundPolicy,
    ) -> None:
        url = settings.get("url")
        if url is None:  # read from its secret now; checked as a saved URL would have been
            try:
                url = checked_url(self.kind, "url_secret", secrets[settings["url_secret"]], policy)
            except InvalidRequest as exc:
                raise DeliveryFailed(str(exc), retry=False) from None
        body = json.dumps(payload(message)).encode()
        await post(str(url), body, {"content-type": "application/json"}, policy)
