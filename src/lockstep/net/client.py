"""The one door for outbound HTTP: every call to a URL a user wrote (HTTP steps, and the
webhooks and notifications to come) goes through ``GuardedClient``.

The guard sits where a connection is made: the host is resolved, every address checked
against the ``OutboundPolicy``, and the socket connected to an address that was checked (the
``Host`` header and TLS SNI keep the name), so a name that resolves differently a moment later
(DNS rebinding) gains nothing. Redirects are followed here, a bounded number of hops, each hop
a new request whose connection is guarded again. Proxies from the environment are not used:
through a proxy the guard would judge the proxy, not the destination.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpcore
import httpx

from lockstep.errors import PermissionDenied
from lockstep.net.addresses import AddressRefused, OutboundPolicy, allowed_addresses

#: hops followed before a call fails with "too many redirects"
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SCHEMES = ("http", "https")
#: headers that describe a body, dropped when a redirect turns the request into a GET
_BODY_HEADERS = ("content-length", "content-type", "transfer-encoding")


class OutboundRefused(PermissionDenied):
    """A call to ``url`` was refused before anything was sent to it."""

    kind = "outbound-refused"

    def __init__(self, method: str, url: str, reason: str) -> None:
        super().__init__(f"{method} {url} refused: {reason}")
        self.url = url
        self.reason = reason

    def fields(self) -> dict[str, object]:
        return {"url": self.url}


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, and only to the address it checked."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await allowed_addresses(host, port, self._policy)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from None
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # allowed_addresses returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound calls go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__(trust_env=False)
        # httpx (pinned <0.29) takes no network backend; its pool is rebuilt with ours
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # SSL_CERT_FILE/_DIR still count
            network_backend=_GuardedBackend(policy),
        )


def _check_scheme(method: str, url: str, scheme: str) -> None:
    if scheme not in _SCHEMES:
        raise OutboundRefused(method, url, "only http:// and https:// URLs are called")


#: told of each redirect followed: (HTTP status, the URL it led to)
OnRedirect = Callable[[int, str], None]


class GuardedClient:
    """An HTTP client that reaches only what ``policy`` allows, checked after DNS resolution
    and on every redirect. Use as ``async with GuardedClient(policy, timeout=…) as client``."""

    def __init__(
        self, policy: OutboundPolicy, *, timeout: float, max_redirects: int = MAX_REDIRECTS
    ) -> None:
        self.max_redirects = max_redirects
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(policy),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        )

    async def __aenter__(self) -> GuardedClient:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.__aexit__(*exc)  # type: ignore[arg-type]

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        on_redirect: OnRedirect | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """The final answer, its body not yet read (the caller caps it). Raises
        ``OutboundRefused`` for a URL or hop the policy refuses and ``httpx.HTTPError`` for
        a call that failed. ``content`` sends exact bytes (a body that is signed)."""
        _check_scheme(method, url, httpx.URL(url).scheme)
        request = self._client.build_request(
            method, url, headers=headers, params=params, json=json, content=content
        )
        for hop in range(self.max_redirects + 1):
            response = await self._send(request)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                try:
                    yield response
                finally:
                    await response.aclose()
                return
            await response.aclose()
            if hop == self.max_redirects:
                raise httpx.TooManyRedirects(
                    f"more than {self.max_redirects} redirects", request=request
                )
            request = self._redirected(request, response.status_code, location)
            if on_redirect is not None:
                on_redirect(response.status_code, str(request.url))
        raise AssertionError("unreachable")

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._client.send(request, stream=True)
        except AddressRefused as exc:
            raise OutboundRefused(request.method, str(request.url), exc.reason) from None

    def _redirected(self, request: httpx.Request, status: int, location: str) -> httpx.Request:
        """The request a redirect asks for, as browsers (and httpx) build it."""
        try:
            url = request.url.join(location)
        except httpx.InvalidURL as exc:
            raise httpx.RemoteProtocolError(
                f"redirect to an invalid URL: {exc}", request=request
            ) from None
        method = request.method
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method = "GET"
        _check_scheme(method, location, url.scheme)
        headers = httpx.Headers(request.headers)
        del headers["host"]
        content: bytes | None = request.content
        if method != request.method:
            content = None
            for name in _BODY_HEADERS:
                headers.pop(name, None)
        if (url.scheme, url.host, url.port) != (
            request.url.scheme,
            request.url.host,
            request.url.port,
        ):
            # Nothing the caller set follows the call to another origin: a key may ride in
            # any header (X-Api-Key as well as Authorization), and that origin was never named.
            kept = httpx.Headers(self._client.headers)
            for name in _BODY_HEADERS:
                if name in headers:
                    kept[name] = headers[name]
            headers = kept
        return self._client.build_request(method, url, headers=headers, content=content)


__all__ = ["MAX_REDIRECTS", "GuardedClient", "OnRedirect", "OutboundRefused"]
