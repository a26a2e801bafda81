"""What each kind of trigger's params and filter read: its event, under one root. Stdlib only,
so the server's trigger plumbing can know it without loading the spec's models or CEL."""

from __future__ import annotations

EVENT_ROOT = {
    "schedule": "schedule",
    "webhook": "event",
    "git": "git",
    "upstream": "upstream",
    "resource": "resource",
}
