"""How the CLI reaches lockstep: a server's REST API, or an embedded control plane.

Both go through the same HTTP API (the embedded one in-process via an ASGI transport), so
every command has one code path.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from lockstep import errors
from lockstep.cli import credentials
from lockstep.records import RunPage, RunRecord
from lockstep.server.home import local_admin_token, running_server
from lockstep.settings import Settings

_KINDS: dict[str, type[errors.LockstepError]] = {
    "not-found": errors.NotFound,
    "conflict": errors.Conflict,
    "unauthenticated": errors.Unauthenticated,
    "permission-denied": errors.PermissionDenied,
    "payload-too-large": errors.PayloadTooLarge,
    "unavailable": errors.EngineUnavailable,
    "invalid-request": errors.InvalidRequest,
}


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        body = resp.json()
    except ValueError:
        body = {}
    detail = str(body.get("detail") or resp.text[:200] or resp.reason_phrase)
    kind = str(body.get("type", "")).rsplit("/", 1)[-1]
    if kind == "invalid-spec":
        raise errors.SpecError(
            [errors.Diagnostic(**d) for d in body.get("diagnostics", [])]
            or [errors.Diagnostic(detail)]
        )
    if kind == "invalid-params":
        raise errors.ParamError(detail, body.get("problems"))
    raise _KINDS.get(kind, errors.LockstepError)(detail)


class ApiClient:
    """Typed calls of ``/api/v1``."""

    def __init__(
        self, http: httpx.AsyncClient, where: str, *, embedded: bool, project: str
    ) -> None:
        self.http = http
        self.where = where
        self.embedded = embedded
        self.project = project
        self._p = f"/projects/{_seg(project)}"

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = await self.http.request(method, "/api/v1" + path, **kwargs)
        except httpx.HTTPError as exc:
            raise errors.EngineUnavailable(f"cannot reach lockstep at {self.where}: {exc}") from exc
        _raise_for(resp)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    async def download(self, path: str, dest: Path) -> int:
        """Stream ``path`` into ``dest`` (written under a temporary name, then renamed)."""
        part = dest.with_name(dest.name + ".part")
        size = 0
        try:
            async with self.http.stream("GET", "/api/v1" + path) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    _raise_for(resp)
                with part.open("wb") as out:
                    async for chunk in resp.aiter_bytes():
                        out.write(chunk)
                        size += len(chunk)
        except httpx.HTTPError as exc:
            part.unlink(missing_ok=True)
            raise errors.EngineUnavailable(f"cannot reach lockstep at {self.where}: {exc}") from exc
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        part.replace(dest)
        return size

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any API call (paths relative to /api/v1), for the admin commands."""
        return await self._call(method, path, **kwargs)

    async def upload_snapshot(self, path: Path) -> str:
        with path.open("rb") as fh:
            data = await self._call(
                "POST",
                f"{self._p}/snapshots",
                content=fh.read(),
                headers={"content-type": "application/gzip"},
            )
        return str(data["snapshot"])

    async def submit(self, body: dict[str, Any]) -> RunRecord:
        return RunRecord.model_validate(await self._call("POST", f"{self._p}/runs", json=body))

    async def get_run(self, run_id: str) -> RunRecord:
        return RunRecord.model_validate(await self._call("GET", f"{self._p}/runs/{_seg(run_id)}"))

    async def list_runs(self, **query: Any) -> RunPage:
        params = {k: v for k, v in query.items() if v is not None}
        return RunPage.model_validate(await self._call("GET", f"{self._p}/runs", params=params))

    async def logs(self, run_id: str, *, step: str | None, cursor: str | None) -> dict[str, Any]:
        params = {k: v for k, v in {"step": step, "cursor": cursor}.items() if v}
        data: dict[str, Any] = await self._call(
            "GET", f"{self._p}/runs/{_seg(run_id)}/logs", params=params
        )
        return data

    async def cancel(self, run_id: str) -> RunRecord:
        return RunRecord.model_validate(
            await self._call("POST", f"{self._p}/runs/{_seg(run_id)}/cancel")
        )

    async def rerun(self, run_id: str, *, latest: bool) -> RunRecord:
        path = f"{self._p}/runs/{_seg(run_id)}/rerun"
        return RunRecord.model_validate(await self._call("POST", path, json={"latest": latest}))

    async def retry(self, run_id: str) -> RunRecord:
        return RunRecord.model_validate(
            await self._call("POST", f"{self._p}/runs/{_seg(run_id)}/retry")
        )


def _seg(value: str) -> str:
    # ids travel in the path: refuse anything that could change the route
    if not value or any(c in value for c in "/?#%\\") or value in (".", ".."):
        raise errors.InvalidRequest(f"invalid id {value!r}")
    return value


@contextlib.asynccontextmanager
async def connect(settings: Settings, *, engine: bool) -> AsyncIterator[ApiClient]:
    """A client for this invocation. ``engine``: the command needs runs to execute."""
    url, token = settings.url, settings.token
    if url is None:
        info = running_server(settings.home_dir)
        if info:
            url = str(info["url"])
            token = token or local_admin_token(settings.home_dir)
    if url is not None:
        token = token or credentials.load(settings.config_dir, url)
        headers = {"authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as http:
            yield ApiClient(http, url, embedded=False, project=settings.project)
        return
    # imported here: the engine stack (Temporal, FastAPI, SQLAlchemy) costs seconds to import
    # and commands that talk to a server never need it
    from lockstep.api.app import create_app
    from lockstep.server.runtime import ControlPlane

    # in-process, no network: the caller owns the home, so no token is involved
    plane = ControlPlane(settings, role="cli", engine=engine, auth=False)
    services = await plane.start()
    try:
        app = create_app(services)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://embedded", timeout=60
        ) as http:
            yield ApiClient(http, str(settings.home_dir), embedded=True, project=settings.project)
    finally:
        await plane.stop()
