"""Real services on loopback that tests point lockstep at: an HTTP endpoint that records every
call and answers as the test says (a JSON body, raw bytes, or a redirect)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Call:
    """One request the service received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the JSON body, or None when there was none


@dataclass(frozen=True)
class Redirect:
    """An answer that sends the caller on to ``to`` (the ``Location`` header)."""

    to: str


#: (the call, its number from 1) -> (HTTP status, the JSON to answer, raw bytes or a Redirect)
Answer = Callable[[Call, int], tuple[int, Any]]


class HttpReceiver:
    """A JSON endpoint on loopback. ``answer`` makes each reply (default: 200 echoing the
    body); ``calls`` holds every request in order. ``host`` is any loopback address; with
    ``tls`` (a server context) it speaks HTTPS."""

    def __init__(
        self,
        answer: Answer | None = None,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.calls: list[Call] = []
        self.answer: Answer = answer or (lambda call, n: (200, call.body))
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                call = Call(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw) if raw else None,
                )
                outer.calls.append(call)
                status, reply = outer.answer(call, len(outer.calls))
                data = b"" if isinstance(reply, Redirect) else reply
                data = data if isinstance(data, bytes) else json.dumps(data).encode()
                self.send_response(status)
                if isinstance(reply, Redirect):
                    self.send_header("location", reply.to)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def http_receiver(
    answer: Answer | None = None, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> Iterator[HttpReceiver]:
    """An :class:`HttpReceiver` for the length of a ``with`` block (or a fixture)."""
    receiver = HttpReceiver(answer, host, tls)
    try:
        yield receiver
    finally:
        receiver.close()
