"""Refuse oversized request bodies before any work (413), also when no length is declared."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockstep.api.errors import PROBLEM, TYPE_BASE


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        overrides: dict[str, int],
        suffix_overrides: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.overrides = overrides
        self.suffixes = suffix_overrides or {}  # path ending -> limit (e.g. "/snapshots")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.overrides.get(path) or next(
            (v for k, v in self.suffixes.items() if path.endswith(k)), self.default
        )
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        exceeded = False

        async def limited() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _TooLarge
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            # the app may turn our exception into its own error response: replace it
            nonlocal started
            if exceeded:
                if not started:
                    started = True
                    await _too_large(send, limit)
                return
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except _TooLarge:
            if not started:
                await _too_large(send, limit)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body: dict[str, Any] = {
        "type": TYPE_BASE + "payload-too-large",
        "title": "payload too large",
        "status": 413,
        "detail": f"request body is larger than {limit} bytes",
    }
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
