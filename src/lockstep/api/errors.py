"""The one place where error categories become HTTP statuses (RFC 9457 problem details)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lockstep import errors

log = logging.getLogger(__name__)

#: the one table from error category to HTTP status. 500 is kept for what no category
#: covers: a bug, answered "internal error; see the server log"
STATUS: dict[type[errors.LockstepError], int] = {
    errors.SpecError: 422,
    errors.ParamError: 422,
    errors.InvalidRequest: 400,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.PayloadTooLarge: 413,
    errors.Unavailable: 503,
    # the server cannot do this as it is set up (its secret key unreadable, a driver
    # missing): unavailable until its operator acts, and the detail says what to fix
    errors.ConfigError: 503,
    # the machinery behind the server (a container runtime, a store) failed at the work
    errors.ExecutionError: 502,
}
PROBLEM = "application/problem+json"
TYPE_BASE = "https://lockstep.dev/problems/"


def status_for(exc: errors.LockstepError | type[errors.LockstepError]) -> int:
    return STATUS.get(errors.category(exc), 500)


def problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.LockstepError)
    async def _lockstep(_: Request, exc: errors.LockstepError) -> JSONResponse:
        extra: dict[str, Any] = dict(exc.fields())
        if isinstance(exc, errors.SpecError):
            extra["diagnostics"] = [d.as_dict() for d in exc.diagnostics]
        if isinstance(exc, errors.ParamError):
            extra["problems"] = exc.problems
        status = status_for(exc)
        resp = problem(status, exc.kind, exc.kind.replace("-", " "), str(exc), **extra)
        if status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="lockstep"'
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        from lockstep.api.validation import explain  # it imports the routers' patterns

        problems = [explain(err) for err in exc.errors()]
        detail = "; ".join(problems[:3]) if problems else "invalid request"
        if len(problems) > 3:
            detail += f" (and {len(problems) - 3} more)"
        return problem(422, "invalid-request", "invalid request", detail, problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem(exc.status_code, kind, kind.replace("-", " "), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("api.unexpected_error")
        return problem(500, "internal", "internal error", "internal error; see the server log")
