"""The browser's session: an API token kept in an HttpOnly cookie, and its CSRF token.

The web UI is one more client of the API. A browser cannot hold a bearer token safely in
script, so ``POST /ui/login`` puts it in an HttpOnly, SameSite=Strict cookie, and ``principal``
(``api/deps.py``) takes it from there when a request carries no Authorization header. A
request that changes something must then also carry ``X-CSRF-Token``: a value derived from the
session's token (a hash nobody can invert), handed to the page in a readable cookie. A page of
another origin can neither read that cookie nor set the header, so it cannot make the browser
act. Bearer-token clients (the CLI, scripts) are unchanged: they send no cookie.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request, Response

from lockstep.errors import PermissionDenied

SESSION_COOKIE = "lockstep_session"
CSRF_COOKIE = "lockstep_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: longer than any token lockstep makes; a bigger cookie is not one of ours
MAX_TOKEN = 500


def csrf_for(token: str) -> str:
    """The CSRF token bound to a session's API token (stateless: any server process agrees)."""
    return hashlib.sha256(b"lockstep-csrf\0" + token.encode()).hexdigest()


def cookie_token(request: Request) -> str | None:
    """The API token of the browser's session, if the request carries one."""
    token = request.cookies.get(SESSION_COOKIE, "").strip()
    return token if 0 < len(token) <= MAX_TOKEN else None


def check_csrf(request: Request, token: str) -> None:
    """Refuse a cookie-authenticated request that changes something without its CSRF token."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_for(token).encode()):
        raise PermissionDenied(
            "missing or wrong CSRF token (X-CSRF-Token): reload the page and try again"
        )


def start(response: Response, request: Request, token: str) -> None:
    """Set the session's cookies on a successful login."""
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/"
    )
    # readable by the page's script (it sends it back as a header), and by nobody else
    response.set_cookie(
        CSRF_COOKIE, csrf_for(token), httponly=False, samesite="strict", secure=secure, path="/"
    )


def end(response: Response, request: Request) -> None:
    """Clear the session's cookies."""
    secure = request.url.scheme == "https"
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(
            name, path="/", samesite="strict", secure=secure, httponly=name == SESSION_COOKIE
        )
