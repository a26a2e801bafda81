"""Notification channels: one module per kind (``webhook``, ``slack``, ``email``) behind the
``Channel`` protocol of ``base``, registered by kind name in ``registry``. What is sent is a
``Message`` (``message``), built from an event and masked before any channel sees it."""

from lockstep.notify.base import Channel, DeliveryFailed, Message
from lockstep.notify.registry import CHANNELS, channel_for

__all__ = ["CHANNELS", "Channel", "DeliveryFailed", "Message", "channel_for"]
