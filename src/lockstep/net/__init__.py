"""Outbound HTTP, guarded: one client for every call to a URL a user wrote."""

from lockstep.net.addresses import ALLOW_SETTING, OutboundPolicy
from lockstep.net.client import MAX_REDIRECTS, GuardedClient, OutboundRefused

__all__ = ["ALLOW_SETTING", "MAX_REDIRECTS", "GuardedClient", "OutboundPolicy", "OutboundRefused"]
