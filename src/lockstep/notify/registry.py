"""Every notification channel, registered under its kind name: a new kind is one module plus
one line here."""

from __future__ import annotations

from lockstep.errors import InvalidRequest
from lockstep.notify.base import Channel
from lockstep.notify.email import EmailChannel
from lockstep.notify.slack import SlackChannel
from lockstep.notify.webhook import WebhookChannel
from lockstep.spec.hints import did_you_mean

CHANNELS: dict[str, Channel] = {
    "webhook": WebhookChannel(),
    "slack": SlackChannel(),
    "email": EmailChannel(),
}


def channel_for(kind: str) -> Channel:
    try:
        return CHANNELS[kind]
    except KeyError:
        hint = did_you_mean(kind, CHANNELS) or f"; kinds are {', '.join(CHANNELS)}"
        raise InvalidRequest(f"unknown channel kind '{kind}'{hint}") from None
