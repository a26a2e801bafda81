"""How the CLI reaches lockstep: a server's REST API, or an embedded control plane.

Both go through the same HTTP API (the embedded one in-process via an ASGI transport), so
every command has one code path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
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
    "config": errors.ConfigError,
    "execution": errors.ExecutionError,
}

#: a live log stream that drops is resumed from its last event, at most this many times in a
#: row and for at most this long, before the command gives up with one error line
RESUME_ATTEMPTS = 6
RESUME_WINDOW_S = 30.0
_RESUME_FIRST_DELAY_S = 0.2
_RESUME_MAX_DELAY_S = 2.0
#: answers of a proxy while the server restarts: worth another try, unlike a 4xx
_TRANSIENT = frozenset({502, 503, 504})
#: the server sends a keepalive comment every 15 s, so a minute of silence is a dead connection
_STREAM_READ_S = 60.0
_STREAM_CONNECT_S = 10.0
#: no event of lockstep's comes near this; a line this long is not a lockstep stream
_MAX_SSE_LINE = 16 * 1024 * 1024


_BY_STATUS: dict[int, type[errors.LockstepError]] = {
    400: errors.InvalidRequest,
    401: errors.Unauthenticated,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    422: errors.InvalidRequest,
    503: errors.EngineUnavailable,
}


def _raise_for(resp: httpx.Response, server: str | None = None) -> None:
    """Raise the error an answer carries; ``server``, when not embedded, is named in it."""
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
    # a kind this client does not know (a newer server's, or a leaf such as a git error)
    # still falls in its category by status: a 4xx that is the request's fault exits 2
    error = _KINDS.get(kind) or _BY_STATUS.get(resp.status_code, errors.LockstepError)
    if server is not None and error in (errors.Unauthenticated, errors.PermissionDenied):
        detail = f"{detail} (server {server})"
    raise error(detail)


class ApiClient:
    """Typed calls of ``/api/v1``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        where: str,
        *,
        embedded: bool,
        project: str,
        joined: bool = False,
    ) -> None:
        self.http = http
        self.where = where
        self.embedded = embedded
        #: embedded in another `lockstep run` on the same home, which serves this one too
        self.joined = joined
        self.project = project
        self._p = f"/projects/{_seg(project)}"

    async def _call(self, method: str, path: str, *, not_json: str = "", **kwargs: Any) -> Any:
        """The answer's JSON; ``not_json`` says what it means when the answer is not JSON."""
        try:
            resp = await self.http.request(method, "/api/v1" + path, **kwargs)
        except httpx.HTTPError as exc:
            raise errors.EngineUnavailable(f"cannot reach lockstep at {self.where}: {exc}") from exc
        _raise_for(resp, None if self.embedded else self.where)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise errors.ExecutionError(
                not_json
                or f"lockstep at {self.where} answered {method} {path} with "
                f"{len(resp.content)} bytes that are not JSON"
            ) from None

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

    async def call(self, method: str, path: str, *, not_json: str = "", **kwargs: Any) -> Any:
        """Any API call (paths relative to /api/v1), for the admin commands."""
        return await self._call(method, path, not_json=not_json, **kwargs)

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

    async def follow_logs(
        self, run_id: str, *, step: str | None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Every log line of a run (or one step), then each new one as it is written, until the
        run has ended. Reads the server's Server-Sent Events; a dropped connection is resumed
        with ``Last-Event-ID``, so no line is lost or repeated."""
        path = f"/api/v1{self._p}/runs/{_seg(run_id)}/logs"
        params = {"follow": "true", **({"step": step} if step else {})}
        last_id: str | None = None
        resumes: _Resumes | None = None  # set once the server has accepted the stream
        while True:
            headers = {"last-event-id": last_id} if last_id else {}
            connect_s = resumes.connect_timeout() if resumes else _STREAM_CONNECT_S
            timeout = httpx.Timeout(_STREAM_READ_S, connect=connect_s)
            try:
                async with self.http.stream(
                    "GET", path, params=params, headers=headers, timeout=timeout
                ) as resp:
                    if resumes is not None and resp.status_code in _TRANSIENT:
                        raise _Dropped(f"the server answered {resp.status_code}")
                    if resp.status_code >= 400:
                        await resp.aread()
                        _raise_for(resp)
                    resumes = resumes or _Resumes()
                    async with contextlib.aclosing(_sse_events(resp)) as events:
                        async for event in events:
                            resumes.healthy()  # a keepalive counts: the connection works
                            if event.get("event") == "end":
                                return
                            if event.get("event") == "line":
                                line = _event_data(event, self.where)
                                last_id = event.get("id", last_id)
                                yield line
                raise _Dropped("the stream ended before the run did")
            except (httpx.HTTPError, _Dropped) as exc:
                if resumes is None:  # never reached: the same answer as any other command
                    raise errors.EngineUnavailable(
                        f"cannot reach lockstep at {self.where}: {exc}"
                    ) from exc
                if not await resumes.wait():
                    raise errors.EngineUnavailable(
                        f"lost the log stream of run {run_id} from {self.where} and could not "
                        f"resume it ({resumes.tries} tries): {_reason(exc)}"
                    ) from exc

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


class _Dropped(Exception):
    """A live stream broke off without its ``end`` event: resume it."""


class _Resumes:
    """Bounds the resumption of a dropped stream: at most ``RESUME_ATTEMPTS`` in a row, all
    within ``RESUME_WINDOW_S`` of the first drop, with a growing pause between them."""

    def __init__(self) -> None:
        self.tries = 0
        self._deadline = 0.0

    def healthy(self) -> None:
        self.tries = 0

    def connect_timeout(self) -> float:
        if not self.tries:
            return _STREAM_CONNECT_S
        return max(0.5, min(_STREAM_CONNECT_S, self._deadline - time.monotonic()))

    async def wait(self) -> bool:
        """Pause before the next try; False when no try is left."""
        now = time.monotonic()
        if not self.tries:
            self._deadline = now + RESUME_WINDOW_S
        if self.tries >= RESUME_ATTEMPTS or now >= self._deadline:
            return False
        pause = min(_RESUME_FIRST_DELAY_S * 2**self.tries, _RESUME_MAX_DELAY_S)
        await asyncio.sleep(min(pause, self._deadline - now))
        self.tries += 1
        return True


def _reason(exc: Exception) -> str:
    # some transport errors have no message; their name still says what happened
    return " ".join(str(exc).split()) or type(exc).__name__


async def _sse_events(resp: httpx.Response) -> AsyncGenerator[dict[str, str], None]:
    """The fields of each Server-Sent Events block; a block of comments only is empty.

    Lines are split on LF alone (lockstep's JSON data never holds a raw line break), not on
    every Unicode line boundary as ``aiter_lines`` does: a log line may hold U+2028 or U+0085,
    which ``json.dumps(ensure_ascii=False)`` leaves as they are."""
    pending = b""
    fields: dict[str, str] = {}
    async for chunk in resp.aiter_bytes():
        pending += chunk
        if b"\n" not in chunk:
            if len(pending) > _MAX_SSE_LINE:
                raise _Dropped("an event line is too long for a lockstep stream")
            continue
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.removesuffix(b"\r").decode("utf-8", errors="replace")
            if not line:
                yield fields
                fields = {}
                continue
            name, _, value = line.partition(":")
            if not name:
                continue  # a comment
            value = value.removeprefix(" ")
            if name == "data" and "data" in fields:
                value = fields["data"] + "\n" + value
            fields[name] = value


def _event_data(event: dict[str, str], where: str) -> dict[str, Any]:
    try:
        data = json.loads(event.get("data", ""))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise errors.EngineUnavailable(f"{where} sent a log event that is not a JSON object")
    return data


def _seg(value: str) -> str:
    # ids travel in the path: refuse anything that could change the route
    if not value or any(c in value for c in "/?#%\\") or value in (".", ".."):
        raise errors.InvalidRequest(f"invalid id {value!r}")
    return value


@contextlib.asynccontextmanager
async def connect(settings: Settings, *, engine: bool) -> AsyncIterator[ApiClient]:
    """A client for this invocation. ``engine``: the command needs runs to execute.

    The server is, first to last: ``LOCKSTEP_URL``; the current context (``lockstep login``);
    the server running in this home; else the home is served in-process."""
    remote = server_of(settings)
    if remote is not None:
        url, where, token = remote
        headers = {"authorization": f"Bearer {token}"} if token else {}
        # TLS settings only for https: loading the CA bundle costs a command ~20-30 ms
        tls = url.lower().startswith("https://")
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers, verify=tls) as http:
            yield ApiClient(http, where, embedded=False, project=settings.project)
        return
    from lockstep.cli.embedded import EmbeddedTransport

    # in-process, no network: the caller owns the home, so no token is involved
    transport = EmbeddedTransport(settings, engine=engine)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://embedded", timeout=60
        ) as http:
            if engine:
                await transport.open()  # joins another run's engine, or starts one
            where = str(settings.home_dir)
            if transport.joined:
                where += " (served by another `lockstep run` on it)"
            yield ApiClient(
                http, where, embedded=True, project=settings.project, joined=transport.joined
            )
    finally:
        await transport.aclose()


def server_of(settings: Settings) -> tuple[str, str, str | None] | None:
    """The server this invocation talks to, if any: its URL, how to name it in an error, and
    the token to send."""
    home = settings.home_dir
    local = running_server(home)
    url, where = settings.url, settings.url
    if url is None:
        url = credentials.current(settings.config_dir)
        where = url and f"{url}, the current context (`lockstep logout` returns to local)"
    if url is None and local is not None:
        url = where = str(local["url"])
    if url is None or where is None:
        return None
    token = settings.token
    if token is None and local is not None and same_server(url, str(local["url"])):
        token = local_admin_token(home)  # this home's own server: its owner is the admin
    return url, where, token or credentials.load(settings.config_dir, url)


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def same_server(a: str, b: str) -> bool:
    """Whether two URLs name the same server (``localhost`` and ``127.0.0.1`` alike)."""
    ua, ub = httpx.URL(a), httpx.URL(b)
    hosts = {ua.host, ub.host}
    same_host = ua.host == ub.host or hosts <= _LOOPBACK
    return ua.scheme == ub.scheme and ua.port == ub.port and same_host
