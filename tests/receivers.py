"""Real services on loopback that tests point lockstep at: an HTTP endpoint that records every
call and answers as the test says (a JSON body, raw bytes, or a redirect), and an SMTP server
(STARTTLS and a password required) that keeps every mail."""

from __future__ import annotations

import email
import email.message
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (an address) and ``localhost``, and its key: a
    client trusts it through ``SSL_CERT_FILE``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on loopback that insists on STARTTLS before anything and
    on ``user``/``password`` before mail; ``messages`` holds every mail received."""

    def __init__(self, folder: Path, user: str, password: str) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.cert, key = self_signed(folder)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.cert, key)
        self.messages: list[email.message.Message] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                outer.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                user.encode(),
                password.encode(),
            )
            return AuthResult(success=ok)

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=tls,
            require_starttls=True,
            authenticator=check,
            auth_require_tls=True,
        )
        self._controller.start()

    def close(self) -> None:
        self._controller.stop()
