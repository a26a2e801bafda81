"""Security headers: every answer is ``nosniff``; the UI's pages get a strict CSP."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: no inline script or style, nothing from another origin, never framed
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
_UI = [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY")]


def _is_ui(path: str) -> bool:
    return path == "/" or path.startswith("/ui/")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _ALWAYS + (_UI if _is_ui(scope["path"]) else [])

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in names
                ]
            await send(message)

        await self.app(scope, receive, add)
