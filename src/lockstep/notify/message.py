"""The message of an event: a title, the subject's fields and a link to the run, with secret
values masked as logs are and control characters spelled out as the CLI shows them."""

from __future__ import annotations

from typing import Any

from lockstep.notify.base import Message
from lockstep.secrets.masking import Masker
from lockstep.spec.hints import visible

#: fields shown first, in this order; any other field of the subject follows
_ORDER = ("run_id", "definition", "instance", "step", "status", "error", "stderr")
#: a longer value is cut: a message is a hint, the whole story is in the run's record
MAX_FIELD_CHARS = 400


def render(event: str, subject: dict[str, Any], link: str | None, masker: Masker) -> Message:
    """The message of ``event`` about ``subject`` (keys starting with ``_`` are internal),
    pointing at ``link`` (the run's page)."""
    shown = {k: v for k, v in subject.items() if not k.startswith("_") and v not in (None, "")}
    safe = {k: _safe(v, masker) for k, v in shown.items()}
    fields = {k: _clip(str(safe[k])) for k in _ORDER if k in safe}
    fields |= {k: _clip(str(v)) for k, v in safe.items() if k not in fields}
    run, definition = fields.get("run_id"), fields.get("definition")
    if event.startswith("run.") and run:
        title = f"Run {run} of {definition or 'a workflow'} {fields.get('status', event[4:])}"
    elif run:
        title = f"{event}: run {run} of {definition or 'a workflow'}"
    else:
        title = f"{event}: {definition or fields.get('trigger') or 'lockstep'}"
    return Message(event=event, title=title, fields=fields, link=link, subject=safe)


def _safe(value: Any, masker: Masker) -> Any:
    masked = masker.mask_value(value)
    if isinstance(masked, str):
        return visible(masked)
    if isinstance(masked, list):
        return [_safe(v, masker) for v in masked]
    if isinstance(masked, dict):
        return {visible(str(k)): _safe(v, masker) for k, v in masked.items()}
    return masked


def _clip(text: str) -> str:
    return text if len(text) <= MAX_FIELD_CHARS else text[: MAX_FIELD_CHARS - 3] + "..."
