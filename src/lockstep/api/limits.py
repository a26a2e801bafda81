"""Refuse oversized request bodies before any work (413), also when no length is declared,
and bodies that do not arrive in time (408)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
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
        prefix_overrides: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.overrides = overrides
        self.suffixes = suffix_overrides or {}  # path ending -> limit (e.g. "/snapshots")
        self.prefixes = prefix_overrides or {}  # path start -> limit (e.g. "/api/v1/hooks/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.overrides.get(path) or next(
            (v for k, v in self.suffixes.items() if path.endswith(k)),
            next((v for k, v in self.prefixes.items() if path.startswith(k)), self.default),
        )
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        refusal = _Refusal(send, lambda out: _too_large(out, limit))

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refusal.refused = True
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, refusal.send)
        except _TooLarge:
            await refusal.answer_once()


class _Refusal:
    """Our own error answer, sent once in place of the app's: after the middleware raised
    inside the app's ``receive``, the app may turn that into an error response of its own,
    which is swallowed."""

    def __init__(self, send: Send, answer: Callable[[Send], Awaitable[None]]) -> None:
        self._send = send
        self._answer = answer
        self.refused = False
        self._started = False

    async def send(self, message: Message) -> None:
        if self.refused:
            await self.answer_once()
            return
        self._started = self._started or message["type"] == "http.response.start"
        await self._send(message)

    async def answer_once(self) -> None:
        if not self._started:
            self._started = True
            await self._answer(self._send)


class _TooLarge(Exception):
    pass


#: every this many bytes of body received buy one more second: a big upload at a normal rate
#: (a 10 GiB artifact from a remote worker) is never cut, a trickle is
EARNED_BYTES_PER_S = 64 * 1024


class BodyTimeout:
    """A request's body must arrive within ``seconds`` of the request head, plus a second
    per 64 KiB received, or the answer is 408 and the connection is closed: a client sending
    1 byte a second holds nothing for long. Once the body is in, ``receive`` waits freely (a
    stream listening for the client to go away)."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        seen = 0
        body_done = False
        refusal = _Refusal(send, lambda out: _timed_out(out, self.seconds))

        async def timed() -> Message:
            nonlocal seen, body_done
            if body_done:
                return await receive()
            left = deadline + seen / EARNED_BYTES_PER_S - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(left, 0.0))
            except TimeoutError:
                refusal.refused = True
                raise _Late from None
            seen += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        try:
            await self.app(scope, timed, refusal.send)
        except _Late:
            await refusal.answer_once()


class _Late(Exception):
    pass


async def _timed_out(send: Send, seconds: float) -> None:
    detail = f"the request body did not arrive within {seconds:g} s; send it again"
    await _problem(send, 408, "request timeout", detail, close=True)


async def _too_large(send: Send, limit: int) -> None:
    detail = f"request body is larger than {limit} bytes"
    await _problem(send, 413, "payload too large", detail)


async def _problem(send: Send, status: int, title: str, detail: str, close: bool = False) -> None:
    body: dict[str, Any] = {
        "type": TYPE_BASE + title.replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
    }
    data = json.dumps(body).encode()
    headers = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(data)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
