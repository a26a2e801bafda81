"""What the server answers for the web UI: its page at ``/``, its assets, log in and out.

The pages are plain HTML, CSS and JavaScript modules shipped inside the package (no build
step, no CDN); everything they show comes from the API, with the same routes and roles as the
CLI. Routing inside the UI is by the URL's fragment (``/#/p/default/runs``), so the server
has one page to serve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api import session
from lockstep.api.deps import Services, services
from lockstep.errors import PermissionDenied, Unauthenticated

#: the pages and assets, shipped in the package ``lockstep.ui`` (data only: no code)
STATIC = Path(__file__).parents[2] / "ui" / "static"
router = APIRouter(include_in_schema=False)
Svc = Annotated[Services, Depends(services)]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=session.MAX_TOKEN)


class LoginOut(BaseModel):
    user: str


def _page() -> str:
    """index.html with a ``modulepreload`` link per script module: the browser asks for all of
    them at once instead of finding each import only after the module that imports it has
    arrived (four round trips deep: main → run → drawer → items)."""
    links = "".join(
        f'  <link rel="modulepreload" href="/ui/static/js/{module.name}">\n'
        for module in sorted((STATIC / "js").glob("*.js"))
    )
    return (
        (STATIC / "index.html").read_text(encoding="utf-8").replace("</head>", links + "</head>", 1)
    )


@router.get("/")
async def index() -> HTMLResponse:
    return HTMLResponse(_page(), headers={"cache-control": "no-cache"})


def _same_origin(request: Request) -> None:
    """A login or logout posted by another site's page is refused (login CSRF)."""
    origin = request.headers.get("origin")
    # the host alone: behind a proxy that ends TLS the page is https and the server sees http
    if origin is not None and urlsplit(origin).netloc != request.url.netloc:
        raise PermissionDenied("log in from lockstep's own page, not from another site")


@router.post("/ui/login", response_model=LoginOut)
async def login(body: LoginIn, request: Request, response: Response, svc: Svc) -> LoginOut:
    """Check an API token and keep it in the browser's HttpOnly session cookie."""
    _same_origin(request)
    token = body.token.strip()
    if not token:
        raise Unauthenticated("enter an API token (lockstep tokens create NAME prints one)")
    who = await svc.tokens.authenticate(token)
    session.start(response, request, token)
    return LoginOut(user=who.name)


@router.post("/ui/logout", status_code=204)
async def logout(request: Request, response: Response) -> None:
    _same_origin(request)
    token = session.cookie_token(request)
    if token is not None:
        session.check_csrf(request, token)
    session.end(response, request)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
